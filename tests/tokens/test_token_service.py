"""``TokenService`` and ``LedgerAuthenticator`` on real stores (SQLite and PostgreSQL):
create, authenticate, revoke, expire; the key a token signs with; a revoke made by
another process honoured on the next request; a tampered token event grants nothing."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cli_helpers import cli_env, kei, run_sql
from kei.adapters.files.keyfile import write_key
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.token_log import TokenLog
from kei.app.tokens import LedgerAuthenticator, TokenService
from kei.domain.events import MemoryWritten, TokenCreated
from kei.domain.log.keys import SigningKey
from kei.domain.tokens.grant import Denied, Grant
from kei.domain.tokens.text import digest_hex, format_token, parse_bearer
from kei.errors import InputError

NOW = 1_800_000_000_000_000


@pytest.fixture
def keys_dir(tmp_path: Path, key: SigningKey) -> Path:
    folder = tmp_path / "home" / "keys"
    write_key(folder / "default.key", key)
    return folder


@pytest.fixture
def service(ledger: Ledger, keys_dir: Path) -> TokenService:
    return TokenService(ledger, keys_dir=keys_dir)


def test_create_authenticate_revoke(ledger: Ledger, service: TokenService, key: SigningKey) -> None:
    auth = LedgerAuthenticator(ledger)
    text, grant = service.create("ci", "write", "default", NOW + 10, now_us=NOW)
    assert grant == Grant(token_id=grant.token_id, name="ci", scope="write",
                          key_id=key.key_id_hex, expires_us=NOW + 10)  # fmt: skip
    assert auth.authenticate(text, NOW) == grant
    assert auth.authenticate(text, NOW + 10) == Denied(reason="expired")
    assert auth.authenticate(text[:-2] + "AA", NOW) == Denied(reason="unknown")
    assert auth.authenticate(format_token("0" * 16, b"\0" * 32), NOW) == Denied(reason="unknown")
    for garbage in ("", "Bearer x", text + "A", text.replace("kei_", "kei-"), "kei_" + "a" * 60):
        assert auth.authenticate(garbage, NOW) == Denied(reason="malformed")
    done = service.revoke("ci", "rotated", now_us=NOW)
    assert done.appended and done.token.revoked_reason == "rotated"
    assert auth.authenticate(text, NOW) == Denied(reason="revoked")
    assert not service.revoke(grant.token_id, "again", now_us=NOW).appended
    stream = ledger.read_stream(f"tokens/{grant.token_id}")
    assert [e.type for e in stream] == ["token.created", "token.revoked"]
    made = stream[0].payload()
    assert isinstance(made, TokenCreated)
    bearer = parse_bearer(text)
    assert bearer is not None and bearer.secret not in repr(made)
    assert made.secret_sha256 == digest_hex(base64.urlsafe_b64decode(bearer.secret + "="))


def test_names_are_unique_among_live_tokens(service: TokenService) -> None:
    service.create("ci", "read", None, None, now_us=NOW)
    with pytest.raises(InputError, match="a live token is named 'ci' already"):
        service.create("ci", "admin", None, None, now_us=NOW)
    service.revoke("ci", "r", now_us=NOW)
    service.create("ci", "admin", None, NOW + 5, now_us=NOW)  # the old one is revoked
    service.create("ci", "read", None, None, now_us=NOW + 5)  # and this one expired
    with pytest.raises(InputError, match="2 tokens are named 'ci'"):
        service.revoke("ci", "r", now_us=NOW)
    assert [(t.name, t.scope) for t in service.list()] == [
        ("ci", "read"), ("ci", "admin"), ("ci", "read"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "expires", "message"),
    [
        ("0123456789abcdef", None, "looks like a token id"),
        ("ok", NOW, "--expires is in the past"),
    ],
)
def test_refused_creations_append_nothing(
    ledger: Ledger, service: TokenService, name: str, expires: int | None, message: str
) -> None:
    before = ledger.store.max_position()
    with pytest.raises(InputError, match=message):
        service.create(name, "read", None, expires, now_us=NOW)
    assert ledger.store.max_position() == before


def test_a_token_signs_with_an_active_key_whose_file_is_at_hand(
    ledger: Ledger, service: TokenService, keys_dir: Path, key: SigningKey
) -> None:
    _, by_id = service.create("a", "write", key.key_id_hex, None, now_us=NOW)
    assert by_id.key_id == key.key_id_hex
    stranger = SigningKey.generate(name="stranger")
    write_key(keys_dir / "stranger.key", stranger)
    with pytest.raises(InputError, match="is not registered in this ledger"):
        service.create("b", "write", "stranger", None, now_us=NOW)
    retired = SigningKey.generate(name="retired")
    write_key(keys_dir / "retired.key", retired)
    ledger.add_key(retired)
    ledger.revoke_key(retired.key_id_hex, "retired")
    with pytest.raises(InputError, match="is revoked in this ledger"):
        service.create("c", "write", retired.key_id_hex, None, now_us=NOW)
    elsewhere = SigningKey.generate(name="elsewhere")
    ledger.add_key(elsewhere)  # registered, but its file is not in the keys folder
    with pytest.raises(InputError, match="no usable key file"):
        service.create("d", "write", elsewhere.key_id_hex, None, now_us=NOW)
    with pytest.raises(InputError, match="no usable key file"):
        TokenService(ledger).create("e", "write", "default", None, now_us=NOW)


def test_the_log_is_read_only_past_the_position_last_seen(
    ledger: Ledger, service: TokenService
) -> None:
    reader = TokenLog(ledger)
    assert reader.catch_up() == 0 and reader.seen == ledger.store.max_position()
    service.create("a", "read", None, None, now_us=NOW)
    ledger.append([NewEvent("m", MemoryWritten(namespace="n", key="k", value="v", kind="note"))])
    assert reader.catch_up() == 1  # the token event; the memory write is not a token's
    assert reader.catch_up() == 0 and reader.seen == ledger.store.max_position()
    service.create("b", "read", None, None, now_us=NOW)
    assert reader.catch_up() == 1 and len(reader.book) == 2


def test_a_revoke_by_another_process_is_honoured_on_the_next_request(
    ledger: Ledger, service: TokenService, store_url: str, tmp_path: Path
) -> None:
    text, grant = service.create("ci", "write", None, None, now_us=NOW)
    auth = LedgerAuthenticator(ledger)
    now = int(time.time() * 1_000_000)
    assert auth.authenticate(text, now) == grant
    env = cli_env(tmp_path / "home", store_url)
    done = kei(["tokens", "revoke", grant.token_id, "--reason", "leaked"], env)
    assert done.returncode == 0, done.stderr
    assert auth.authenticate(text, now) == Denied(reason="revoked")


def test_a_tampered_token_event_grants_nothing(
    ledger: Ledger, service: TokenService, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone with write access to the database swaps the digest for their own secret's:
    the row no longer matches its chain hash, so no authenticator counts it."""
    text, grant = service.create("ci", "admin", None, None, now_us=NOW)
    made = ledger.read_stream(f"tokens/{grant.token_id}")[0].payload()
    assert isinstance(made, TokenCreated)
    mine = format_token(grant.token_id, b"\x07" * 32)
    stream = f"tokens/{grant.token_id}"
    state = bytes(run_sql(store_url, "SELECT state FROM kei_events WHERE originator_id = ?",
                          (stream,))[0][0])  # fmt: skip
    forged = state.replace(made.secret_sha256.encode(), digest_hex(b"\x07" * 32).encode())
    run_sql(store_url, "UPDATE kei_events SET state = ? WHERE originator_id = ?", (forged, stream))
    auth = LedgerAuthenticator(ledger)
    assert auth.authenticate(mine, NOW) == Denied(reason="unknown")
    assert auth.authenticate(text, NOW) == Denied(reason="unknown")
    assert "skipped" in caplog.text


