"""Match a requested model id against the names a local backend serves (upstream
kei-llm-router ``pick_match``).

Catalog ids (``llama-3-70b-local``) and backend names (``llama3:70b`` in Ollama,
``Meta-Llama-3-70B-Instruct-Q4_K_M.gguf`` for llama.cpp, ``mlx-community/...-4bit`` for
MLX) spell one model in different ways, so the router compares reduced forms. Rules:

- An exact, case-sensitive equal name wins, wherever it is in the list.
- Otherwise :func:`normalise_base` reduces both names: lowercase, every non-alphanumeric
  character becomes a space, the quantisation and packaging words in :data:`DROPPED`
  are removed, and the remaining words are concatenated. A name matches when either
  reduced form contains the other; the first such name in list order wins.
- Unlike upstream, a name whose reduced form is empty (``chat``, ``q4-local``) never
  fuzzy-matches: upstream's empty string is contained in every name, so it matched the
  first model a backend listed.

Example::

    >>> pick_match("llama-3-70b-local", ["mistral:7b", "llama3:70b"])
    Match(name='llama3:70b', exact=False)
    >>> normalise_base("Llama-3-8B-Instruct-Q4")
    'llama38b'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from msgspec import Struct

__all__ = ["DROPPED", "Match", "normalise_base", "pick_match"]

DROPPED: Final = frozenset(
    {"q2", "q3", "q4", "q5", "q6", "q8", "f16", "f32", "bf16", "mlx", "4bit", "8bit",
     "instruct", "chat", "local"}
)  # fmt: skip


class Match(Struct, frozen=True):
    """The backend name that serves a requested model, and whether it was spelt the same."""

    name: str
    exact: bool


def normalise_base(name: str) -> str:
    """The reduced form fuzzy matching compares (see the module rules)."""
    spaced = "".join(ch if ch.isalnum() else " " for ch in name.lower())
    return "".join(word for word in spaced.split() if word not in DROPPED)


def pick_match(model_id: str, names: Iterable[str]) -> Match | None:
    """The name in ``names`` that serves ``model_id``: exact first, then the first fuzzy."""
    names = list(names)
    if model_id in names:
        return Match(model_id, exact=True)
    wanted = normalise_base(model_id)
    if not wanted:
        return None
    for name in names:
        base = normalise_base(name)
        if base and (wanted in base or base in wanted):
            return Match(name, exact=False)
    return None
