"""DNA: strict parsing of upstream's wire format, classes, the builder, raw task classes."""

from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.domain.agents.dna import Dna, build_dna, parse_dna, task_class_of
from kei.errors import InputError

HEX = "0123456789abcdefABCDEF"
VALID = "edit-local::NG-FW-FD-CP-CG-TG-ND-RF::5435F821::AC73A6A3-b3d36aa6"


# -- accepted texts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(VALID, id="upstream-doc-example-uppercase-hashes"),
        pytest.param(
            "code-implementer-rust::?::e3929e37::041b7526-674c5cf3", id="caps-placeholder"
        ),
        pytest.param("r::C::aBcDeF01::AbCdEf01-DEADBEEF", id="mixed-case-kept"),
        pytest.param("a:b::C:D::12345678::ABCDEF01-deadbeef", id="single-colons-in-role-and-caps"),
        pytest.param("rôle ✓::-::00000000::FFFFFFFF-ffffffff", id="unicode-role-and-dash-caps"),
    ],
)
def test_valid_texts_parse_and_print_back_unchanged(text: str) -> None:
    dna = parse_dna(text)
    assert str(dna) == text
    assert parse_dna(str(dna)) == dna


def test_fields_classes_and_tags() -> None:
    dna = parse_dna(VALID)
    assert (dna.role, dna.caps, dna.scope, dna.body, dna.nonce) == (
        "edit-local", "NG-FW-FD-CP-CG-TG-ND-RF", "5435F821", "AC73A6A3", "b3d36aa6",
    )  # fmt: skip
    assert dna.task_class == "edit-local::NG-FW-FD-CP-CG-TG-ND-RF::5435F821::AC73A6A3"
    assert dna.agent_class == "edit-local::NG-FW-FD-CP-CG-TG-ND-RF::5435F821"
    assert dna.tags == frozenset({"NG", "FW", "FD", "CP", "CG", "TG", "ND", "RF"})
    assert parse_dna("r::?::12345678::ABCDEF01-deadbeef").tags == frozenset({"?"})
    assert parse_dna("r::--A--::12345678::ABCDEF01-deadbeef").tags == frozenset({"A"})


def test_case_is_not_normalised() -> None:
    upper = parse_dna("r::C::ABCDEF01::ABCDEF01-DEADBEEF")
    lower = parse_dna("r::c::abcdef01::abcdef01-deadbeef")
    assert upper != lower
    assert str(upper) == "r::C::ABCDEF01::ABCDEF01-DEADBEEF"


def test_dna_is_a_frozen_hashable_value() -> None:
    dna = parse_dna(VALID)
    assert {dna, parse_dna(VALID)} == {dna}
    with pytest.raises(AttributeError):
        dna.role = "other"  # type: ignore[misc]


def test_direct_construction_is_checked() -> None:
    assert Dna("r", "C", "12345678", "ABCDEF01", "deadbeef") == parse_dna(
        "r::C::12345678::ABCDEF01-deadbeef"
    )
    with pytest.raises(InputError, match="scope segment 'xyz'"):
        Dna("r", "C", "xyz", "ABCDEF01", "deadbeef")
    with pytest.raises(InputError, match="round trip"):
        Dna("r:", "C", "12345678", "ABCDEF01", "deadbeef")  # parses back as ("r", ":C")


def test_non_str_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        parse_dna(b"r::C::12345678::ABCDEF01-deadbeef")  # type: ignore[arg-type]