def test_the_secret_is_nowhere_in_the_sqlite_file(
    make_ledger: Callable[..., Ledger], keys_dir: Path, tmp_path: Path
) -> None:
    ledger = make_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    service = TokenService(ledger, keys_dir=keys_dir)
    made = [service.create(f"t{i}", "write", None, None, now_us=NOW)[0] for i in range(20)]
    service.revoke("t3", "r", now_us=NOW)
    ledger.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert len(stored) > 10_000
    for text in made:
        bearer = parse_bearer(text)
        assert bearer is not None
        raw = base64.urlsafe_b64decode(bearer.secret + "=")
        assert bearer.token_id.encode() in stored  # the public part is there
        for secret in (text.encode(), bearer.secret.encode(), raw, raw.hex().encode()):
            assert secret not in stored


def test_concurrent_requests_never_miss_a_revoke_made_before_they_came(
    ledger: Ledger, service: TokenService, store_url: str, key: SigningKey
) -> None:
    """Threads share catch-ups; still, every request that starts after the revoke has
    committed (on another connection) is refused."""
    text, grant = service.create("ci", "write", None, None, now_us=NOW)
    auth = LedgerAuthenticator(ledger)
    answers: list[tuple[float, object]] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            started = time.monotonic()
            answers.append((started, auth.authenticate(text, NOW)))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    with Ledger.open(store_url, key=key) as other:
        TokenService(other).revoke("ci", "leaked", now_us=NOW)
    revoked_at = time.monotonic()
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    after = [a for started, a in answers if started > revoked_at]
    before = [a for started, a in answers if started <= revoked_at]
    assert after and set(map(repr, after)) == {repr(Denied(reason="revoked"))}
    assert grant in before
