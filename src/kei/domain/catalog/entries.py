"""Catalog entries: the vocabularies, the model and price types, and their validation.

Pure, like ``catalog.py``, which holds the queries. Every check fails with one
:class:`CatalogError` line naming the source, the model id and the field, e.g.
``models.toml: model 'gpt-4o' field 'pricing.status': expected one of verified, ...``.
Rules (upstream kei-model's test-checked invariants, plus fail-closed parsing):

- unknown keys are refused (a typo such as ``fallbak`` must not silently drop a field);
- rates are integers >= 0 of µ¢ per million units, never floats; besides input and
  output a token price may give cache-write (5 min, 1 h), cache-read and reasoning
  rates, a ``long_context`` table and a ``fast`` table (the same rate keys, no tiers
  of its own) for calls made in fast mode (``pricing.py`` says how they are used);
- ``placeholder`` prices have every rate 0; ``verified`` ones carry ``source_url``
  (https) and ``verified_at`` (YYYY-MM-DD) or ``source_version``;
- sizes are bounded (``LIMITS.max_catalog_models``, ``LIMITS.max_catalog_text_chars``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec import Struct
from msgspec.structs import asdict

from kei.domain.catalog.pricing import RATE_KEYS, FastRates, LongContext, Pricing
from kei.domain.values.dates import iso_date
from kei.errors import CatalogError
from kei.limits import LIMITS

CORE_PROVIDERS = ("anthropic", "openai", "kimi", "mistral", "deepseek", "local")
PROVIDERS = (*CORE_PROVIDERS, "google", "fal", "elevenlabs")
CAPABILITIES = ("code", "vision", "streaming", "function-call", "long-context-200k",
                "long-context-1m", "system-prompt", "image-gen", "text-to-image", "image-edit",
                "video-gen", "text-to-video", "image-to-video", "voice-gen", "text-to-speech",
                "voice-clone")  # fmt: skip
STATUSES = ("active", "deprecated", "preview", "beta")
PRICE_STATUSES = ("verified", "needs-verification", "placeholder")
UNITS = ("token", "image", "megapixel", "second", "1k-chars")
_MODEL_KEYS = {"id", "provider", "display_name", "context_tokens", "capabilities", "status",
               "role_tags", "fallback", "notes", "aliases", "pricing",
               "dated_snapshots"}  # fmt: skip
_RATES = ("input_per_mtok_micro", "output_per_mtok_micro")
_PRICE_KEYS = {*_RATES, *RATE_KEYS, "status", "unit", "source_url", "verified_at",
               "source_version", "long_context", "fast"}  # fmt: skip
_LONG_KEYS = {*_RATES, *RATE_KEYS, "above_input_tokens"}
_FAST_KEYS = {*_RATES, *RATE_KEYS}
# The fields every price digest covers, set or not (the fields of the first catalogs):
# a later field enters the digest only when set, so an entry that sets none of them
# keeps the digest that costs recorded before it existed name.
_DIGEST_ALWAYS = ("input_per_mtok_micro", "output_per_mtok_micro", "status", "unit",
                  "source_url", "verified_at")  # fmt: skip


class Model(Struct, frozen=True):
    id: str
    provider: str
    status: str
    pricing: Pricing
    display_name: str = ""
    context_tokens: int = 0
    capabilities: tuple[str, ...] = ()
    role_tags: tuple[str, ...] = ()
    fallback: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = ()
    # ``<id>-YYYYMMDD`` (a provider's dated snapshot) names this model too; set only
    # where the provider prices every snapshot of the model alike (Anthropic's rule)
    dated_snapshots: bool = False

    def to_dict(self) -> dict[str, object]:
        """The catalog entry as TOML-shaped data (lists, not tuples)."""
        data: dict[str, object] = msgspec.to_builtins(self)
        for key in ("capabilities", "role_tags", "aliases"):
            data[key] = list(getattr(self, key))
        data["pricing"] = pricing_dict(self.pricing)
        return data

    @property
    def price_digest(self) -> str:
        """``sha256:`` of the id and the whole price entry (every tier's rate, the
        long-context tier and the provenance), so a cost names the price it used.
        Computed once per entry: an import prices every message with it."""
        return _price_digest(self.id, self.pricing)


@functools.lru_cache(maxsize=256)
def _price_digest(model_id: str, pricing: Pricing) -> str:
    data = asdict(pricing)
    entry = {"id": model_id, **{k: data[k] for k in _DIGEST_ALWAYS}, **pricing_dict(pricing)}
    raw = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def pricing_dict(p: Pricing) -> dict[str, object]:
    """A price entry as TOML-shaped data: the fields that are set, tiers included."""
    data: dict[str, object] = {k: v for k, v in asdict(p).items() if v is not None}
    for key, table in (("long_context", p.long_context), ("fast", p.fast)):
        if table is not None:
            data[key] = {k: v for k, v in asdict(table).items() if v is not None}
    return data


def parse_entry(raw: object, by_id: Mapping[str, Model], source: str) -> Model:
    if not isinstance(raw, dict):
        raise CatalogError(f"{source}: every [[models]] entry must be a table")
    mid = check_text(raw.get("id"), f"{source}:", "a model", "id")
    base = by_id.get(mid)
    data = {**base.to_dict(), **raw} if base is not None else dict(raw)
    if base is not None and "pricing" in raw:
        data["pricing"] = raw["pricing"]  # replaced whole, never merged
    return _parse_model(mid, data, f"{source}: model {mid!r} field")


def _parse_model(mid: str, d: Mapping[str, object], where: str) -> Model:
    check_keys(d, _MODEL_KEYS, where.rsplit(" field", 1)[0], "model")
    for req in ("provider", "status", "pricing"):
        if req not in d:
            raise CatalogError(f"{where} {req!r}: missing")
    provider = _choice(d["provider"], PROVIDERS, f"{where} 'provider'")
    ctx = d.get("context_tokens", 0)
    if isinstance(ctx, bool) or not isinstance(ctx, int) or ctx < 0:
        raise CatalogError(f"{where} 'context_tokens': expected an integer >= 0, found {ctx!r}")
    return Model(
        id=mid,
        provider=provider,
        status=_choice(d["status"], STATUSES, f"{where} 'status'"),
        pricing=_parse_pricing(d["pricing"], f"{where} 'pricing"),
        display_name=check_text(d.get("display_name", mid), where, "", "display_name"),
        context_tokens=ctx,
        capabilities=tuple(_choice(c, CAPABILITIES, f"{where} 'capabilities'")
                           for c in _texts(d.get("capabilities", []), where, "capabilities")),
        role_tags=_texts(d.get("role_tags", []), where, "role_tags"),
        fallback=check_text(d.get("fallback", ""), where, "", "fallback", empty=True),
        notes=check_text(d.get("notes", ""), where, "", "notes", empty=True),
        aliases=_texts(d.get("aliases", []), where, "aliases"),
        dated_snapshots=_flag(d.get("dated_snapshots", False), f"{where} 'dated_snapshots'"),
    )  # fmt: skip


def _parse_pricing(raw: object, where: str) -> Pricing:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}': expected a table")
    check_keys(raw, _PRICE_KEYS, where + "'", "pricing")
    rates = [_rate(raw.get(key), f"{where}.{key}'") for key in _RATES]
    tiers = _tier_rates(raw, where)
    status = _choice(raw.get("status"), PRICE_STATUSES, f"{where}.status'")
    unit = _choice(raw.get("unit", "token"), UNITS, f"{where}.unit'")
    url = raw.get("source_url")
    if url is not None and not (isinstance(url, str) and url.startswith("https://")):
        raise CatalogError(f"{where}.source_url': expected an https:// URL, found {url!r}")
    when = _date(raw.get("verified_at"), f"{where}.verified_at'")
    version = raw.get("source_version")
    if version is not None:
        version = check_text(version, "", where + ".source_version'", "value")
    fast = _fast(raw.get("fast"), f"{where}.fast")
    if status == "placeholder" and (rates != [0, 0] or any(tiers) or fast is not None):
        raise CatalogError(f"{where}.status': a placeholder price must have every rate 0")
    if status == "verified" and (url is None or (when is None and version is None)):
        raise CatalogError(
            f"{where}.status': a verified price needs source_url and verified_at "
            "(or source_version)"
        )
    long = _long_context(raw.get("long_context"), f"{where}.long_context")
    if unit != "token" and (any(t is not None for t in tiers) or long or fast):
        raise CatalogError(f"{where}.unit': only a token price has cache, context or fast tiers")
    write_5m, write_1h, read, reasoning = tiers
    return Pricing(rates[0], rates[1], status, unit, url, when, write_5m, write_1h, read,
                   reasoning, long, version, fast)  # fmt: skip


def _long_context(raw: object, where: str) -> LongContext | None:
    """The ``[models.pricing.long_context]`` table: a threshold and the rates above it."""
    rates = _rate_table(raw, where, _LONG_KEYS, "long_context")
    if rates is None:
        return None
    above = _rate(raw.get("above_input_tokens") if isinstance(raw, dict) else None,
                  f"{where}.above_input_tokens'")  # fmt: skip
    return LongContext(above_input_tokens=above, **rates)


def _fast(raw: object, where: str) -> FastRates | None:
    """The ``[models.pricing.fast]`` table: the rates of a call made in fast mode."""
    rates = _rate_table(raw, where, _FAST_KEYS, "fast")
    return None if rates is None else FastRates(**rates)


def _rate_table(raw: object, where: str, keys: set[str], what: str) -> dict[str, Any] | None:
    """A sub-table's input and output rates (required) and tier rates (None where left
    out), by field name; None when the table is absent."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}': expected a table")
    check_keys(raw, keys, where + "'", what)
    rates: dict[str, Any] = {key: _rate(raw.get(key), f"{where}.{key}'") for key in _RATES}
    rates.update(zip(RATE_KEYS, _tier_rates(raw, where), strict=True))
    return rates


