"""``kei tokens create|revoke|list`` end to end on SQLite and PostgreSQL: the token on
stdout once, confirmations on stderr, JSON answers, one-line refusals with exit 2, and a
pasted token refused by ``kei memory write``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import cli_env, in_process
from cli_helpers import kei as kei_process
from kei.app.ledger.ledger import Ledger
from kei.app.tokens import LedgerAuthenticator
from kei.domain.tokens.grant import Denied, Grant
from kei.domain.tokens.text import TOKEN_CHARS, parse_bearer

Kei = Callable[..., Any]
MOMENT_LEN = len("2026-12-07T13:45:00.123456Z")


@pytest.fixture
def kei(store_url: str, tmp_path: Path) -> Kei:
    run = in_process(cli_env(tmp_path / "home", store_url))
    run("init")
    return run


def lines(result: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_create_prints_the_token_once_on_stdout(kei: Kei, store_url: str) -> None:
    made = kei("tokens", "create", "ci", "--scope", "write", "--expires", "30d")
    text = made.stdout.strip()
    assert len(text) == TOKEN_CHARS and parse_bearer(text) is not None
    assert made.stdout == text + "\n"
    assert "created; it is shown once" in made.stderr and text not in made.stderr
    with Ledger.open(store_url) as ledger:
        grant = LedgerAuthenticator(ledger).authenticate(text, 0)
    assert isinstance(grant, Grant) and grant.scope == "write" and grant.key_id is None
    listed = kei("tokens", "list").stdout.splitlines()
    assert len(listed) == 1
    token_id, status, scope, name, key, expires = listed[0].split("\t")
    assert (token_id, status, scope, name, key) == (grant.token_id, "active", "write", "ci", "-")
    assert len(expires) == MOMENT_LEN and text not in kei("tokens", "list", "--json").stdout


def test_json_answers(kei: Kei) -> None:
    made = lines(kei("tokens", "create", "ro", "--scope", "read", "--key", "default",
                     "--expires", "2099-01-01T00:00:00Z", "--json"))  # fmt: skip
    assert len(made) == 1
    ro = made[0]
    assert ro["ok"] is True and parse_bearer(ro["token"]) is not None
    assert ro["expires_at"] == "2099-01-01T00:00:00.000000Z" and len(ro["key_id"]) == 16
    kei("tokens", "create", "admin", "--scope", "admin")
    listed = lines(kei("tokens", "list", "--json"))
    assert [(t["name"], t["scope"], t["status"]) for t in listed] == [
        ("ro", "read", "active"), ("admin", "admin", "active"),
    ]  # fmt: skip
    assert set(listed[0]) == {
        "token_id", "name", "status", "scope", "key_id", "expires_at", "created_at",
        "created_position", "revoked_at", "revoked_position", "reason",
    }  # fmt: skip
    done = lines(kei("tokens", "revoke", ro["token_id"], "--reason", "rotated", "--json"))[0]
    assert (done["ok"], done["changed"], done["status"], done["reason"]) == (
        True, True, "revoked", "rotated",
    )  # fmt: skip
    assert len(done["revoked_at"]) == MOMENT_LEN and done["revoked_position"] > 0
    again = lines(kei("tokens", "revoke", "ro", "--json"))[0]
    assert again["changed"] is False and again["reason"] == "rotated"
    assert "nothing appended" in kei("tokens", "revoke", "ro").stderr


def test_an_expired_token_is_listed_and_refused(kei: Kei, store_url: str) -> None:
    text = kei("tokens", "create", "short", "--scope", "read", "--expires", "1s").stdout.strip()
    with Ledger.open(store_url) as ledger:
        auth = LedgerAuthenticator(ledger)
        assert isinstance(auth.authenticate(text, 0), Grant)
        assert auth.authenticate(text, 2**62) == Denied(reason="expired")
    import time

    time.sleep(1.1)
    assert kei("tokens", "list").stdout.split("\t")[1] == "expired"
    kei("tokens", "create", "short", "--scope", "read")  # an expired name is free again


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (["create", "x", "--scope", "read", "--expires", "soon"],
         "kei: error: --expires 'soon' is not a date, a time or a duration"),
        (["create", "x", "--scope", "read", "--expires", "2001-01-01"],
         "kei: error: --expires is in the past"),
        (["create", "x", "--scope", "read", "--key", "nope"],
         "kei: error: no usable key file for key 'nope'"),
        (["create", "", "--scope", "read"], "kei: error: token.created: field name"),
        (["create", "a\x1bb", "--scope", "read"], "kei: error: token.created: field name"),
        (["revoke", "nobody"], "kei: error: no token has the id or name 'nobody'"),
        (["revoke", "ci", "--reason", ""], "kei: error: token.revoked: field reason"),
    ],
)  # fmt: skip
def test_refusals_are_one_line_and_append_nothing(
    kei: Kei, store_url: str, args: list[str], first_line: str
) -> None:
    kei("tokens", "create", "ci", "--scope", "read")
    with Ledger.open(store_url) as ledger:
        before = ledger.store.max_position()
    refused = kei("tokens", *args, code=2)
    assert refused.stderr.splitlines()[0].startswith(first_line), refused.stderr
    assert refused.stdout == "" and "Traceback" not in refused.stderr
    with Ledger.open(store_url) as ledger:
        assert ledger.store.max_position() == before


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (["create", "x", "--scope", "root"], "kei: error: Invalid value for '--scope'"),
        (["create", "x"], "kei: error: Missing option '--scope'"),
        (["revoke"], "kei: error: Missing argument 'TOKEN_ID|NAME'"),
    ],
)
def test_usage_errors_are_one_line(
    sqlite_url: str, tmp_path: Path, args: list[str], first_line: str
) -> None:
    refused = kei_process(["tokens", *args], cli_env(tmp_path / "home", sqlite_url))
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[0].startswith(first_line), refused.stderr


def test_a_pasted_token_is_refused_by_memory_write(kei: Kei, store_url: str) -> None:
    text = kei("tokens", "create", "ci", "--scope", "write").stdout.strip()
    with Ledger.open(store_url) as ledger:
        before = ledger.store.max_position()
    refused = kei("memory", "write", "deploy/notes", f"the CI token is {text}, keep it", code=2)
    assert "leak rule 'kei-api-token'" in refused.stderr and text not in refused.stderr
    with Ledger.open(store_url) as ledger:
        assert ledger.store.max_position() == before
    token_id = text.split("_")[1]
    kei("memory", "write", "deploy/notes", f"the CI token is {token_id}")  # the id is public
