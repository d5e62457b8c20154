"""The kei daemon: a warm fork server that makes a ``kei`` command start in milliseconds.

A ``kei`` process spends most of its life importing (typer, msgspec, PyNaCl, the store)
before it appends one event. ``kei daemon start`` imports all of that once; each
command then runs in a fresh ``fork()`` of the warm process, with the caller's own
stdin, stdout and stderr (passed over a Unix socket), environment, working directory
and umask. The calling process imports almost nothing: see ``client.py``.
"""
