"""The leak matrix (upstream kei-leak-matrix): rules, corpora, the write-path API, the CLI.

Secrets in this file are built at run time from random characters, so the file itself
stays clean for any scanner; the real-format fakes live in ``fixtures/leaks/secrets``.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import typer
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from cli_helpers import cli_env, kei
from kei.adapters.cli.commands import leaks_cmd
from kei.adapters.files import leaks as leak_files
from kei.adapters.files.leaks import ENV_VAR, Skipped, load_matrix, walk_texts
from kei.domain.leaks.matrix import SCOPES, Matrix
from kei.domain.leaks.rules import shannon_entropy
from kei.domain.leaks.verdicts import Blocked, redact_match
from kei.errors import InputError, LeakBlockedError, LeakMatrixError
from kei.limits import LIMITS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "leaks"
SECRETS = FIXTURES / "secrets"
CLEAN = FIXTURES / "clean"
REPO = Path(__file__).resolve().parents[2]
B62 = string.ascii_letters + string.digits


def walk_scannable(root: Path) -> list[Path]:
    """The files a folder scan of ``root`` reads."""
    return [Path(item[0]) for item in walk_texts(root) if not isinstance(item, Skipped)]


# fixture file -> times its intended rule (the file's stem) fires
EXPECTED = {
    "anthropic-api-key.py": 2, "authorization-header.sh": 2, "aws-access-key-id.sh": 2,
    "aws-secret-access-key.json": 1, "aws-secret-access-key.sh": 1,
    "database-url-password.toml": 4, "elevenlabs-api-key.py": 1, "fal-api-key.sh": 1,
    "gcp-service-account-key.json": 1, "generic-secret-assignment.py": 4,
    "github-fine-grained-pat.md": 1, "github-token.sh": 3, "gitlab-token.toml": 2,
    "google-api-key.ts": 1, "groq-api-key.py": 1, "huggingface-token.sh": 1, "jwt.md": 2,
    "npm-token.sh": 1, "openai-api-key.ts": 3, "openrouter-api-key.sh": 1,
    "perplexity-api-key.ts": 1, "private-key.md": 3, "pypi-token.toml": 1,
    "replicate-api-token.sh": 1, "sk-api-key.py": 2, "slack-token.js": 3,
    "slack-webhook-url.json": 1, "stripe-secret-key.js": 2, "xai-api-key.sh": 1,
    "password-assignment.env": 3, "password-flag.sh": 2,
    "discord-webhook-url.json": 1, "telegram-bot-token.sh": 2, "twilio-api-key.sh": 1,
    "twilio-credentials.sh": 1, "kei-api-token.sh": 1,
}  # fmt: skip


def fake(prefix: str, n: int, alphabet: str = B62, seed: int = 7) -> str:
    rnd = random.Random(f"{prefix}{n}{seed}")
    return prefix + "".join(rnd.choice(alphabet) for _ in range(n))


def rule(rid: str, pattern: str, severity: str = "block", **extra: Any) -> dict[str, Any]:
    return {"id": rid, "pattern": pattern, "category": "secret", "severity": severity,
            "scope": ["all-writes"], "rationale": "test", "added": "2026-11-25", **extra}  # fmt: skip


def matrix(*rules: dict[str, Any]) -> Matrix:
    return Matrix.from_data({"rule": list(rules)}, source="t.toml")


@pytest.fixture(scope="module")
def shipped() -> Matrix:
    return load_matrix(None, {}, None)


def secret_parts(m: Matrix, text: str) -> Iterator[str]:
    """Each match's secret material: its ``secret`` group, else the match past its first 20
    characters (fixed prefixes such as ``pypi-AgEIcHlwaS5vcmc`` are public). The GCP rule's
    match is a JSON key and a PEM header only; the key body is the private-key rule's."""
    for r in m.rules:
        if r.id == "gcp-service-account-key":
            continue
        for found in r.finditer(text):
            if "secret" in r.regex.groupindex:
                yield found.group("secret")
            elif len(found.group(0)) >= 36:
                yield found.group(0)[20:]


# --- the shipped rules ---------------------------------------------------------------------


def test_shipped_rules_are_documented_secrets_for_every_write(shipped: Matrix) -> None:
    assert len(shipped.rules) >= 25
    assert len({r.id for r in shipped.rules}) == len(shipped.rules)
    for r in shipped.rules:
        assert r.rationale and r.added in ("2026-11-25", "2026-12-07", "2026-12-08"), r.id
        assert (r.category, r.scope) == ("secret", ("all-writes",)), r.id
        assert r.severity in ("block", "substitute"), r.id
    assert {f.split(".", maxsplit=1)[0] for f in EXPECTED} == {r.id for r in shipped.rules}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fake_credential_is_caught_by_its_rule(shipped: Matrix, name: str) -> None:
    text = (SECRETS / name).read_text(encoding="utf-8")
    intended = name.split(".", maxsplit=1)[0]
    found = shipped.scan_text(text, label=name)
    assert sum(v.rule_id == intended for v in found) == EXPECTED[name], found
    lines = text.split("\n")
    for v in found:
        assert v.file == name
        assert v.matched_redacted.endswith("…") and len(v.matched_redacted) <= 13
        assert v.matched_redacted[:-1] in lines[v.line - 1]


