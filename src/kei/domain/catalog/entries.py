"""Catalog entries: the vocabularies, the model and price types, and their validation.

Pure, like ``catalog.py``, which holds the queries. Every check fails with one
:class:`CatalogError` line naming the source, the model id and the field, e.g.
``models.toml: model 'gpt-4o' field 'pricing.status': expected one of verified, ...``.
Rules (upstream kei-model's test-checked invariants, plus fail-closed parsing):

- unknown keys are refused (a typo such as ``fallbak`` must not silently drop a field);
- rates are integers >= 0 of µ¢ per million units, never floats;
- ``placeholder`` prices have both rates 0; ``verified`` ones carry ``source_url``
  (https) and ``verified_at`` (YYYY-MM-DD);
- sizes are bounded (``LIMITS.max_catalog_models``, ``LIMITS.max_catalog_text_chars``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import msgspec
from msgspec import Struct
from msgspec.structs import asdict

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
               "role_tags", "fallback", "notes", "aliases", "pricing"}  # fmt: skip
_PRICE_KEYS = {"input_per_mtok_micro", "output_per_mtok_micro", "status", "unit",
               "source_url", "verified_at"}  # fmt: skip


class Pricing(Struct, frozen=True):
    """Rates in µ¢ per million units (tokens unless ``unit`` says otherwise)."""

    input_per_mtok_micro: int
    output_per_mtok_micro: int
    status: str
    unit: str = "token"
    source_url: str | None = None
    verified_at: str | None = None

    @property
    def vouched(self) -> bool:
        return self.status == "verified"


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

    def to_dict(self) -> dict[str, object]:
        """The catalog entry as TOML-shaped data (lists, not tuples)."""
        data: dict[str, object] = msgspec.to_builtins(self)
        for key in ("capabilities", "role_tags", "aliases"):
            data[key] = list(getattr(self, key))
        data["pricing"] = {k: v for k, v in asdict(self.pricing).items() if v is not None}
        return data

    @property
    def price_digest(self) -> str:
        """``sha256:`` of the id and price entry, so a cost can name the price it used."""
        entry = {"id": self.id, **asdict(self.pricing)}
        raw = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(raw).hexdigest()


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
    )  # fmt: skip


def _parse_pricing(raw: object, where: str) -> Pricing:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}': expected a table")
    check_keys(raw, _PRICE_KEYS, where + "'", "pricing")
    rates = []
    for key in ("input_per_mtok_micro", "output_per_mtok_micro"):
        v = raw.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise CatalogError(f"{where}.{key}': expected an integer >= 0 (µ¢), found {v!r}")
        rates.append(v)
    status = _choice(raw.get("status"), PRICE_STATUSES, f"{where}.status'")
    unit = _choice(raw.get("unit", "token"), UNITS, f"{where}.unit'")
    url = raw.get("source_url")
    if url is not None and not (isinstance(url, str) and url.startswith("https://")):
        raise CatalogError(f"{where}.source_url': expected an https:// URL, found {url!r}")
    when = _date(raw.get("verified_at"), f"{where}.verified_at'")
    if status == "placeholder" and rates != [0, 0]:
        raise CatalogError(f"{where}.status': a placeholder price must have both rates 0")
    if status == "verified" and (url is None or when is None):
        raise CatalogError(f"{where}.status': a verified price needs source_url and verified_at")
    return Pricing(rates[0], rates[1], status, unit, url, when)


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


def _texts(value: object, where: str, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > LIMITS.max_catalog_list_items:
        raise CatalogError(f"{where} {name!r}: expected a list of strings, found {value!r}")
    return tuple(check_text(v, where, "", name) for v in value)
