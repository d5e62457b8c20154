"""The leak matrix on the write path: every string is scanned before it is encoded.

Once a secret is signed into the append-only log it can never be taken out without
breaking the chain, so ``Ledger.append`` passes every batch through ``guard_batch``
first. For each event, the stream name and every string of the payload that is not
free text (ids, keys, tags, names, nested ``Origin`` values: ``kei.domain.leaks.free_text``
finds them from the payload types) go through ``Matrix.check_identifiers``: a
``block`` or ``substitute`` match refuses the whole batch, since an identifier is never
redacted (other events refer to it by value). The free-text fields
``kei.domain.leaks.free_text.FREE_TEXT`` names go through ``Matrix.check_fields``:

- a ``block`` rule refuses the whole batch (``LeakBlockedError``, naming the rule and
  the field, never the secret): nothing is appended;
- ``substitute`` rules redact the value that will be signed;
- ``warn`` rules let it through and flag it.

Redactions and flags are recorded: in the event's own ``redacted_by`` / ``flagged_by``
when it has them, else in a ``leak.noted`` event added at the end of the same batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from kei.app.ledger.appending import NewEvent
from kei.domain.events import event_type_of
from kei.domain.events.leaks import LEAKS_STREAM, LeakNoted
from kei.domain.leaks.free_text import FREE_TEXT, identifier_strings, identifier_values
from kei.domain.leaks.matrix import Matrix
from kei.domain.leaks.verdicts import CLEAN

STREAM_FIELD = "<stream>"  # how a refusal names the stream an event was headed for


def guard_batch(
    batch: Sequence[NewEvent], matrix: Matrix, gathered: Sequence[str] | None = None
) -> tuple[list[NewEvent], int]:
    """The batch to append (redacted where needed) followed by its ``leak.noted``
    events, and how many of the returned events are the caller's.

    ``gathered``: every string of the batch, as ``limits.check_batch`` gathered them;
    when no rule can match any of them the batch goes through as it is, without the
    event-by-event pass (which would change nothing)."""
    if gathered is not None and matrix.all_clean(gathered):
        return list(batch), len(batch)
    out: list[NewEvent] = []
    notes: list[NewEvent] = []
    for event in batch:
        name = event_type_of(event.payload).name
        free = FREE_TEXT.get(name, ())
        ids = CLEAN
        if not matrix.known_clean((event.stream, *identifier_values(event.payload, free))):
            strings = identifier_strings(event.payload, free)
            strings.append((STREAM_FIELD, event.stream))
            ids = matrix.check_identifiers(strings)
            ids.raise_if_blocked()
        fields = {f: v for f in free if (v := getattr(event.payload, f))}
        if not fields and not ids.warnings:
            out.append(event)
            continue
        verdict = matrix.check_fields(fields)
        verdict.raise_if_blocked()
        payload = event.payload
        changed = {f: verdict.fields[f] for f in verdict.redactions}
        redacted = verdict.redacted_by
        flagged = tuple(dict.fromkeys((*verdict.warned_by, *ids.warned_by)))
        if changed:
            payload = msgspec.structs.replace(payload, **changed)
        if (redacted or flagged) and hasattr(payload, "redacted_by"):
            payload = msgspec.structs.replace(payload, redacted_by=redacted, flagged_by=flagged)
        elif redacted or flagged:
            touched = tuple(sorted({*verdict.redactions, *verdict.warnings, *ids.warnings}))
            note = LeakNoted(stream=event.stream, event_type=name, fields=touched,
                             redacted_by=redacted, flagged_by=flagged)  # fmt: skip
            notes.append(NewEvent(LEAKS_STREAM, note))
        out.append(NewEvent(event.stream, payload, event.expected_version))
    return out + notes, len(out)