def test_every_fixture_file_has_a_row() -> None:
    assert sorted(p.name for p in SECRETS.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("path", sorted(walk_scannable(CLEAN)), ids=lambda p: p.name)
def test_prose_and_code_corpus_has_no_false_positive(shipped: Matrix, path: Path) -> None:
    for scope in SCOPES:
        assert shipped.scan_text(path.read_text(encoding="utf-8"), scope, path.name) == []


def test_kei_own_sources_and_docs_have_no_false_positive(shipped: Matrix) -> None:
    files = [REPO / "README.md", *walk_scannable(REPO / "docs"), *walk_scannable(REPO / "src")]
    assert len(files) > 50
    found = [
        v for f in files for v in shipped.scan_text(f.read_text(encoding="utf-8"), label=str(f))
    ]
    assert found == []


def test_documentation_examples_and_placeholders_do_not_fire(shipped: Matrix) -> None:
    for text in ("AKIAIOSFODNN7EXAMPLE", "postgresql://user:password@localhost/db",
                 "redis://:<password>@cache:6379", "mysql://scott:tiger@localhost/test",
                 "-----BEGIN PRIVATE KEY-----", "task-" + "0123456789abcdef" * 2,
                 "private_key: PKCS7PrivateKeyTypes,", "token = make_session_token_v2(seed)",
                 "api_key = os.environ['OPENAI_API_KEY']", "max_tokens = 4096"):  # fmt: skip
        assert shipped.scan_text(text) == [], text


# --- scanning: lines, redaction, scopes, severities -------------------------------------------


def test_lines_are_1_based_and_matches_may_span_lines(shipped: Matrix) -> None:
    token = fake("ghp_", 36)
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + fake("MIIE", 60) + "\n-----END RSA PRIVATE KEY-----"
    found = shipped.scan_text(f"one\ntwo\n  {token}\n\n{pem}\n", label="x")
    assert [(v.rule_id, v.line, v.severity) for v in found] == [
        ("github-token", 3, "block"), ("private-key", 5, "block")]  # fmt: skip
    assert found[0].matched_redacted == token[:12] + "…"


def test_redaction_never_shows_more_than_half_a_match() -> None:
    assert redact_match("0123456789abcdefghijklmnopq") == "0123456789ab…"  # 12, upstream's cut
    assert redact_match("0123456789abcdefghij") == "0123456789…"  # half of 20
    assert redact_match("hunter22") == "hunt…"
    assert redact_match("x") == "…"


def scoped() -> Matrix:
    return matrix(
        rule("push-only", r"PUSHME\d+", scope=["github-push"]),
        rule("everywhere", r"ANYWHERE\d+", severity="warn"),
        rule("mirror-and-commit", r"MIRROR\d+", scope=["public-mirror", "commit-msg"]),
        rule("never", r"PUSHME\d+", severity="exclude"),
    )


@pytest.mark.parametrize(("scope", "expected"), [
    ("all-writes", ["everywhere"]),
    ("github-push", ["push-only", "everywhere"]),
    ("public-mirror", ["everywhere", "mirror-and-commit"]),
    ("commit-msg", ["everywhere", "mirror-and-commit"]),
])  # fmt: skip
def test_a_rule_applies_to_its_scopes_or_to_all_with_all_writes(
    scope: str, expected: list[str]
) -> None:
    found = scoped().scan_text("PUSHME1 ANYWHERE2 MIRROR3", scope)
    assert [v.rule_id for v in found] == expected


def test_severity_filter_keeps_one_severity_and_exclude_never_fires() -> None:
    m = scoped()
    assert [v.rule_id for v in m.scan_text("PUSHME1 ANYWHERE2", "github-push", severity="warn")] \
        == ["everywhere"]  # fmt: skip
    assert m.scan_text("PUSHME1 ANYWHERE2", "github-push", severity="exclude") == []
    assert m.lint("PUSHME1") is not None and m.lint("PUSHME1").id == "push-only"  # type: ignore[union-attr]


@pytest.mark.parametrize(("scope", "severity"), [("everything", None), ("all-writes", "blok")])
def test_unknown_scope_or_severity_is_an_input_error(scope: str, severity: str | None) -> None:
    with pytest.raises(InputError, match="expected one of"):
        scoped().scan_text("x", scope, severity=severity)
    with pytest.raises(InputError):
        scoped().check_fields({"a": "x"}, scope if severity is None else "nope")


# --- substitution -----------------------------------------------------------------------------


@pytest.mark.parametrize(("replacement", "expected"), [
    ("$1=***", "user=*** done"),
    ("${key}=***", "user=*** done"),
    ("${1}x", "userx done"),
    ("$$1 cost", "$1 cost done"),
    ("a\\b$2", "a\\bhunter2x done"),
    ("$", "$ done"),
])  # fmt: skip
def test_rust_replacement_syntax_is_translated(replacement: str, expected: str) -> None:
    m = matrix(rule("pw", r"(?P<key>user)=(\w+)", "substitute", substitute_with=replacement))
    assert m.substitute("user=hunter2x done") == (expected, ("pw",))


def test_rust_named_groups_are_accepted() -> None:
    m = matrix(rule("pw", r"(?<name>pw)=\S+", "substitute", substitute_with="${name}=[gone]"))
    assert m.substitute("pw=abc") == ("pw=[gone]", ("pw",))


def test_empty_matches_never_count_and_patterns_stay_out_of_repr() -> None:
    m = matrix(rule("lookahead", "(?=SECRETPATTERN)", "substitute", substitute_with="[X]"))
    assert m.scan_text("a SECRETPATTERN b") == []
    assert m.substitute("a SECRETPATTERN b") == ("a SECRETPATTERN b", ())
    assert "SECRETPATTERN" not in repr(m) and "SECRETPATTERN" not in repr(m.rules[0])


def test_substitute_applies_only_substitute_rules_in_file_order() -> None:
    m = matrix(
        rule("blocker", r"SECRET\d+"),
        rule("warner", r"WARN\d+", "warn", substitute_with="nope"),
        rule("first", r"tok-\w+", "substitute", substitute_with="tok-[A]"),
        rule("second", r"\[A\]", "substitute", substitute_with="[B]"),
        rule("no-template", r"pin=\d+", "substitute"),
    )
    text, used = m.substitute("SECRET1 WARN2 tok-abc pin=1234", "commit-msg")
    assert text == "SECRET1 WARN2 tok-[B] [REDACTED:no-template]"
    assert used == ("first", "second", "no-template")


def test_shipped_substitutions_keep_the_context_and_drop_the_secret(shipped: Matrix) -> None:
    password, value = fake("", 24, seed=1), fake("", 32, seed=2)
    text = f"DATABASE_URL=postgresql://app:{password}@db:5432/kei\nMISTRAL_API_KEY={value}\n"
    out, used = shipped.substitute(text)
    assert out == ("DATABASE_URL=postgresql://app:[REDACTED:database-url-password]@db:5432/kei\n"
                   "MISTRAL_API_KEY=[REDACTED:generic-secret-assignment]\n")  # fmt: skip
    assert used == ("database-url-password", "generic-secret-assignment")


# --- the write path ---------------------------------------------------------------------------


def test_clean_fields_pass_untouched(shipped: Matrix) -> None:
    fields = {"summary": "merged 2 of 3 children (12,000 tokens)", "reason": "rotation"}
    verdict = shipped.check_fields(fields)
    assert verdict.ok and verdict.blocked is None
    assert dict(verdict.fields) == fields
    assert verdict.redacted_by == () and verdict.warned_by == ()
    verdict.raise_if_blocked()


def test_a_blocking_rule_refuses_the_write_naming_rule_and_field(shipped: Matrix) -> None:
    token = fake("ghp_", 36)
    verdict = shipped.check_fields({"summary": "ok", "reason": f"used {token} to push"})
    assert verdict.blocked is not None
    assert (verdict.blocked.rule_id, verdict.blocked.field) == ("github-token", "reason")
    assert not verdict.ok and dict(verdict.fields) == {}
    with pytest.raises(LeakBlockedError) as caught:
        verdict.raise_if_blocked()
    message = str(caught.value)
    assert "github-token" in message and "'reason'" in message and "nothing was appended" in message
    assert token[4:] not in message and "\n" not in message
    assert isinstance(caught.value, InputError)


def test_the_first_field_and_the_first_rule_in_file_order_win(shipped: Matrix) -> None:
    sa_key = (SECRETS / "gcp-service-account-key.json").read_text(encoding="utf-8")
    verdict = shipped.check_fields({"a": "fine", "b": sa_key, "c": fake("AKIA", 16, B62.upper())})
    assert verdict.blocked is not None
    assert (verdict.blocked.rule_id, verdict.blocked.field) == ("gcp-service-account-key", "b")


def test_substitution_redacts_and_records_which_rules_did(shipped: Matrix) -> None:
    jwt = "eyJ" + fake("", 30, seed=3) + ".eyJ" + fake("", 40, seed=4) + "." + fake("", 43, seed=5)
    verdict = shipped.check_fields({"note": "plain", "log": f"got {jwt}"})
    assert verdict.ok
    assert verdict.fields == {"note": "plain", "log": "got [REDACTED:jwt]"}
    assert dict(verdict.redactions) == {"log": ("jwt",)}
    assert verdict.redacted_by == ("jwt",)


def test_block_looks_at_the_original_and_warn_at_what_is_written() -> None:
    m = matrix(
        rule("hide", r"tok-\w+", "substitute", substitute_with="[hidden]"),
        rule("blocker", r"tok-danger"),
        rule("flag-hidden", r"\[hidden\]", "warn"),
        rule("flag-raw", r"tok-\w+", "warn"),
    )
    # "hide" would turn tok-danger into [hidden], but block rules see the original text
    assert m.check_fields({"a": "x tok-danger"}).blocked == Blocked("blocker", "a")
    verdict = m.check_fields({"a": "x tok-fine", "b": "clean"})
    assert verdict.ok and verdict.fields["a"] == "x [hidden]"
    assert dict(verdict.warnings) == {"a": ("flag-hidden",)}
    assert verdict.warned_by == ("flag-hidden",)


# --- rule files: validation, loading, precedence --------------------------------------------


BAD_RULES = [
    ({"severity": "blok"}, "field 'severity': expected one of block, warn, substitute, exclude"),
    ({"category": "secrets"}, "field 'category': expected one of"),
    ({"scope": ["all-write"]}, "field 'scope': expected one of"),
    ({"scope": []}, "field 'scope': expected a non-empty list"),
    ({"pattern": "(unclosed"}, "field 'pattern': not a valid regex"),
    ({"pattern": r"\p{L}+"}, "field 'pattern': not a valid regex"),
    ({"pattern": "[[:alpha:]]+"}, "field 'pattern': not a valid regex"),
    ({"pattern": "x*"}, "field 'pattern': matches the empty string"),
    ({"added": "25/11/2026"}, "field 'added': expected a date"),
    ({"substitute_with": "$2", "severity": "substitute"}, "group $2 does not exist"),
    ({"substitute_with": "${nope}", "severity": "substitute"}, "group 'nope' does not exist"),
    ({"min_entropy": 9}, "field 'min_entropy'"),
    ({"rationale": ""}, "field 'rationale'"),
    ({"colour": "red"}, "field 'colour': unknown field"),
]


@pytest.mark.parametrize(("change", "message"), BAD_RULES, ids=[m for _, m in BAD_RULES])
def test_a_bad_rule_is_refused_with_one_line_naming_rule_and_field(
    change: dict[str, Any], message: str
) -> None:
    bad = rule("bad-rule", r"(SECRETPATTERN)\d+")
    bad.update(change)
    with pytest.raises(LeakMatrixError) as caught:
        matrix(rule("good", "fine"), bad)
    text = str(caught.value)
    assert text.startswith("t.toml: rule 'bad-rule' field ") and message in text
    assert "\n" not in text and "SECRETPATTERN" not in text and str(bad["pattern"]) not in text


@pytest.mark.parametrize(("data", "message"), [
    ({"rule": [rule("a", "x"), rule("a", "y")]}, "rule 'a' field 'id': defined twice"),
    ({"rule": [{"pattern": "x"}]}, "[[rule]] number 1 field 'id'"),
    ({"rule": [{"id": "a"}]}, "rule 'a' field 'pattern': missing"),
    ({"rules": []}, "unknown top-level key 'rules'"),
    ({"rule": "x"}, "'rule' must be a list"),
])  # fmt: skip
def test_malformed_matrix_files_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(LeakMatrixError, match=r"^t\.toml: ") as caught:
        Matrix.from_data(data, source="t.toml")
    assert message in str(caught.value)


def write_rules(path: Path, *rules: dict[str, Any]) -> Path:
    lines = []
    for r in rules:
        lines.append("[[rule]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in r.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def toml_value(v: object) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return f"'''{v}'''" if isinstance(v, str) else str(v)


def test_matrix_precedence_explicit_then_env_then_shipped_plus_user(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write_rules(home / "leaks.toml", rule("house-rule", "HOUSE"),
                rule("jwt", r"eyJ\S+", "warn"))  # fmt: skip
    env_file = write_rules(tmp_path / "env.toml", rule("from-env", "ENV"))
    explicit = write_rules(tmp_path / "cli.toml", rule("from-cli", "CLI"))
    default = load_matrix(None, {}, home)
    assert default.rules[-1].id == "house-rule"
    jwt = default.rule("jwt")
    assert jwt is not None and jwt.severity == "warn"  # replaced in place, by id
    assert len(default.rules) == len(load_matrix(None, {}, None).rules) + 1
    assert [r.id for r in load_matrix(None, {ENV_VAR: str(env_file)}, home).rules] == ["from-env"]
    assert [r.id for r in load_matrix(explicit, {ENV_VAR: str(env_file)}, home).rules] \
        == ["from-cli"]  # fmt: skip


@pytest.mark.parametrize(("content", "message"), [
    (b"[[rule]\nid = 1", "bad TOML"), (b"\xff\xfe", "not UTF-8"),
])  # fmt: skip
def test_unreadable_matrix_files_are_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "m.toml"
    path.write_bytes(content)
    with pytest.raises(LeakMatrixError, match=message):
        load_matrix(path, {}, None)
    with pytest.raises(LeakMatrixError, match="cannot read"):
        load_matrix(tmp_path / "missing.toml", {}, None)


# --- invariants -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(text=st.text(), scope=st.sampled_from(SCOPES))
def test_scanning_never_raises_on_any_text(shipped: Matrix, text: str, scope: str) -> None:
    for v in shipped.scan_text(text, scope):
        assert v.line >= 1 and v.matched_redacted.endswith("…")
    shipped.substitute(text, scope)
    shipped.check_fields({"f": text}, scope)


@pytest.mark.parametrize(
    "unit",
    [
        "token=",
        "-eyJ",
        "secret_access_key=",
        "api_key=a_b_",
        "postgres://u:",
        "sk-ant-api03-",
        "-----BEGIN PRIVATE KEY-----\nA",
    ],
)
def test_repeated_triggers_are_scanned_without_blowing_up(shipped: Matrix, unit: str) -> None:
    text = unit * (40_000 // len(unit))  # quadratic patterns would take minutes here
    shipped.scan_text(text)
    shipped.substitute(text)
    shipped.check_fields({"f": text})


SPICE = ["sk-", "ghp_", "AKIA", "eyJ", "-----BEGIN PRIVATE KEY-----\n", "postgres://a:",
         "@", "token=", "Authorization: Bearer ", "\\n", "\n", "_", "=", '"']  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from(SPICE), st.text(B62 + "+/-_.:", max_size=60))))
def test_scanning_never_raises_on_secret_shaped_text(shipped: Matrix, parts: list[str]) -> None:
    text = "".join(parts)
    for v in shipped.scan_text(text):
        assert len(v.matched_redacted) <= 13
    out, _ = shipped.substitute(text)
    shipped.check_fields({"f": text, "g": out})


prose = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
body = st.text(B62, min_size=20, max_size=60)


@settings(max_examples=200, deadline=None)
@given(before=prose, after=prose, password=st.text(B62, min_size=6, max_size=40),
       value=body, user=st.text(string.ascii_lowercase, min_size=1, max_size=12))  # fmt: skip
def test_redacted_output_never_contains_the_secret(
    shipped: Matrix, before: str, after: str, password: str, value: str, user: str
) -> None:
    assume(shannon_entropy(password) >= 2.5 and shannon_entropy(value) >= 3.5)
    assume(any(c.isdigit() for c in value) and any(c.isalpha() for c in value))
    for secret in (password, value):
        assume(secret not in before + after + user)
    text = f"{before} postgresql://{user}:{password}@db/x API_TOKEN={value} {after}"
    verdict = shipped.check_fields({"f": text})
    assume(verdict.ok)  # the random text may hold a blocked token of its own
    assert password not in verdict.fields["f"] and value not in verdict.fields["f"]
    assert {"database-url-password", "generic-secret-assignment"} <= set(verdict.redacted_by)


TOKENS = [("ghp_", 36, B62), ("AKIA", 16, string.ascii_uppercase + string.digits),
          ("sk-ant-api03-", 95, B62 + "_-"), ("glpat-", 20, B62), ("xoxb-1", 30, B62),
          ("npm_", 36, B62), ("AIza", 35, B62)]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(before=prose, after=prose, kind=st.sampled_from(TOKENS), seed=st.integers(0, 10**6))
def test_block_tokens_are_refused_wherever_they_appear(
    shipped: Matrix, before: str, after: str, kind: tuple[str, int, str], seed: int
) -> None:
    token = fake(kind[0], kind[1], kind[2], seed)
    verdict = shipped.check_fields({"f": f"{before} {token} {after}"})
    assert verdict.blocked is not None and verdict.fields == {}
    assert token[len(kind[0]) :] not in verdict.blocked.message


# --- the CLI ----------------------------------------------------------------------------------


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test root, as kei's own app registers the group."""

    leaks_cmd.register(app)
    return app


def run(home: Path, *args: str, stdin: str | bytes | None = None, **env: str) -> Result:
    return CliRunner().invoke(cli(), ["leaks", *args], input=stdin, env=cli_env(home, **env))


def assert_no_secret_or_pattern(m: Matrix, output: str) -> None:
    public = " ".join(r.rationale for r in m.rules)  # e.g. the fixed pypi- token prefix
    for name in EXPECTED:
        text = (SECRETS / name).read_text(encoding="utf-8")
        for match in secret_parts(m, text):
            windows = {match[i : i + 16] for i in range(max(1, len(match) - 15))}
            leaked = [w for w in windows if w in output and w not in public]
            assert not leaked, (name, match[:12])
    for r in m.rules:
        assert r.regex.pattern[:24] not in output


def test_scan_of_the_secrets_corpus_exits_2_and_never_echoes(
    shipped: Matrix, tmp_path: Path
) -> None:
    for extra in ([], ["--json"]):
        result = run(tmp_path, "scan", str(SECRETS), *extra)
        assert result.exit_code == 2, result.output
        for name in EXPECTED:
            assert name in result.stdout
        assert_no_secret_or_pattern(shipped, result.stdout + result.stderr)
    assert "findings (" in result.stderr


def test_scan_of_the_clean_corpus_exits_0(tmp_path: Path) -> None:
    result = run(tmp_path, "scan", str(CLEAN))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"no leaks found in {len(list(walk_scannable(CLEAN)))} files" in result.stderr


def test_scan_exit_codes_follow_upstream(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "m.toml", rule("w", "WARNME", "warn"),
                        rule("s", "SUBME", "substitute"), rule("b", "BLOCKME"))  # fmt: skip
    cases = {"nothing here": 0, "SUBME only": 0, "WARNME and SUBME": 1, "WARNME BLOCKME": 2}
    for text, code in cases.items():
        result = run(tmp_path, "scan", "-", "--matrix", str(rules), stdin=text)
        assert result.exit_code == code, (text, result.output)
    result = run(tmp_path, "scan", "-", "--matrix", str(rules), "--severity", "warn",
                 stdin="WARNME BLOCKME")  # fmt: skip
    assert result.exit_code == 1 and result.stdout == "<stdin>:1: warn w WAR…\n"


def test_scan_json_lines_and_severity_filter(tmp_path: Path) -> None:
    result = run(tmp_path, "scan", str(SECRETS), "--json", "--severity", "substitute")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and {r["severity"] for r in rows} == {"substitute"}
    assert set(rows[0]) == {"rule_id", "severity", "file", "line", "matched_redacted"}


def test_a_folder_is_walked_by_content_not_name(tmp_path: Path) -> None:
    token = fake("ghp_", 36)
    tree = tmp_path / "tree"
    for rel in ("a.py", "b.md", "c.txt", ".git/d.py", "node_modules/e.js", "target/f.rs",
                ".venv/g.py", "sub/g.json", "sub/h.rs", "bin.sh", "nul.bin"):  # fmt: skip
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(f"x = 1\n{token}\n", encoding="utf-8")
    (tree / "bin.sh").write_bytes(b"\xff\xfe " + token.encode())  # not UTF-8: scanned
    (tree / "nul.bin").write_bytes(b"\x7fELF\0\0 " + token.encode())  # binary: skipped
    result = run(tmp_path, "scan", str(tree))
    assert result.exit_code == 2
    files = sorted(line.split(":")[0] for line in result.stdout.splitlines())
    expected = ("a.py", "b.md", "bin.sh", "c.txt", "sub/g.json", "sub/h.rs")
    assert files == [str(tree / p) for p in expected]
    assert "skipped 1: binary" in result.stderr


def test_list_is_a_markdown_table_without_patterns(shipped: Matrix, tmp_path: Path) -> None:
    result = run(tmp_path, "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[:2] == ["| id | category | severity | scope | rationale | added |",
                         "|---|---|---|---|---|---|"]  # fmt: skip
    assert len(lines) == 2 + len(shipped.rules)
    assert lines[2].startswith("| gcp-service-account-key | secret | block | all-writes | ")
    assert_no_secret_or_pattern(shipped, result.stdout)
    assert len(run(tmp_path, "list", "--category", "personal").stdout.splitlines()) == 2
    bad = kei(["leaks", "list", "--category", "nope"], cli_env(tmp_path))  # a choice: usage error
    assert bad.returncode == 2
    assert bad.stderr.startswith("kei: error: Invalid value for '--category': 'nope'")


def test_lint_names_the_first_matching_rule_or_suggests_one(tmp_path: Path) -> None:
    result = run(tmp_path, "lint", "--pattern", fake("ghp_", 36))
    assert (result.exit_code, result.stdout) == (0, "github-token\n")
    result = run(tmp_path, "lint", "--pattern", "hello world")
    assert (result.exit_code, result.stdout) == (0, "no match (suggested category: secret)\n")


def test_substitute_copies_stdin_with_redactions(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "m.toml",
                        rule("pw", r"(pass=)\S+", "substitute", substitute_with="$1***"),
                        rule("b", "BLOCKME"))  # fmt: skip
    result = run(tmp_path, "substitute", "--matrix", str(rules), stdin="pass=hunter2 BLOCKME\nend")
    assert result.exit_code == 0
    assert result.stdout == "pass=*** BLOCKME\nend"
    assert result.stderr == "kei: redacted by pw\n"


def test_user_rules_and_env_matrix_reach_the_cli(tmp_path: Path) -> None:
    write_rules(tmp_path / "leaks.toml", rule("house", "HOUSEKEY", "warn"))
    assert run(tmp_path, "scan", "-", stdin="HOUSEKEY").exit_code == 1
    env_rules = write_rules(tmp_path / "env.toml", rule("only", "ONLYME"))
    result = run(tmp_path, "lint", "--pattern", "HOUSEKEY ONLYME", **{ENV_VAR: str(env_rules)})
    assert result.stdout == "only\n"


@pytest.mark.parametrize("args", [
    ["scan", "-", "--scope", "everywhere"], ["scan", "-", "--severity", "blok"],
    ["scan", "/no/such/path"], ["substitute", "--scope", "x"],
])  # fmt: skip
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "kei", "leaks", *args], input="", text=True,
                            capture_output=True, env=cli_env(tmp_path), check=False)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("kei: error: ") and "Traceback" not in result.stderr


