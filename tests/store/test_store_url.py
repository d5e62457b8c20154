"""A store URL is parsed once (``StoreURL``): every part a store, the read models or a
message needs, and never the password where it could be shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from kei.adapters.readmodels.db import sqlalchemy_url
from kei.adapters.store.urls import StoreURL
from kei.errors import InputError, StoreError

SECRET = "Xq7-SEKRET-9zP"


def test_a_sqlite_url_names_its_file_as_given() -> None:
    url = StoreURL.parse("sqlite:////tmp/a b?c.db")
    assert (url.scheme, url.path, url.redacted) == ("sqlite", Path("/tmp/a b?c.db"), url.text)
    assert url.sqlalchemy == "sqlite:////tmp/a b?c.db" and url.named == url.options == ()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_a_postgres_url_has_every_part(scheme: str) -> None:
    url = StoreURL.parse(f"{scheme}://kei:{SECRET}@db.example:6543/ledger?sslmode=require")
    assert url.scheme == "postgresql" and url.path is None
    assert (
        url.sqlalchemy
        == f"postgresql+psycopg://kei:{SECRET}@db.example:6543/ledger?sslmode=require"
    )
    assert url.connect_args == {
        "host": "db.example", "port": 6543, "user": "kei", "password": SECRET, "dbname": "ledger"
    }  # fmt: skip
    assert url.libpq == {**url.connect_args, "sslmode": "require"}
    assert SECRET not in url.redacted and SECRET not in repr(url)


def test_kei_defaults_fill_what_the_url_leaves_out() -> None:
    args = StoreURL.parse("postgresql:///ledger").connect_args
    assert args == {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "", "dbname": "ledger"}  # fmt: skip


def test_a_parsed_url_is_returned_as_it_is() -> None:
    url = StoreURL.parse("sqlite:////tmp/x.db")
    assert StoreURL.parse(url) is url and sqlalchemy_url(url) == sqlalchemy_url(url.text)


def test_an_unsupported_url_is_one_input_error_without_the_secret() -> None:
    with pytest.raises(InputError, match="unsupported store URL") as caught:
        StoreURL.parse(f"mysql://u:{SECRET}@h/db")
    assert SECRET not in str(caught.value) and caught.value.hint


def test_a_malformed_postgres_url_is_refused_when_parsed() -> None:
    with pytest.raises(StoreError, match="malformed PostgreSQL URL") as caught:
        StoreURL.parse(f"postgresql://u:{SECRET}@h:abc/db")
    assert SECRET not in str(caught.value)
    with pytest.raises(InputError, match="names no database"):
        StoreURL.parse("postgresql://u@h:5432")