def _tier_rates(raw: Mapping[str, object], where: str) -> tuple[int | None, ...]:
    """The optional tier rates (``RATE_KEYS``, in order), None where left out."""
    return tuple(None if key not in raw else _rate(raw[key], f"{where}.{key}'")
                 for key in RATE_KEYS)  # fmt: skip


def _rate(v: object, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise CatalogError(f"{where}: expected an integer >= 0 (µ¢), found {v!r}")
    return v


def _date(value: object, where: str) -> str | None:
    if value is None:
        return None
    when = iso_date(value)
    if when is None:
        raise CatalogError(f"{where}: expected a date YYYY-MM-DD, found {value!r}")
    return when


def check_keys(d: Mapping[str, object], allowed: set[str], where: str, what: str) -> None:
    extra = sorted(set(d) - allowed)
    if extra:
        raise CatalogError(f"{where}: unknown {what} field {extra[0]!r}")


def _choice(value: object, allowed: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise CatalogError(f"{where}: expected one of {', '.join(allowed)}, found {value!r}")
    return value


def check_text(value: object, where: str, who: str, name: str, *, empty: bool = False) -> str:
    label = f"{where} {who}".strip()
    if (
        not isinstance(value, str)
        or (not value and not empty)
        or len(value) > LIMITS.max_catalog_text_chars
    ):
        raise CatalogError(f"{label} {name!r}: expected a non-empty string, found {value!r}"
                           if not empty else
                           f"{label} {name!r}: expected a string, found {value!r}")  # fmt: skip
    return value


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise CatalogError(f"{where}: expected true or false, found {value!r}")
    return value


def _texts(value: object, where: str, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > LIMITS.max_catalog_list_items:
        raise CatalogError(f"{where} {name!r}: expected a list of strings, found {value!r}")
    return tuple(check_text(v, where, "", name) for v in value)
