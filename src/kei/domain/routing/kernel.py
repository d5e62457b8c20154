"""DNA similarity kernel and kernel smoothing for unseen task classes (spec §4.3, §4.4).

A task class with no history for a model borrows evidence from the classes that
look like it. Upstream kei-model-router's kernel, kept term for term:

- Texts split on ``::``; a term counts only when its segment exists in both.
- role (segment 0): ``w.role`` when equal; an empty role counts as absent.
- caps (segment 1): ``w.caps × Jaccard`` of the ``-`` tokens, empty tokens
  dropped; two empty sets score 1.0 (``?`` is one token, so ``?`` vs ``?`` is 1).
- scope (segment 2): ``w.scope`` when exactly equal.
- body (segment 3): ``w.body × Jaccard`` of the character-bigram sets; when
  either text is shorter than 2 characters the score is 1 if equal, else 0. In a
  full DNA segment 3 still holds ``-<nonce8>``. (Upstream counts bytes; DNA
  segments are ASCII hex, where bytes and characters agree.)
- The sum is clamped to [0, 1].

The similarity is linear in the weights before the clamp, so :func:`features`
computes the four weight-free scores once and :func:`weigh` applies any weights;
calibration (``calibrate.py``) reuses them across its grid.

Example::

    >>> similarity("r::a-b-c::s::body1234", "r::a-b-d::s::body5678") > 0.78
    True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import NamedTuple

from msgspec import Struct
from msgspec.structs import asdict

from kei.domain.routing.posterior import Beta

__all__ = ["Features", "KernelWeights", "features", "similarity", "smoothed", "weigh"]

_SEPARATOR = "::"
_WEIGHT_KEYS = ("role", "caps", "scope", "body")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"kernel weight {name} must be a number, got {value!r}")
    return float(value)


class KernelWeights(Struct, frozen=True):
    """Weights of the four kernel terms; upstream's seed values (spec §4.3) by default."""

    role: float = 0.40
    caps: float = 0.25
    scope: float = 0.25
    body: float = 0.10

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(_number(name, value)) or value < 0:
                raise ValueError(f"kernel weight {name} must be finite and >= 0, got {value}")

    def to_dict(self) -> dict[str, float]:
        """The weights as event data: ``{"role", "caps", "scope", "body"}``."""
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> KernelWeights:
        """Weights read back from :meth:`to_dict`; every key is required, none extra."""
        if set(data) != set(_WEIGHT_KEYS):
            raise ValueError(f"kernel weights need exactly the keys {', '.join(_WEIGHT_KEYS)}")
        role, caps, scope, body = (_number(k, data[k]) for k in _WEIGHT_KEYS)
        return cls(role, caps, scope, body)


class Features(Struct, frozen=True):
    """The four weight-free term scores of a pair, each in [0, 1]."""

    role: float
    caps: float
    scope: float
    body: float


def features(a: str, b: str) -> Features:
    """The kernel's term scores for ``a`` and ``b``; 0 for a segment either lacks."""
    pa, pb = _parsed(a), _parsed(b)
    sa, sb = pa.segments, pb.segments
    role = 1.0 if sa[0] and sa[0] == sb[0] else 0.0
    caps = _jaccard_caps(pa.caps, pb.caps) if len(sa) > 1 and len(sb) > 1 else 0.0
    scope = 1.0 if len(sa) > 2 and len(sb) > 2 and sa[2] == sb[2] else 0.0
    body = _jaccard_bigrams(pa, pb) if len(sa) > 3 and len(sb) > 3 else 0.0
    return Features(role, caps, scope, body)


class _Parsed(NamedTuple):
    """A text split once into what the kernel compares (memoised: smoothing compares
    one target with every class of every model, the same texts over and over)."""

    segments: tuple[str, ...]
    caps: frozenset[str]
    grams: frozenset[str]


@functools.lru_cache(maxsize=16_384)
def _parsed(text: str) -> _Parsed:
    segments = tuple(text.split(_SEPARATOR))
    caps = frozenset(t for t in segments[1].split("-") if t) if len(segments) > 1 else frozenset()
    body = segments[3] if len(segments) > 3 else ""
    grams = frozenset(body[i : i + 2] for i in range(len(body) - 1))
    return _Parsed(segments, caps, grams)


def weigh(f: Features, w: KernelWeights) -> float:
    """``clamp(Σ weight·score, 0, 1)``, summed in upstream's order."""
    s = 0.0
    s += w.role * f.role
    s += w.caps * f.caps
    s += w.scope * f.scope
    s += w.body * f.body
    return min(max(s, 0.0), 1.0)


@functools.lru_cache(maxsize=8_192)
def similarity(a: str, b: str, w: KernelWeights = KernelWeights()) -> float:
    """Upstream's kernel ``K(a, b)`` in [0, 1]; symmetric. Memoised: smoothing one
    decision compares its class with the same classes once per ladder model."""
    return weigh(features(a, b), w)


def smoothed(
    target: str, by_class: Mapping[str, tuple[int, int]], w: KernelWeights = KernelWeights()
) -> Beta:
    """A posterior for ``target`` built from its neighbours' ``(n⁺, n⁻)`` counts.

    Starts at Beta(1, 1); every other non-empty class with ``sim > 0`` adds
    ``sim·n⁺`` to α and ``sim·n⁻`` to β. ``n`` is the unweighted count of the rows
    that contributed, so it says how much evidence exists, not how close it is.
    Classes are visited in sorted order (upstream's ``GROUP BY`` order), so the
    float sums do not depend on how the caller built the mapping.
    """
    alpha, beta, n = 1.0, 1.0, 0
    for task_class, (plus, minus) in sorted(by_class.items()):
        if not task_class or task_class == target:
            continue
        if plus < 0 or minus < 0:
            raise ValueError(f"counts must be >= 0, got {plus}, {minus} for {task_class!r}")
        sim = similarity(target, task_class, w)
        if sim <= 0.0:
            continue
        alpha += sim * plus
        beta += sim * minus
        n += plus + minus
    return Beta(alpha, beta, n)


def _jaccard_caps(ta: frozenset[str], tb: frozenset[str]) -> float:
    if not ta and not tb:
        return 1.0
    return len(ta & tb) / len(ta | tb)


def _jaccard_bigrams(pa: _Parsed, pb: _Parsed) -> float:
    a, b = pa.segments[3], pb.segments[3]
    if len(a) < 2 or len(b) < 2:
        return 1.0 if a == b else 0.0
    return len(pa.grams & pb.grams) / len(pa.grams | pb.grams)
