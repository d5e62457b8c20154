"""Task complexity τ and its tier, upstream's keyword heuristic (spec §4.6).

τ is computed and reported with every routing decision, but never changes the
choice (spec §4.4 step 1, §12.5): it is there so a reader can see what kind of
task went where. Rules, kept from upstream kei-model-router:

- Start at 0.50. Keywords are substrings of the lowercased prompt, and each
  category counts at most once: heavy +0.20, mid +0.10, light −0.10.
- Exact role match: a heavy role +0.20, a light role −0.20.
- Prompt length in UTF-8 bytes: under 100 −0.10, over 800 +0.10.
- Clamp to [0, 1]. Terms are added in upstream's order so τ is the same float.
- Tier: τ < 0.30 lookup, < 0.70 multi-step, otherwise architecture.

Example::

    >>> estimate("", "").tau
    0.4
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from msgspec import Struct

__all__ = [
    "HEAVY_KEYWORDS",
    "HEAVY_ROLES",
    "LIGHT_KEYWORDS",
    "LIGHT_ROLES",
    "MID_KEYWORDS",
    "Complexity",
    "Tier",
    "estimate",
    "tier_of",
]

# Spec §4.6: keyword categories (substring match on the lowercased prompt).
HEAVY_KEYWORDS: Final = ("architect", "derive", "proof", "theorem", "rewrite", "redesign",
                         "novel", "math", "spectral", "manifold", "algorithm", "convergence",
                         "asymptotic")  # fmt: skip
MID_KEYWORDS: Final = ("refactor", "implement", "wire", "integrate", "test", "audit", "review",
                       "merge", "migration", "schema", "endpoint", "trait", "async")  # fmt: skip
LIGHT_KEYWORDS: Final = ("list", "find", "where is", "what is", "search", "grep", "show",
                         "print", "display", "rename", "format", "lookup")  # fmt: skip
# Spec §4.6: roles (exact, case-sensitive match on the DNA's role segment).
HEAVY_ROLES: Final = frozenset({"physics-deriver", "ml-implementer", "ml-researcher",
                                "kei-architect", "architect", "kei-critic", "critic",
                                "code-implementer-rust", "code-implementer",
                                "infra-implementer-iac"})  # fmt: skip
LIGHT_ROLES: Final = frozenset({"Explore", "researcher-code", "researcher-web", "validator-doc",
                                "validator-version", "patent-compliance",
                                "keimd-expert"})  # fmt: skip

BASELINE: Final = 0.50
HEAVY_KW_WEIGHT: Final = 0.20
MID_KW_WEIGHT: Final = 0.10
LIGHT_KW_WEIGHT: Final = 0.10  # subtracted
ROLE_WEIGHT: Final = 0.20  # added for a heavy role, subtracted for a light one
LENGTH_WEIGHT: Final = 0.10
SHORT_PROMPT_BYTES: Final = 100
LONG_PROMPT_BYTES: Final = 800
LOOKUP_BELOW: Final = 0.30
MULTI_STEP_BELOW: Final = 0.70


class Tier(Enum):
    """How demanding a task looks, from τ."""

    LOOKUP = "lookup"
    MULTI_STEP = "multi_step"
    ARCHITECTURE = "architecture"


class Complexity(Struct, frozen=True):
    """τ in [0, 1] and the feature labels that moved it, in the order applied."""

    tau: float
    features: tuple[str, ...]

    @property
    def tier(self) -> Tier:
        return tier_of(self.tau)


def tier_of(tau: float) -> Tier:
    if tau < LOOKUP_BELOW:
        return Tier.LOOKUP
    if tau < MULTI_STEP_BELOW:
        return Tier.MULTI_STEP
    return Tier.ARCHITECTURE


def estimate(prompt: str, role: str) -> Complexity:
    """τ for ``prompt`` given to an agent of ``role`` (``""`` when there is none)."""
    lower = prompt.lower()
    tau = BASELINE
    found: list[str] = []
    if _any_in(HEAVY_KEYWORDS, lower):
        tau += HEAVY_KW_WEIGHT
        found.append("heavy_kw")
    if _any_in(MID_KEYWORDS, lower):
        tau += MID_KW_WEIGHT
        found.append("mid_kw")
    if _any_in(LIGHT_KEYWORDS, lower):
        tau -= LIGHT_KW_WEIGHT
        found.append("light_kw")
    if role in HEAVY_ROLES:
        tau += ROLE_WEIGHT
        found.append("heavy_role")
    if role in LIGHT_ROLES:
        tau -= ROLE_WEIGHT
        found.append("light_role")
    size = len(prompt.encode("utf-8", "surrogatepass"))
    if size < SHORT_PROMPT_BYTES:
        tau -= LENGTH_WEIGHT
        found.append("short_prompt")
    elif size > LONG_PROMPT_BYTES:
        tau += LENGTH_WEIGHT
        found.append("long_prompt")
    return Complexity(min(max(tau, 0.0), 1.0), tuple(found))


def _any_in(keywords: tuple[str, ...], text: str) -> bool:
    return any(kw in text for kw in keywords)
