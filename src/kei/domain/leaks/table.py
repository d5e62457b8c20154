"""The shipped rules, derived ahead of time (``kei/data/leaks.derived.json``).

Parsing the shipped ``leaks.toml`` and deriving what each rule needs (its flags, its
shortest match, its prefilter literals, a substitute rule's template) runs ``re``'s
parser on every pattern: most of a short write command's leak-matrix cost. The
derived table holds those results, with the SHA-256 of the TOML they came from; the
adapter (``kei.adapters.files.leaks``) uses it only while that digest still matches,
and a test recomputes it from the TOML, so a stale table is never trusted.

Pure: the adapter reads, hashes and decodes the files.
"""

from __future__ import annotations

from collections.abc import Iterable

from msgspec import Struct, structs

from kei.domain.leaks.rules import Rule, RuleData, pattern_where

__all__ = ["DerivedTable", "derived_table", "table_rules"]


class DerivedTable(Struct, frozen=True):
    """Every shipped rule as parsed (file order), and the digest of its TOML."""

    toml_sha256: str
    rules: tuple[RuleData, ...]


def derived_table(rules: Iterable[Rule], toml_sha256: str) -> DerivedTable:
    """The table of ``rules``, parsed from the TOML whose digest is ``toml_sha256``."""
    names = RuleData.__struct_fields__
    rows = (RuleData(**{n: getattr(r, n) for n in names}) for r in rules)
    return DerivedTable(toml_sha256, tuple(rows))


def table_rules(table: DerivedTable, source: str) -> tuple[Rule, ...]:
    """The rules of ``table``, each compiled on first use (the table was derived from
    patterns that all compiled; the test of the shipped table checks each one)."""
    return tuple(Rule(**structs.asdict(row), where=pattern_where(source, row.id))
                 for row in table.rules)  # fmt: skip
