"""The model catalog (upstream kei-model): parse, validate, resolve, price, fallback chains.

Pure: it takes TOML data already read into dicts (``adapters/files/catalog.py`` reads
the files) and a ``source`` label used only in error messages. Rules:

- Every field is checked; an unknown key, a wrong type or a value outside upstream's
  vocabularies is one :class:`CatalogError` line naming the source, model id and field.
- A *placeholder* price has every rate 0; a *verified* price carries ``source_url`` and
  ``verified_at`` (or ``source_version``). Only a verified price is vouched for (:attr:`Pricing.vouched`); every
  output that uses a price says which it is.
- A user catalog overlays the shipped one: a known id overlays field by field, except
  ``pricing``, which is replaced whole (a new rate must never inherit an old
  ``verified`` status); a new id is added; ``[selectors]`` overlays role by role;
  ``[router]`` (the router's ladder and fallback) key by key.
- ``resolve``, ``chain`` and ``price`` keep upstream's semantics (``docs/cli.md``);
  ``quote`` prices a whole ``TokenUsage`` tier by tier (cache writes and reads,
  reasoning, long context: ``pricing.py``).

Example::

    >>> cat = Catalog.from_data({"models": [{"id": "m", "provider": "local",
    ...     "status": "active", "pricing": {"input_per_mtok_micro": 0,
    ...     "output_per_mtok_micro": 0, "status": "placeholder"}}]}, source="x.toml")
    >>> cat.price("m", 1000, 1000).micro_cents
    0
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from msgspec import Struct, field

from kei.domain.agents.money import price_micro_cents
from kei.domain.catalog.entries import (
    CAPABILITIES,
    CORE_PROVIDERS,
    PRICE_STATUSES,
    PROVIDERS,
    STATUSES,
    UNITS,
    Model,
    check_keys,
    check_text,
    parse_entry,
)
from kei.domain.catalog.pricing import FAST, Parts, Pricing, TierCost, recorded_speed, tier_costs
from kei.domain.events.payload import TokenUsage
from kei.errors import (
    CatalogError,
    FallbackCycleError,
    InputError,
    NoMatchError,
    UnknownFilterError,
    UnknownModelError,
)
from kei.limits import LIMITS

__all__ = [
    "CAPABILITIES",
    "CORE_PROVIDERS",
    "PRICE_STATUSES",
    "PROVIDERS",
    "STATUSES",
    "UNITS",
    "Catalog",
    "FallbackChain",
    "Model",
    "Pricing",
    "ProviderCount",
    "Quote",
    "Resolution",
    "parts_of",
]

# a dated snapshot id: the model id, then -YYYYMMDD (Anthropic's form)
_DATED = re.compile(r"(.+)-(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")


class Quote(Struct, frozen=True):
    """A priced call: the sum of ``tiers`` (``pricing.tier_costs``), whether the
    entry's long-context rates applied, whether its fast-mode rates did (``fast``), and
    whether the call ran at a speed the entry has no rates for (``speed_unpriced``: the
    standard rates priced it, so the amount is below what was billed)."""

    model: Model
    input_tokens: int
    output_tokens: int
    micro_cents: int
    tiers: tuple[TierCost, ...] = ()
    long_context: bool = False
    fast: bool = False
    speed_unpriced: bool = False


class Resolution(Struct, frozen=True):
    model: Model
    reason: str


class FallbackChain(Struct, frozen=True):
    models: tuple[Model, ...]
    dangling: str | None = None  # an unknown id that ended the chain (upstream: silently)


class ProviderCount(Struct, frozen=True):
    name: str
    active_count: int
    deprecated_count: int


class Router(Struct, frozen=True):
    """The router's candidates (``[router]``): ``ladder`` cheapest first and the
    ``fallback`` when none is good enough, as model ids or aliases; empty means kei's
    default ladder (``kei.domain.routing.select.DEFAULT_LADDER``)."""

    ladder: tuple[str, ...] = ()
    fallback: str = ""


class Catalog(Struct, frozen=True):
    models: tuple[Model, ...]
    selectors: Mapping[str, str] = field(default_factory=dict)
    router: Router = Router()
    # every id and alias -> its model, built by ``overlay`` (a synced catalog holds
    # hundreds of models, and every cost looks one up); empty: scan ``models``
    names: Mapping[str, Model] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Mapping[str, object], *, source: str) -> Catalog:
        """Parse and validate one catalog's TOML data (``[[models]]``, ``[selectors]``)."""
        return Catalog((), {}).overlay(data, source=source)

    def overlay(self, data: Mapping[str, object], *, source: str) -> Catalog:
        """This catalog with ``data`` (a user catalog) laid over it; see the module rules."""
        check_keys(data, {"models", "selectors", "router"}, source, "catalog")
        entries = data.get("models", [])
        if not isinstance(entries, list) or len(entries) > LIMITS.max_catalog_models:
            raise CatalogError(
                f"{source}: 'models' must be a list of at most {LIMITS.max_catalog_models} tables"
            )
        by_id = {m.id: m for m in self.models}
        seen: set[str] = set()
        for raw in entries:
            model = parse_entry(raw, by_id, source)
            if model.id in seen:
                raise CatalogError(f"{source}: model {model.id!r} is listed twice")
            seen.add(model.id)
            by_id[model.id] = model
        selectors = dict(self.selectors)
        raw_sel = data.get("selectors", {})
        if not isinstance(raw_sel, dict):
            raise CatalogError(f"{source}: 'selectors' must be a table of role = model id")
        for role, target in raw_sel.items():
            selectors[role] = check_text(target, f"{source}:", f"selector {role!r}", "value")
        router = _router(data.get("router"), self.router, source)
        models = tuple(by_id.values())
        names = {name: m for m in models for name in (m.id, *m.aliases)}
        catalog = Catalog(models, selectors, router, names)
        catalog._check_names(source)
        return catalog

    def _check_names(self, source: str) -> None:
        names: dict[str, str] = {}
        for m in self.models:
            for name in (m.id, *m.aliases):
                if names.setdefault(name, m.id) != m.id:
                    raise CatalogError(
                        f"{source}: model {m.id!r} field 'aliases': {name!r} already names "
                        f"model {names[name]!r}"
                    )
        for role, target in self.selectors.items():
            if target not in names:
                raise CatalogError(f"{source}: selector {role!r} names unknown model {target!r}")
        rungs = [names.get(m, m) for m in self.router.ladder]
        for name in (*self.router.ladder, *filter(None, [self.router.fallback])):
            if name not in names:
                raise CatalogError(f"{source}: [router] names unknown model {name!r}")
        if len(set(rungs)) != len(rungs):
            raise CatalogError(f"{source}: [router] ladder names a model twice: {rungs}")

    def get(self, name: str) -> Model:
        """The model with this id or alias, or the model whose dated snapshot ``name``
        is (``claude-sonnet-4-5-20250929``) where the entry says snapshots price alike."""
        model = self._named(name)
        dated = _DATED.fullmatch(name)
        if model is None and dated is not None:
            model = self._named(dated.group(1))
            model = model if model is not None and model.dated_snapshots else None
        if model is None:
            raise UnknownModelError(f"unknown model {name!r}", hint="see `kei models list`")
        return model

    def _named(self, name: str) -> Model | None:
        if self.names:
            return self.names.get(name)
        return next((m for m in self.models if name == m.id or name in m.aliases), None)

    def find(self, name: str) -> Model | None:
        try:
            return self.get(name)
        except UnknownModelError:
            return None

    def select(
        self,
        *,
        provider: str | None = None,
        caps: Iterable[str] = (),
        status: str | None = None,
        role: str | None = None,
    ) -> list[Model]:
        """Upstream ``list`` filters; an unknown provider, cap or status is an error."""
        caps = tuple(caps)
        _known("provider", provider, PROVIDERS)
        _known("status", status, STATUSES)
        for cap in caps:
            _known("capability", cap, CAPABILITIES)
        return [
            m
            for m in self.models
            if (provider is None or m.provider == provider)
            and (status is None or m.status == status)
            and (role is None or role in m.role_tags)
            and set(caps) <= set(m.capabilities)
        ]

    def resolve(
        self, role: str, *, budget_micro: int | None = None, caps: Iterable[str] = ()
    ) -> Resolution:
        """Upstream ``resolve``: the cheapest active model with the caps and role tag.

        1. active models with every requested cap; 2. of those, the ones tagged with
        ``role``; if none, the role's ``[selectors]`` default, which (as upstream)
        skips the status and caps checks; 3. with a budget, keep models whose price of
        1,000 input plus 1,000 output tokens is within it; 4. the least
        (input rate, output rate, id).
        """
        caps = tuple(caps)
        for cap in caps:
            _known("capability", cap, CAPABILITIES)
        able = [m for m in self.models if m.status == "active" and set(caps) <= set(m.capabilities)]
        found = [m for m in able if role in m.role_tags]
        why = f"cheapest active model tagged {role!r}"
        if not found and role in self.selectors and (default := self.find(self.selectors[role])):
            found = [default]
            why = f"[selectors] default for {role!r} (status and caps not checked)"
        if budget_micro is not None:
            found = [m for m in found if _estimate_1k(m) <= budget_micro]
            why += f", within {budget_micro} µ¢ per 1k input + 1k output tokens"
        if not found:
            budget = "none" if budget_micro is None else str(budget_micro)
            raise NoMatchError(
                f"no active model matches role={role}, caps=[{', '.join(caps)}], budget={budget}"
            )
        best = min(found, key=lambda m: (m.pricing.input_per_mtok_micro,
                                         m.pricing.output_per_mtok_micro, m.id))  # fmt: skip
        return Resolution(best, why)

    def price(self, name: str, input_tokens: int, output_tokens: int) -> Quote:
        """Upstream ``estimate``: :meth:`quote` of input and output tokens alone."""
        return self.quote(name, TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens))

    def quote(self, name: str, usage: TokenUsage, speed: str | None = None) -> Quote:
        """The price of ``usage`` (``TokenUsage``'s convention), tier by tier, made at
        ``speed`` (None or ``standard``: the standard rates; ``fast``: the entry's fast
        table, or the standard rates and ``speed_unpriced`` when it has none).

        ``input_tokens`` and ``output_tokens`` must be known (the caller decides what an
        unknown count means). For a generation model (``pricing.unit`` not ``token``)
        the output rate is the price of one unit, so ``output_tokens`` counts units and
        is multiplied exactly; upstream divides it by a million too, which prices 4
        images at 15 µ¢.
        """
        m = self.get(name)
        p = m.pricing
        speed = recorded_speed(speed)
        fast = speed == FAST and p.fast is not None and p.unit == "token"
        odd = speed is not None and not fast  # a speed the entry has no rates for
        tin, tout = usage.input_tokens, usage.output_tokens
        if tin is None or tout is None:
            raise InputError("a price needs both the input and the output token counts")
        if p.unit != "token":
            tiers = [TierCost("input", tin, p.input_per_mtok_micro,
                              price_micro_cents(tin, 0, p.input_per_mtok_micro, 0)),
                     TierCost(p.unit, tout, p.output_per_mtok_micro,
                              tout * p.output_per_mtok_micro)]  # fmt: skip
            total = sum(t.micro_cents for t in tiers)
            return Quote(m, tin, tout, total, tuple(tiers), speed_unpriced=odd)
        tiers = tier_costs(p, tin, tout, parts_of(usage), fast=fast)
        lc = p.long_context
        long = not fast and lc is not None and tin > lc.above_input_tokens
        total = sum(t.micro_cents for t in tiers)
        return Quote(m, tin, tout, total, tuple(tiers), long, fast, odd)

    def chain(self, primary: str) -> FallbackChain:
        """Follow ``fallback`` from ``primary``; a revisited id is a cycle, an unknown
        later id ends the chain (upstream ends it silently; kei reports it as dangling)."""
        first = self.find(primary)
        if first is None:
            raise UnknownModelError(f"unknown primary model_id: {primary}")
        models, seen, current = [first], {first.id}, first
        while current.fallback:
            nxt = self.find(current.fallback)
            if nxt is None:
                return FallbackChain(tuple(models), dangling=current.fallback)
            if nxt.id in seen:
                raise FallbackCycleError(f"cycle in fallback chain at {nxt.id}")
            models.append(nxt)
            seen.add(nxt.id)
            current = nxt
        return FallbackChain(tuple(models))

    def providers(self) -> list[ProviderCount]:
        """Upstream's six core providers, then any other provider the catalog uses."""
        used = [p for p in PROVIDERS if p not in CORE_PROVIDERS and self.select(provider=p)]
        return [
            ProviderCount(
                name,
                sum(m.provider == name and m.status == "active" for m in self.models),
                sum(m.provider == name and m.status == "deprecated" for m in self.models),
            )
            for name in (*CORE_PROVIDERS, *used)
        ]