def test_a_bad_rule_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = write_rules(tmp_path / "bad.toml", rule("broken", "(SECRETPATTERN", "block"))
    result = run(tmp_path, "scan", "-", "--matrix", str(bad), stdin="x")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"kei: error: {bad}: rule 'broken' field 'pattern': not a valid regex "
        "(missing ), unterminated subpattern at offset 0)")  # fmt: skip
    assert "SECRETPATTERN" not in result.output


def test_the_cli_runs_as_a_real_process(tmp_path: Path) -> None:
    shim = ("import sys, typer\nfrom kei.adapters.cli.commands import leaks_cmd\n"
            "from kei.adapters.cli.output import run\napp = typer.Typer()\n"
            "@app.callback()\ndef main() -> None: pass\n"
            "leaks_cmd.register(app)\nrun(app, sys.argv[1:])\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", shim, "leaks", "scan", str(SECRETS / "jwt.md")],
                          env=cli_env(tmp_path), capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{SECRETS / 'jwt.md'}:3: substitute jwt eyJhbGciOiJI…",
                                        f"{SECRETS / 'jwt.md'}:5: substitute jwt eyJhbGciOiJS…"]  # fmt: skip


# --- folder scans read every regular file, and say what they could not -------------------

RECALL = FIXTURES / "recall"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
EXTENSIONS = (".env", ".yml", ".yaml", ".ini", ".cfg", ".txt", ".conf", ".properties", ".xml",
              ".pem", ".key", ".tf", ".log", "", ".unknown-ext")  # fmt: skip


