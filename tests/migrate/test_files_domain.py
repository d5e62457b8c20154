"""The pure rules of migration files: upstream's naming and checksum, the exact
irreversible marker (upstream's defect 1), ``create``'s names and versions, the schema
digest, the target's credential-free identity, and the tracker's times."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kei.adapters.migrate.urls import parse_target
from kei.domain.migrate.digest import schema_digest
from kei.domain.migrate.naming import DOWN_TEMPLATE, new_files, sanitise
from kei.domain.migrate.scripts import (
    IRREVERSIBLE,
    build_scripts,
    is_irreversible,
    parse_filename,
)
from kei.domain.migrate.tracker import parse_rfc3339_us, rfc3339
from kei.errors import InputError

UPSTREAM_DOWN_TEMPLATE = "-- down migration\n-- Write reverse SQL below, or add `-- IRREVERSIBLE` to block reversion.\n\n"


def test_upstream_naming_and_checksum() -> None:
    up = b"CREATE TABLE t (x INT);\n"
    scripts = build_scripts(
        [
            ("20260101120000_add_t.sql", up),
            ("20260101120000_add_t.down.sql", b"DROP TABLE t;\n"),
            ("0002_two_words.sql", b"SELECT 1;"),
            ("README.md", b"not a migration"),
        ]
    )
    assert [(s.version, s.name) for s in scripts] == [(2, "two_words"), (20260101120000, "add_t")]
    assert scripts[1].up.sha256 == hashlib.sha256(up).hexdigest()
    assert scripts[1].down is not None
    assert scripts[1].down.filename == "20260101120000_add_t.down.sql"
    assert scripts[0].down is None


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["1_a.sql", "01_b.sql"], "duplicate migration version 1"),
        (["x_a.sql"], "not named <version>_<name>.sql"),
        (["1.sql"], "not named"),
        (["-1_a.sql"], "not named"),
        (["1_.sql"], "not named"),
        (["99999999999999999999_a.sql"], r"beyond 2\^63-1"),
        (["1_a\nb.sql"], "control character"),
        (["1_a\x1b[31m.sql"], "control character"),
        (["1_a\udcff.sql"], "non-UTF-8"),
        ([f"1_{'n' * 256}.sql"], "over 255 characters"),
        (["1_a.sql", "1_b.down.sql"], "does not match up file"),
    ],
)
def test_hostile_or_broken_names_are_refused(files: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        build_scripts([(f, b"SELECT 1;") for f in files])


def test_a_file_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(InputError, match="not UTF-8"):
        build_scripts([("1_a.sql", b"\xff\xfe")])


def test_the_marker_is_a_whole_line() -> None:
    assert is_irreversible(f"DROP TABLE t;\n{IRREVERSIBLE}\n")
    assert is_irreversible("  -- IRREVERSIBLE  \r\n")  # upstream's word, as a line
    assert not is_irreversible(UPSTREAM_DOWN_TEMPLATE)  # defect 1: the hint matched
    assert not is_irreversible(DOWN_TEMPLATE.format(label="1_x"))
    assert not is_irreversible(f"-- add {IRREVERSIBLE} to block")


@given(
    before=st.text().filter(lambda s: "\n" not in s),
    after=st.text().filter(lambda s: "\n" not in s),
    marker=st.sampled_from([IRREVERSIBLE, "-- IRREVERSIBLE"]),
)
def test_the_marker_inside_a_longer_line_never_blocks(before: str, after: str, marker: str) -> None:
    text = f"SELECT 1;\n{before}{marker}{after}\nSELECT 2;"
    assert is_irreversible(text) == (not before.strip() and not after.strip())


@given(name=st.text(min_size=1, max_size=40))
def test_create_never_scaffolds_an_irreversible_down_file(name: str) -> None:
    try:
        files = new_files(name, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), [])
    except InputError:
        return  # over 80 bytes
    assert not is_irreversible(files.down_text)
    assert parse_filename(files.up_file) == (20260102030405, files.name, False)
    assert parse_filename(files.down_file) == (20260102030405, files.name, True)


def test_sanitise_as_upstream() -> None:
    assert sanitise("Add Users!") == "add_users_"
    assert sanitise("été") == "_t_"
    with pytest.raises(InputError, match="empty"):
        sanitise("")
    with pytest.raises(InputError, match="80 bytes"):
        sanitise("é" * 41)


def test_two_creates_in_one_second_get_two_versions() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = new_files("a", moment, [])
    second = new_files("b", moment, [first.up_file, first.down_file, "junk.sql"])
    assert (first.version, second.version) == (20260102030405, 20260102030406)


@given(
    st.lists(st.tuples(st.text(max_size=5), st.none() | st.integers()), max_size=8), st.randoms()
)
def test_the_digest_ignores_row_order(rows: list[tuple[str, int | None]], rnd: object) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert schema_digest({"t": rows, "u": []}) == schema_digest({"u": [], "t": shuffled})


def test_the_digest_sees_a_change() -> None:
    assert schema_digest({"t": [("a", 1)]}) != schema_digest({"t": [("a", 2)]})
    assert schema_digest({"t": [("a", None)]}) != schema_digest({"t": [("a", "")]})


@settings(deadline=None)
@given(
    user=st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=12),
    password=st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=6, max_size=20),
    scheme=st.sampled_from(["postgresql", "postgres", "mysql+pymysql", "mariadb"]),
)
def test_the_identity_never_holds_credentials(user: str, password: str, scheme: str) -> None:
    from urllib.parse import quote

    url = f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@db.example:7/app"
    target = parse_target(url + "?sslmode=require" * scheme.startswith("postgres")).target
    # the identity is host, port and database only: nothing of the user or password
    assert target.identity in ("postgresql://db.example:7/app", "mysql://db.example:7/app")
    assert target.stream == f"migrate/{target.identity}"


def test_sqlite_identities_are_resolved_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_target("sqlite:///app.db").target.identity == f"sqlite:///{tmp_path}/app.db"
    assert parse_target("sqlite://app.db").target.identity == f"sqlite:///{tmp_path}/app.db"
    assert parse_target("sqlite:app.db").target.identity == f"sqlite:///{tmp_path}/app.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "no target database"),
        ("ftp://x/y", "unsupported target URL scheme"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("postgresql://u:pw@host", "names no database"),
        ("mysql://u:pw@host:3306/db?autocommit=1", "option 'autocommit' is not supported"),
        ("mysql://u:pw@host:x/db", "does not parse"),
        ("sqlite:///a.db?cache=shared", "option 'cache'"),
        ("postgresql://h/db\x1b[2J", "control character"),
    ],
)
def test_hostile_urls_are_one_line_refusals(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        parse_target(url)
    assert "pw" not in str(caught.value)


def test_tracker_times() -> None:
    moment = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert rfc3339(moment) == "2026-05-01T10:00:00.123456+00:00"
    assert len(rfc3339(moment)) <= 32  # fits upstream's VARCHAR(32)
    expected = int(moment.timestamp()) * 1_000_000 + 123456
    assert parse_rfc3339_us(rfc3339(moment)) == expected
    assert parse_rfc3339_us("2026-05-01T10:00:00.123456789+00:00") == expected  # chrono's
    assert parse_rfc3339_us("yesterday") is None
    assert parse_rfc3339_us("2026-05-01T10:00:00") is None  # no zone: not RFC 3339