# -- refused texts: the message names the segment, what was expected and what was found --


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "DNA '': empty; expected <role>::<caps>::<scope8>::<body8>-<nonce8>", id="empty"),
        pytest.param("a::b", "DNA 'a::b': expected 4 '::'-separated segments (<role>::<caps>::<scope8>::<body8>-<nonce8>), found 2 segments", id="too-few-segments"),
        pytest.param("r::C::X::12345678::ABCDEF01-deadbeef", "found 5 segments", id="too-many-segments"),
        pytest.param("r::C::12345678::ABCDEF01deadbeef", "DNA 'r::C::12345678::ABCDEF01deadbeef': last segment 'ABCDEF01deadbeef' must be <body8>-<nonce8>, found no '-'", id="no-nonce-dash"),
        pytest.param("::C::12345678::ABCDEF01-deadbeef", "DNA '::C::12345678::ABCDEF01-deadbeef': role segment is empty; expected a role name", id="empty-role"),
        pytest.param("r::::12345678::ABCDEF01-deadbeef", "DNA 'r::::12345678::ABCDEF01-deadbeef': caps segment is empty; expected tags joined with '-' or '?'", id="empty-caps"),
        pytest.param("x::y::zz::ABCDEF01-deadbeef", "DNA 'x::y::zz::ABCDEF01-deadbeef': scope segment 'zz' must be 8 hex characters, found 2 characters", id="short-scope"),
        pytest.param("r::C::123456789::ABCDEF01-deadbeef", "scope segment '123456789' must be 8 hex characters, found 9 characters", id="long-scope"),
        pytest.param("r::C::1234567Z::ABCDEF01-deadbeef", "scope segment '1234567Z' must be 8 hex characters, found 'Z' at offset 7", id="non-hex-scope"),
        pytest.param("r::C::12345678::ABCDEF0G-deadbeef", "body segment 'ABCDEF0G' must be 8 hex characters, found 'G' at offset 7", id="non-hex-body"),
        pytest.param("r::C::12345678::ABC-EF01-deadbeef", "body segment 'ABC' must be 8 hex characters, found 3 characters", id="dash-inside-body"),
        pytest.param("r::C::12345678::ABCDEF01-deadbee", "nonce segment 'deadbee' must be 8 hex characters, found 7 characters", id="short-nonce"),
        pytest.param("r::C::12345678::ABCDEF01-", "nonce segment '' must be 8 hex characters, found 0 characters", id="empty-nonce"),
        pytest.param("r::C::12345678::ABCDEF01-dead beef", "nonce segment 'dead beef' must be 8 hex characters, found 9 characters", id="space-in-nonce"),
        pytest.param("r::C::１２３４５６７８::ABCDEF01-deadbeef", "scope segment '１２３４５６７８' must be 8 hex characters, found '１' at offset 0", id="fullwidth-digits-are-not-hex"),
        pytest.param("r::C::1234_678::ABCDEF01-deadbeef", "found '_' at offset 4", id="underscore-is-not-hex"),
        pytest.param(" r::C::12345678::ABCDEF01-deadbeef ", "nonce segment 'deadbeef ' must be 8 hex characters, found 9 characters", id="whitespace-is-not-trimmed"),
        pytest.param("r::C::12345678::zzzz-x", "body segment 'zzzz'", id="scope-ok-body-checked-before-nonce"),
        pytest.param("::::zz::zz", "last segment 'zz' must be <body8>-<nonce8>", id="upstream-check-order"),
    ],
)  # fmt: skip
def test_malformed_dna_is_refused_with_a_precise_message(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_dna(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_messages_stay_on_one_line_and_bounded() -> None:
    with pytest.raises(InputError) as caught:
        parse_dna("r\n::C::12345678::ABCDEF01-dead\nbeef")
    assert "\n" not in str(caught.value)
    assert "'dead\\nbeef'" in str(caught.value)
    with pytest.raises(InputError) as long:
        parse_dna("r" * 10_000 + "::C::zz::ABCDEF01-deadbeef")
    assert len(str(long.value)) < 250
    assert "scope segment 'zz'" in str(long.value)


# -- the builder ------------------------------------------------------------------------


def _sha8(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


def test_build_mirrors_upstream_dna_builder() -> None:
    body = b'{"tier":"cx22","cloud_init_sha":"abc"}'
    dna = build_dna(
        "vm-managed", ["HZ", "CX22", "NB"], "keiseikit.dev/vms/hetzner/nbg1", body,
        bytes.fromhex("0a1b2c3d"),
    )  # fmt: skip
    assert str(dna) == "vm-managed::HZ-CX22-NB::6E44E26D::7BAE9EA2-0a1b2c3d"
    assert dna.scope == _sha8(b"keiseikit.dev/vms/hetzner/nbg1").upper()
    assert dna.body == _sha8(body).upper()
    assert dna.nonce == "0a1b2c3d"


def test_build_hashes_text_as_utf8_and_keeps_scope_and_body_across_nonces() -> None:
    one = build_dna("user", ["EM"], "scopé", "body", b"\x00\x00\x00\x01")
    two = build_dna("user", ["EM"], "scopé".encode(), b"body", b"\xff\xff\xff\xff")
    assert (one.scope, one.body) == (two.scope, two.body)
    assert (one.nonce, two.nonce) == ("00000001", "ffffffff")
    assert one.task_class == two.task_class
    assert one != two


@pytest.mark.parametrize(
    ("role", "tags", "match"),
    [
        pytest.param("", ["A"], "role segment is empty", id="empty-role"),
        pytest.param("r", [], "caps segment is empty", id="no-tags"),
        pytest.param("r", ["A::B"], "found 5 segments", id="separator-in-a-tag"),
    ],
)
def test_build_refuses_what_upstream_refuses(role: str, tags: list[str], match: str) -> None:
    with pytest.raises(InputError, match=match):
        build_dna(role, tags, "s", "b", bytes(4))


@pytest.mark.parametrize(
    ("tags", "nonce", "error"),
    [
        pytest.param("AB", bytes(4), TypeError, id="tags-as-one-string"),
        pytest.param(["A"], bytes(3), ValueError, id="nonce-too-short"),
        pytest.param(["A"], bytes(5), ValueError, id="nonce-too-long"),
        pytest.param(["A"], "00000000", ValueError, id="nonce-as-hex-text"),
    ],
)
def test_build_misuse_is_a_programming_error(
    tags: list[str], nonce: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        build_dna("r", tags, "s", "b", nonce)


def test_hook_produced_dna_parses() -> None:
    """hooks/agent-fork-logger.sh: lowercase hashes of the subagent name and the prompt."""
    subagent, prompt = "code-implementer", "Implement the parser.\nWith tests."
    text = f"{subagent}::?::{_sha8(subagent.encode())}::{_sha8(prompt.encode())}-9f3a0c7e"
    dna = parse_dna(text)
    assert str(dna) == text
    assert (dna.role, dna.caps, dna.nonce) == (subagent, "?", "9f3a0c7e")
    assert dna.agent_class == f"{subagent}::?::{_sha8(subagent.encode())}"
    assert task_class_of(text) == dna.task_class


# -- raw task class (upstream's SQL generated column) -----------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, None, id="null"),
        pytest.param("", None, id="empty-string"),
        pytest.param(VALID, VALID[:-9], id="full-dna"),
        pytest.param("x-abcdefgh", "x", id="ten-chars-stripped"),
        pytest.param("-abcdefgh", "-abcdefgh", id="exactly-nine-kept-sql-not-rust"),
        pytest.param("abcdefgh", "abcdefgh", id="short-kept"),
        pytest.param("legacy-dna-without-nonce", "legacy-dna-without-nonce", id="no-dash-at-9th"),
        pytest.param("a::b::c::d-not-hex!", "a::b::c::d", id="lexical-only-no-hex-check"),
        pytest.param("x-abcdefgé", "x", id="counts-characters-not-bytes"),
        pytest.param(VALID[:-9], VALID[:-9], id="task-class-is-a-fixed-point"),
    ],
)
def test_task_class_of_raw_text_mirrors_the_sql_column(
    text: str | None, expected: str | None
) -> None:
    assert task_class_of(text) == expected


# -- properties -------------------------------------------------------------------------

_free = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters=":"),
    min_size=1,
    max_size=20,
)
_hex8 = st.text(alphabet=HEX, min_size=8, max_size=8)
_segments = st.tuples(_free, _free, _hex8, _hex8, _hex8)