def test_every_extension_is_scanned_by_content(tmp_path: Path) -> None:
    token = fake("ghp_", 36)
    tree = tmp_path / "tree"
    tree.mkdir()
    names = [f"f{i}{ext}" if ext else "Dockerfile" for i, ext in enumerate(EXTENSIONS)]
    for name in names:
        (tree / name).write_text(f"value: {token}\n", encoding="utf-8")
    result = run(tmp_path, "scan", str(tree))
    assert result.exit_code == 2
    assert sorted(Path(line.split(":")[0]).name for line in result.stdout.splitlines()) == sorted(
        names
    )
    assert f"in {len(names)} files" in result.stderr


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16"])
def test_files_that_are_not_utf8_are_scanned_too(tmp_path: Path, encoding: str) -> None:
    token = fake("ghp_", 36)
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "notes.txt").write_bytes(f"café: {token}\n".encode(encoding))
    for target in (tmp_path / "tree", tmp_path / "tree" / "notes.txt"):
        result = run(tmp_path, "scan", str(target))
        assert result.exit_code == 2, (encoding, result.output)
        assert "github-token" in result.stdout
    result = run(tmp_path, "scan", "-", stdin=f"caf\xe9 {token}".encode("latin-1"))
    assert result.exit_code == 2 and "github-token" in result.stdout


