"""``kei migrate`` for other databases, the pure part: migration files (names, checksums,
the irreversible marker), the tracker table's rows, the target's credential-free
identity, the schema digest, the log's history folded, the plan (pending, applied,
missing, out of order) and the four-way comparison of files, tracker table, log and
live schema. No I/O: ``adapters/migrate`` reads files and databases, ``app/migrate``
runs and records.
"""