def _compose(role: str, caps: str, scope: str, body: str, nonce: str) -> str:
    return f"{role}::{caps}::{scope}::{body}-{nonce}"


@given(_segments)
def test_any_valid_dna_round_trips(segments: tuple[str, str, str, str, str]) -> None:
    text = _compose(*segments)
    dna = parse_dna(text)
    assert (dna.role, dna.caps, dna.scope, dna.body, dna.nonce) == segments
    assert str(dna) == text
    assert parse_dna(str(dna)) == dna
    assert task_class_of(text) == dna.task_class == text[:-9]
    assert dna.task_class.startswith(dna.agent_class + "::")


@given(st.text(min_size=1, max_size=30), st.lists(_free, min_size=1, max_size=5),
       st.binary(), st.binary(), st.binary(min_size=4, max_size=4))  # fmt: skip
def test_built_dnas_always_parse(
    role: str, tags: list[str], scope: bytes, body: bytes, nonce: bytes
) -> None:
    role = role.replace(":", "") or "r"
    dna = build_dna(role, tags, scope, body, nonce)
    assert parse_dna(str(dna)) == dna
    assert dna.scope == dna.scope.upper() and dna.nonce == nonce.hex()


_NON_HEX = st.characters(codec="utf-8", exclude_characters=HEX)
_HEX_SEGMENTS = {"scope": 2, "body": 3, "nonce": 4}


def _corruptions(segments: tuple[str, ...], name: str, index: int, char: str) -> list[str]:
    """Substitute a non-hex char, delete a char, insert a hex char: each at ``index``."""
    value = segments[_HEX_SEGMENTS[name]]
    variants = [
        value[:index] + char + value[index + 1 :],
        value[:index] + value[index + 1 :],
        value[:index] + "a" + value[index:],
    ]
    out = []
    for variant in variants:
        changed = list(segments)
        changed[_HEX_SEGMENTS[name]] = variant
        out.append(_compose(*changed))
    return out


@given(_segments, st.sampled_from(sorted(_HEX_SEGMENTS)), st.integers(0, 7), _NON_HEX)
def test_every_single_character_corruption_names_its_segment(
    segments: tuple[str, str, str, str, str], name: str, index: int, char: str
) -> None:
    for text in _corruptions(segments, name, index, char):
        with pytest.raises(InputError, match=f": {name} segment "):
            parse_dna(text)


@pytest.mark.parametrize("name", sorted(_HEX_SEGMENTS))
@pytest.mark.parametrize("index", range(8))
@pytest.mark.parametrize("char", [":", "-", "g", "G", " ", "\n", "é", "０"])
def test_awkward_corruptions_at_every_position(name: str, index: int, char: str) -> None:
    """The separators themselves are the likeliest to confuse splitting; try them everywhere."""
    segments = ("r", "C", "12345678", "ABCDEF01", "deadbeef")
    for text in _corruptions(segments, name, index, char):
        with pytest.raises(InputError, match=f": {name} segment "):
            parse_dna(text)


def test_non_hex_alphabet_is_exactly_ascii_hex() -> None:
    accepted = {c for c in string.printable if _parses_as_scope_char(c)}
    assert accepted == set(HEX)


def _parses_as_scope_char(char: str) -> bool:
    try:
        parse_dna(f"r::C::{char * 8}::ABCDEF01-deadbeef")
    except InputError:
        return False
    return True