def test_links_devices_and_fifos_in_a_folder_are_skipped_never_opened(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "ok.txt").write_text("nothing\n", encoding="utf-8")
    (tree / "zero").symlink_to("/dev/zero")
    (tree / "outside").symlink_to(SECRETS / "github-token.sh")
    os.mkfifo(tree / "pipe")
    result = run(tmp_path, "scan", str(tree))
    assert result.exit_code == 0, result.output
    assert "no leaks found in 1 file" in result.stderr
    assert (
        "skipped 2: symbolic link" in result.stderr and "skipped 1: not a regular" in result.stderr
    )


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_a_named_special_file_is_refused_at_once(tmp_path: Path, target: str) -> None:
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        target = str(tmp_path / "fifo")
    done = kei(["leaks", "scan", target], cli_env(tmp_path))  # a real process: no hang
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"kei: error: {target}: not a regular file")


def test_stdin_is_read_up_to_a_bound(tmp_path: Path) -> None:
    with open("/dev/zero", "rb") as zero:
        done = subprocess.run([sys.executable, "-m", "kei", "leaks", "scan", "-"], stdin=zero,
                              env=cli_env(tmp_path), capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "stdin: more than" in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads through chmod 000; the too-deep "
                    "and oversize tests cover an incomplete scan for root")  # fmt: skip
