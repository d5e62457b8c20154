"""The token fold and the bearer text, as properties: the book is what a plain model of
the events says, events of different tokens commute, replays change nothing, and a
bearer is answered malformed / unknown / revoked / expired / granted in that order."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kei.domain.events import Payload, TokenCreated, TokenRevoked
from kei.domain.tokens.book import TokenBook, fold
from kei.domain.tokens.grant import SCOPES, Denied, Grant, allows
from kei.domain.tokens.text import TOKEN_CHARS, digest_hex, format_token, parse_bearer

IDS = ["0123456789abcdef", "fedcba9876543210", "00000000000000aa"]
hex16 = st.text("0123456789abcdef", min_size=16, max_size=16)
secrets32 = st.binary(min_size=32, max_size=32)
SECRET = {tid: bytes([i + 1]) * 32 for i, tid in enumerate(IDS)}


def created(tid: str, *, name: str = "n", scope: Any = "write", expires: int | None = None,
            secret: bytes | None = None) -> TokenCreated:  # fmt: skip
    return TokenCreated(token_id=tid, name=name, scope=scope, key_id=None, expires_us=expires,
                        secret_sha256=digest_hex(secret or SECRET[tid]))  # fmt: skip


event = st.one_of(
    st.builds(
        lambda t, s, e: created(t, scope=s, expires=e),
        st.sampled_from(IDS),
        st.sampled_from(SCOPES),
        st.none() | st.integers(0, 100),
    ),
    st.builds(
        lambda t, r: TokenRevoked(token_id=t, reason=r),
        st.sampled_from(IDS),
        st.text(min_size=1, max_size=5),
    ),
)


def facts(payloads: list[Payload]) -> list[tuple[Payload, int, int]]:
    return [(p, i + 1, 1000 + i) for i, p in enumerate(payloads)]


def state(book: TokenBook) -> list[tuple[Any, ...]]:
    """What a book says of each token, positions left out (interleavings move them)."""
    return [(e.token_id, e.scope, e.expires_us, e.revoked_position is not None,
             e.revoked_reason) for e in sorted(book, key=lambda e: e.token_id)]  # fmt: skip


@given(hex16, secrets32)
def test_a_token_parses_back_to_its_id_and_the_digest_of_its_secret(tid: str, raw: bytes) -> None:
    text = format_token(tid, raw)
    assert len(text) == TOKEN_CHARS
    bearer = parse_bearer(text)
    assert bearer is not None and bearer.token_id == tid
    padded = base64.urlsafe_b64decode(bearer.secret + "=")
    assert padded == raw
    assert hashlib.sha256(padded).hexdigest() == digest_hex(raw)


@given(st.text(max_size=80))
def test_anything_else_is_malformed(text: str) -> None:
    bearer = parse_bearer(text)
    if bearer is not None:  # then it is a token's exact shape, spelled one way
        raw = base64.urlsafe_b64decode(bearer.secret + "=")
        assert format_token(bearer.token_id, raw) == text


@given(hex16, secrets32, st.integers(0, TOKEN_CHARS - 1), st.sampled_from("=+/. \n\x00é"))
def test_one_foreign_character_makes_a_token_malformed(
    tid: str, raw: bytes, at: int, bad: str
) -> None:
    text = format_token(tid, raw)
    assert parse_bearer(text[:at] + bad + text[at + 1 :]) is None
    assert parse_bearer(text + "A") is None and parse_bearer(text[:-1]) is None


@given(st.lists(event, max_size=12))
def test_the_book_is_what_the_events_say(payloads: list[Payload]) -> None:
    book = fold(facts(payloads))
    for tid in IDS:
        first = next((i for i, p in enumerate(payloads)
                      if isinstance(p, TokenCreated) and p.token_id == tid), None)  # fmt: skip
        entry = book.get(tid)
        if first is None:
            assert entry is None
            continue
        made = payloads[first]
        assert isinstance(made, TokenCreated) and entry is not None
        assert (entry.scope, entry.expires_us) == (made.scope, made.expires_us)  # first wins
        revokes = [p for p in payloads[first:] if isinstance(p, TokenRevoked) and p.token_id == tid]
        assert (entry.revoked_reason is not None) == bool(revokes)
        if revokes:
            assert entry.revoked_reason == revokes[0].reason  # the first revocation stays


@given(st.lists(event, max_size=12), st.randoms(use_true_random=False))
def test_events_of_different_tokens_commute(payloads: list[Payload], rnd: Any) -> None:
    """Any interleaving that keeps each token's own order folds to the same book."""
    queues = {tid: [p for p in payloads if p.token_id == tid] for tid in IDS}  # type: ignore[attr-defined]
    shuffled: list[Payload] = []
    while any(queues.values()):
        tid = rnd.choice([t for t, q in queues.items() if q])
        shuffled.append(queues[tid].pop(0))
    assert state(fold(facts(shuffled))) == state(fold(facts(payloads)))


@given(st.lists(event, max_size=12))
def test_an_event_folded_twice_changes_nothing(payloads: list[Payload]) -> None:
    once = fold(facts(payloads))
    twice = fold((p, i, t) for (p, i, t) in facts(payloads) for _ in range(2))
    assert state(twice) == state(once)
    assert [e.revoked_position for e in twice] == [e.revoked_position for e in once]


@settings(max_examples=200)
@given(
    st.sampled_from(SCOPES), st.none() | st.integers(1, 10**6), st.booleans(),
    st.integers(0, 2 * 10**6), st.booleans(), st.booleans(),
)  # fmt: skip
def test_a_bearer_is_answered_in_order(
    scope: Any, expires: int | None, revoked: bool, now: int, right_secret: bool, known: bool
) -> None:
    tid = IDS[0]
    book = TokenBook()
    if known:
        book.apply(created(tid, name="ci", scope=scope, expires=expires), 1, 10)
    if revoked:
        book.apply(TokenRevoked(token_id=tid, reason="r"), 2, 20)
    text = format_token(tid, SECRET[tid] if right_secret else SECRET[IDS[1]])
    answer = book.authenticate(text, now)
    if not (known and right_secret):
        assert answer == Denied(reason="unknown")
    elif revoked:
        assert answer == Denied(reason="revoked")
    elif expires is not None and now >= expires:
        assert answer == Denied(reason="expired")
    else:
        assert answer == Grant(token_id=tid, name="ci", scope=scope, key_id=None,
                               expires_us=expires)  # fmt: skip
        assert allows(answer, "read") and allows(answer, scope)
    assert book.authenticate(text[:-1], now) == Denied(reason="malformed")


def test_a_digest_that_is_not_64_hex_matches_no_secret() -> None:
    book = TokenBook()
    bad = TokenCreated(token_id=IDS[0], name="n", scope="read", key_id=None, expires_us=None,
                       secret_sha256="not hex")  # fmt: skip
    book.apply(bad, 1, 1)
    assert book.authenticate(format_token(IDS[0], SECRET[IDS[0]]), 0) == Denied(reason="unknown")


def test_live_names_leave_out_revoked_and_expired_tokens() -> None:
    book = fold(facts([created(IDS[0], name="a"), created(IDS[1], name="a", expires=5),
                       created(IDS[2], name="a"), TokenRevoked(token_id=IDS[2], reason="r")]))  # fmt: skip
    assert [e.token_id for e in book.live_named("a", 4)] == [IDS[0], IDS[1]]
    assert [e.token_id for e in book.live_named("a", 5)] == [IDS[0]]
    assert [e.token_id for e in book] == IDS and len(book) == 3
