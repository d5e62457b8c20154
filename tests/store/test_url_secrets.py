"""A password in a store or broker URL is never shown, and a malformed PostgreSQL URL
is one line, never a traceback.

``redact_url`` is the one function every message, report and log line shows URLs
through; the CLI runs below use the real PostgreSQL server and look for the secret
in everything kei printed.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_helpers import cli_env, kei
from kei.adapters.store.urls import parse_url, redact_url
from kei.errors import StoreError

SECRET = "Xq7-SEKRET-9zP"


@pytest.mark.parametrize(
    "url, shown",
    [
        (f"postgresql://u:{SECRET}@h:5432/db", "postgresql://u:***@h:5432/db"),
        (f"postgresql://u@h/db?password={SECRET}", "postgresql://u@h/db?password=***"),
        (
            f"postgresql://u@h/db?sslmode=require&sslpassword={SECRET}&application_name=a",
            "postgresql://u@h/db?sslmode=require&sslpassword=***&application_name=a",
        ),
        (f"postgresql://u:a:b@{SECRET}@h/db", "postgresql://u:***@h/db"),
        (f"postgresql://u@h/db?password={SECRET}#tail", "postgresql://u@h/db?password=***#***"),
        (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        (f"postgresql://[::1/db?password={SECRET}", "postgresql://***"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:////tmp/a b?c.db", "sqlite:////tmp/a b?c.db"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@given(
    password=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=6),
    where=st.sampled_from(["userinfo", "password", "sslpassword", "PGPASSWORD"]),
)
def test_a_password_never_survives_redaction(password: str, where: str) -> None:
    escaped = quote(password, safe="")
    if where == "userinfo":
        url = f"postgresql://user:{escaped}@host:5432/db"
    else:
        url = f"postgresql://user@host:5432/db?sslmode=require&{where}={escaped}"
    shown = redact_url(url)
    assert escaped not in shown and (password not in shown or password in url.replace(escaped, ""))


@pytest.mark.parametrize(
    "url, why",
    [
        (f"postgresql://u:{SECRET}@h:abc/db", "port"),
        (f"postgresql://u:{SECRET}@h:99999/db", "out of range"),
        (f"postgresql://u:{SECRET}%zz@h/db", "'%'"),
        (f"postgresql://u@h/db?password={SECRET}&port=x", "port"),
        (f"postgresql://u@h/db?password={SECRET}&bogus_option=1", "bogus_option"),
        (f"postgresql://[::1/db?password={SECRET}", "IPv6"),
        (f"postgresql://user:{SECRET}/db", "port"),
    ],
)
def test_a_malformed_postgres_url_is_one_store_error_without_the_secret(url: str, why: str) -> None:
    with pytest.raises(StoreError) as caught:
        parse_url(url)
    message = str(caught.value)
    assert why.lower() in message.lower() and SECRET not in message and "\n" not in message


def test_the_query_string_password_is_used(pg_url: str) -> None:
    args = parse_url(pg_url + f"?password={SECRET}&user=postgres")
    assert args["password"] == SECRET and args["user"] == "postgres"


def test_the_cli_never_prints_the_password(pg_url: str, tmp_path: Path) -> None:
    url = pg_url + f"?password={SECRET}&sslpassword={SECRET}"
    env = cli_env(tmp_path / "home", db=url)
    outputs = []
    for args in (["init"], ["init"], ["verify-chain", "--json"], ["events", "tail", "--json"]):
        done = kei(args, env)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    assert "password=***" in outputs[1]  # "already exists in <url>"
    bad = kei(["verify-chain"], cli_env(tmp_path / "home", db=url.replace("/kei_", "/nope_")))
    assert bad.returncode == 3 and "Traceback" not in bad.stderr
    outputs.append(bad.stdout + bad.stderr)
    for text in outputs:
        assert SECRET not in text


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{SECRET}@127.0.0.1:abc/db",
        f"postgresql://postgres:{SECRET}%g1@127.0.0.1/db",
        f"postgresql://postgres@127.0.0.1:70000/db?password={SECRET}",
    ],
)
def test_the_cli_reports_a_malformed_url_in_one_line(url: str, tmp_path: Path) -> None:
    done = kei(["verify-chain"], cli_env(tmp_path / "home", db=url))
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("kei: error: ")]
    assert len(errors) == 1 and "malformed PostgreSQL URL" in errors[0]


def test_libpq_options_in_the_url_reach_every_connection(pg_url: str) -> None:
    """``?application_name=`` shows on the server's side of the pool's connections,
    and ``?sslmode=require`` is obeyed (this server speaks no TLS: refused, one line),
    never dropped: a dropped sslmode would connect in clear without a word."""
    from kei.adapters.store import open_store

    store = open_store(pg_url + "?application_name=kei-options-test")
    try:
        store.create()
        rows = store.select(
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
    finally:
        store.close()
    assert rows == [("kei-options-test",)]
    with pytest.raises(StoreError) as caught:
        open_store(pg_url + "?sslmode=require")
    assert "SSL" in str(caught.value) and "\n" not in str(caught.value)