def test_an_unreadable_subfolder_fails_the_scan_and_is_named(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "locked").mkdir(parents=True)
    (tree / "locked" / "a.txt").write_text(fake("ghp_", 36), encoding="utf-8")
    (tree / "ok.txt").write_text("fine\n", encoding="utf-8")
    (tree / "locked").chmod(0)
    try:
        result = run(tmp_path, "scan", str(tree))
    finally:
        (tree / "locked").chmod(0o700)
    assert result.exit_code == 2
    assert f"kei: cannot read {tree / 'locked'}" in result.stderr
    assert "1 file or folder could not be read; the scan is incomplete" in result.stderr


def test_a_file_too_large_to_read_fails_the_scan_and_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        leak_files, "LIMITS", msgspec.structs.replace(LIMITS, max_leak_scan_bytes=64)
    )
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big.txt").write_text("a" * 65, encoding="utf-8")
    (tree / "small.txt").write_text("a" * 64, encoding="utf-8")
    result = run(tmp_path, "scan", str(tree))
    assert result.exit_code == 2
    assert f"kei: cannot read {tree / 'big.txt'}: larger than 64 bytes" in result.stderr
    assert "no leaks found in 1 file" in result.stderr
    assert "the scan is incomplete" in result.stderr


@pytest.mark.parametrize("content", ["", "# nothing but a comment\n", "rule = []\n"])
def test_an_empty_rule_file_is_refused_never_no_leaks_found(tmp_path: Path, content: str) -> None:
    (tmp_path / "m.toml").write_text(content, encoding="utf-8")
    for args in (["--matrix", str(tmp_path / "m.toml")], []):
        result = run(
            tmp_path, "scan", str(CLEAN), *args, KEI_LEAK_MATRIX_PATH=str(tmp_path / "m.toml")
        )
        assert result.exit_code == 2
        assert "holds no [[rule]]" in result.stderr and "no leaks found" not in result.stderr