def parts_of(usage: TokenUsage) -> Parts:
    """The tiered parts of ``usage``; an unknown count is 0 (priced as plain tokens)."""
    return Parts(
        cache_read=usage.cache_read_tokens or 0,
        cache_write=usage.cache_write_tokens or 0,
        cache_write_1h=usage.cache_write_1h_tokens or 0,
        reasoning=usage.reasoning_tokens or 0,
    )


def _estimate_1k(m: Model) -> int:
    return price_micro_cents(1000, 1000, m.pricing.input_per_mtok_micro,
                             m.pricing.output_per_mtok_micro)  # fmt: skip


def _known(what: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise UnknownFilterError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")


def _router(raw: object, base: Router, source: str) -> Router:
    """A ``[router]`` table laid over ``base``: each key it gives replaces ``base``'s."""
    if raw is None:
        return base
    if not isinstance(raw, dict):
        raise CatalogError(f"{source}: 'router' must be a table (ladder = [...], fallback = ...)")
    check_keys(raw, {"ladder", "fallback"}, f"{source}: [router]", "router")
    ladder = raw.get("ladder", list(base.ladder))
    if not isinstance(ladder, list) or not ladder or len(ladder) > LIMITS.max_catalog_list_items:
        raise CatalogError(f"{source}: [router] ladder must be a non-empty list of model ids")
    rungs = tuple(check_text(m, f"{source}:", "[router]", "ladder") for m in ladder)
    fallback = check_text(raw.get("fallback", base.fallback), f"{source}:", "[router]",
                          "fallback", empty=True)  # fmt: skip
    return Router(rungs, fallback)
