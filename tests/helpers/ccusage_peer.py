"""ccusage, run for real on transcripts the tests build, and kei's reports beside it.

``KEI_TEST_CCUSAGE`` names the ccusage executable (``bash .ci/ccusage`` installs the
pinned release into ``.ci/node`` and prints its path; ``.ci/run`` sets the variable and
fails the run if these tests skip). ccusage runs offline (``--offline``: its bundled
price table, never the network), on the tree alone (``CLAUDE_CONFIG_DIR``, ``HOME``
and the working directory all point into the test's folder, so neither the machine's
``~/.claude`` nor a ``ccusage.json`` config is read), grouping days in UTC as kei does,
and always pricing tokens (``--mode calculate``: the fixtures carry no ``costUSD``).

The prices: ccusage 18.0.11's ``--offline`` table (``PREFETCHED_CLAUDE_PRICING`` in its
``dist/data-loader-*.js``) is a snapshot of the Claude entries of LiteLLM's
``model_prices_and_context_window.json`` taken when that release was built. It has one
cache-write rate (the 5-minute one) and, for a few models, rates above 200k tokens.
:data:`CCUSAGE_RATES` restates it in µ¢ per million tokens (the probe test checks it
against ccusage itself); :func:`ccusage_prices_toml` writes it as a kei
``models.toml``, so both tools price with the same numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from msgspec import Struct

CCUSAGE_ENV: Final = "KEI_TEST_CCUSAGE"
PINNED: Final = "18.0.11"  # .ci/node/package-lock.json
USD: Final = 100_000_000  # µ¢ in a dollar


class Rates(Struct, frozen=True):
    """ccusage's rates for one model, µ¢ per million tokens (its ``*_cost_per_token``
    times 10¹⁴). ``cache_write`` is every cache write: ccusage has no 1-hour rate."""

    input: int
    output: int
    cache_write: int
    cache_read: int
    above_200k: Rates | None = None  # LiteLLM's ``*_above_200k_tokens`` rates
    fast: int | None = None  # LiteLLM's ``provider_specific_entry.fast`` multiplier


CCUSAGE_RATES: Final = {
    "claude-opus-4-7": Rates(500_000_000, 2_500_000_000, 625_000_000, 50_000_000, fast=6),
    "claude-sonnet-4-6": Rates(300_000_000, 1_500_000_000, 375_000_000, 30_000_000),
    "claude-haiku-4-5": Rates(100_000_000, 500_000_000, 125_000_000, 10_000_000),
    "claude-sonnet-4-5": Rates(
        300_000_000, 1_500_000_000, 375_000_000, 30_000_000,
        above_200k=Rates(600_000_000, 2_250_000_000, 750_000_000, 60_000_000),
    ),
}  # fmt: skip


class Ccusage(Struct, frozen=True):
    """One ccusage executable and its version."""

    path: str
    version: str

    def report(self, config_dir: Path, kind: str, *extra: str) -> dict[str, Any]:
        """``ccusage KIND --json`` over ``config_dir/projects`` (see the module docstring)."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(config_dir),
               "CLAUDE_CONFIG_DIR": str(config_dir), "TZ": "UTC", "NO_COLOR": "1"}  # fmt: skip
        args = [self.path, kind, "--json", "--offline", "--mode", "calculate",
                "--timezone", "UTC", *extra]  # fmt: skip
        done = subprocess.run(args, env=env, cwd=config_dir, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, f"ccusage {self.version} {kind}: {done.stderr[-2000:]}"
        found: dict[str, Any] = json.loads(done.stdout)
        return found


def find_ccusage(root: Path) -> Ccusage | str:
    """The ccusage ``KEI_TEST_CCUSAGE`` names (a relative path is from ``root``, the
    checkout), or why there is none: unset is a reason to skip, a wrong path is not."""
    given = os.environ.get(CCUSAGE_ENV, "").strip()
    if not given:
        return (f"ccusage parity tests need {CCUSAGE_ENV}, the path of a ccusage executable "
                f"(`bash .ci/ccusage` installs ccusage {PINNED} and prints it)")  # fmt: skip
    path = Path(given) if Path(given).is_absolute() else root / given
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, text=True,
                              timeout=60, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise AssertionError(f"{CCUSAGE_ENV}={given}: ccusage does not run: {exc}") from exc
    return Ccusage(str(path), done.stdout.strip())


def ccusage_prices_toml(rates: Mapping[str, Rates] = CCUSAGE_RATES) -> str:
    """A kei ``models.toml`` pricing each model at ccusage's rates: a 1-hour cache write at
    ccusage's one cache-write rate, the rates above 200k tokens as kei's long-context
    tier (the numbers agree; how each tool applies them does not, docs/claude-code.md),
    and ccusage's fast multiplier as kei's ``fast`` table (every rate times it)."""
    out = []
    for model, r in rates.items():
        out += ["[[models]]", f'id = "{model}"', 'provider = "anthropic"', 'status = "active"',
                "[models.pricing]", *_rate_lines(r), 'status = "verified"',
                'source_url = "https://github.com/ryoppippi/ccusage"',
                f'source_version = "ccusage {PINNED} offline prices"']  # fmt: skip
        if r.above_200k is not None:
            out += ["[models.pricing.long_context]", "above_input_tokens = 200000",
                    *_rate_lines(r.above_200k)]  # fmt: skip
        if r.fast is not None:
            out += ["[models.pricing.fast]", *_rate_lines(_times(r, r.fast))]
        out.append("")
    return "\n".join(out)


def _times(r: Rates, factor: int) -> Rates:
    return Rates(r.input * factor, r.output * factor, r.cache_write * factor,
                 r.cache_read * factor)  # fmt: skip


def _rate_lines(r: Rates) -> list[str]:
    return [f"input_per_mtok_micro = {r.input}", f"output_per_mtok_micro = {r.output}",
            f"cache_write_5m_per_mtok_micro = {r.cache_write}",
            f"cache_write_1h_per_mtok_micro = {r.cache_write}",
            f"cache_read_per_mtok_micro = {r.cache_read}"]  # fmt: skip


def kei_import(
    in_kei: Any, url: str, home: Path, claude: Path, *, ccusage_prices: bool
) -> Callable[..., Any]:
    """kei on a fresh ledger, ``claude``'s transcripts imported; priced at ccusage's rates
    (a ``models.toml``) or at kei's shipped catalog."""
    home.mkdir()
    if ccusage_prices:
        (home / "models.toml").write_text(ccusage_prices_toml(), encoding="utf-8")
    run: Callable[..., Any] = in_kei(url, home)
    run("import", "claude-code", str(claude / "projects"))
    return run


def by_date(ccusage: Ccusage, claude: Path, kind: str, key: str) -> dict[str, int]:
    return {row[key]: micro(row["totalCost"]) for row in ccusage.report(claude, kind)[kind]}


def micro(usd: float) -> int:
    """ccusage's float dollars in µ¢, rounded (its sums carry float noise far below 1 µ¢)."""
    return round(usd * USD)


def kei_rows(run: Callable[..., Any], by: str) -> dict[str, dict[str, Any]]:
    """``kei cost report --by BY --json``'s rows by key."""
    found = json.loads(run("cost", "report", "--by", by, "--json").stdout)
    return {row[by]: row for row in found["rows"]}


def kei_micro(run: Callable[..., Any], by: str) -> dict[str, int]:
    return {key: int(row["micro_cents"]) for key, row in kei_rows(run, by).items()}