def test_a_matrix_with_no_rule_firing_in_the_scope_is_refused(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "m.toml", rule("x", "NOPE", "exclude"),
                        {**rule("g", "PUSHME"), "scope": ["github-push"]})  # fmt: skip
    result = run(tmp_path, "scan", str(CLEAN), "--matrix", str(rules))
    assert result.exit_code == 2 and "no rule that fires in scope 'all-writes'" in result.stderr
    assert run(tmp_path, "scan", "-", "--matrix", str(rules), "--scope", "github-push",
               stdin="PUSHME").exit_code == 2  # fmt: skip


def test_fail_on_moves_the_bar(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "m.toml", rule("w", "WARNME", "warn"),
                        rule("s", "SUBME", "substitute"), rule("b", "BLOCKME"))  # fmt: skip
    cases = {  # text: exit codes with --fail-on block, warn (the default), substitute
        "nothing here": (0, 0, 0), "SUBME only": (0, 0, 1), "WARNME": (0, 1, 1),
        "WARNME SUBME": (0, 1, 1), "BLOCKME": (2, 2, 2),
    }  # fmt: skip
    for text, codes in cases.items():
        for level, code in zip(("block", "warn", "substitute"), codes, strict=True):
            result = run(tmp_path, "scan", "-", "--matrix", str(rules), "--fail-on", level,
                         stdin=text)  # fmt: skip
            assert result.exit_code == code, (text, level, result.output)
    jwt = RECALL.parent / "secrets" / "jwt.md"
    assert run(tmp_path, "scan", str(jwt)).exit_code == 0
    assert run(tmp_path, "scan", str(jwt), "--fail-on", "substitute").exit_code == 1
    bad = kei(["leaks", "scan", str(jwt), "--fail-on", "sometimes"], cli_env(tmp_path))
    assert bad.returncode == 2 and "Invalid value for '--fail-on': 'sometimes'" in bad.stderr


RECALL_RULES = {"pem-concatenated.py": "private-key", "pem-concatenated.js": "private-key",
                "dsn-at-sign.py": "database-url-password",
                "dsn-symbols.txt": "database-url-password"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(p.name for p in RECALL.iterdir()))
def test_generic_passwords_of_every_kind_are_found(shipped: Matrix, name: str) -> None:
    """The recall corpus: one written-out password per file, of the kinds detect-secrets
    finds (and some it does not); each is found, and redacted where substitute."""
    text = (RECALL / name).read_text(encoding="utf-8")
    found = {v.rule_id for v in shipped.scan_text(text, label=name)}
    expected = RECALL_RULES.get(
        name,
        "password-flag"
        if name.endswith(".sh") and any(w in text for w in ("mysql", "sshpass", "curl"))
        else "password-assignment",
    )
    assert expected in found, found
    redacted, used = shipped.substitute(text)
    if expected != "private-key":
        assert used and "[REDACTED:" in redacted


def test_the_clean_corpus_stays_clean_with_the_password_rules(shipped: Matrix) -> None:
    text = (CLEAN / "lookalikes.md").read_text(encoding="utf-8")
    assert "docker run -p 8080:80" in text
    assert shipped.scan_text(text) == []


@pytest.mark.skipif(not (STDLIB / "os.py").is_file(), reason="no Python standard library "
                    "sources on this machine (sysconfig's stdlib path has no os.py)")  # fmt: skip
def test_no_false_positive_on_the_python_standard_library(shipped: Matrix) -> None:
    """Every text file of the standard library (third-party site-packages left out),
    read as `kei leaks scan` reads a folder. The only findings allowed are the private
    keys CPython's test suite ships as PEM files (test/certdata): real key material, so
    true positives."""
    found = []
    for entry in sorted(STDLIB.iterdir()):
        if entry.name in ("site-packages", "dist-packages") or entry.is_symlink():
            continue
        items = walk_texts(entry) if entry.is_dir() else iter([leak_files._walked(str(entry))])
        for item in items:
            if not isinstance(item, Skipped):
                found += shipped.scan_text(item[1], label=item[0])
    wrong = [v for v in found if not (v.rule_id == "private-key" and "/certdata/" in v.file
                                      and v.file.endswith(".pem"))]  # fmt: skip
    assert wrong == []


def test_a_folder_too_deep_to_open_fails_the_scan_even_for_root(tmp_path: Path) -> None:
    """A subfolder os.walk cannot list (its path is longer than PATH_MAX, which stops
    root as well as anyone) is named, and the scan exits 2 instead of "no leaks"."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "ok.txt").write_text("fine\n", encoding="utf-8")
    fd = os.open(tree, os.O_RDONLY)
    try:
        for _ in range(18):  # 18 x 250 characters: past Linux's 4096
            os.mkdir("d" * 250, dir_fd=fd)
            deeper = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = deeper
    finally:
        os.close(fd)
    result = run(tmp_path, "scan", str(tree))
    assert result.exit_code == 2, result.output
    assert "kei: cannot read " in result.stderr and "File name too long" in result.stderr
    assert "the scan is incomplete" in result.stderr and "Traceback" not in result.output
