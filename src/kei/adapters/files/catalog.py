"""Read the model catalog: the TOML shipped inside kei, then ``$KEI_HOME/prices.toml``
(the prices ``kei models sync`` wrote), then ``$KEI_HOME/models.toml``.

- The shipped catalog is package data (``kei/data/models.toml``), read with
  ``importlib.resources`` so it works from a wheel or a zip.
- The synced prices and the user catalog are optional; each, when present, overlays
  what was read before it (:meth:`kei.domain.catalog.catalog.Catalog.overlay`), so the
  user's file wins over a synced price, which wins over the shipped one.
- Files larger than ``LIMITS.max_catalog_bytes`` are refused before parsing. Every failure (unreadable,
  not UTF-8, bad TOML, a broken rule) is one :class:`CatalogError` line naming the file;
  ``OSError`` and ``TOMLDecodeError`` never escape.

Example::

    catalog = load_catalog(Path("~/.kei").expanduser())
    catalog.price("sonnet", 1000, 500).micro_cents
"""

from __future__ import annotations

import logging
from pathlib import Path

from kei.adapters.files.toml import read_shipped_toml, read_toml
from kei.domain.catalog.catalog import Catalog
from kei.errors import CatalogError
from kei.limits import LIMITS

__all__ = ["SHIPPED_NAME", "USER_FILE", "load_catalog", "user_catalog_path"]

log = logging.getLogger(__name__)

SHIPPED_FILE = "models.toml"
SHIPPED_NAME = f"kei/data/{SHIPPED_FILE}"
USER_FILE = "models.toml"
PRICES_FILE = "prices.toml"  # written by `kei models sync` (adapters/files/prices.py)


def user_catalog_path(home: Path) -> Path:
    return home / USER_FILE


def load_catalog(home: Path | None, *, synced: bool = True) -> Catalog:
    """The shipped catalog, overlaid by ``home/prices.toml`` (unless not ``synced``:
    ``kei models sync`` rewrites that file from scratch) then ``home/models.toml``,
    each if it exists."""
    shipped = read_shipped_toml(SHIPPED_FILE, "catalog", CatalogError)
    catalog = Catalog.from_data(shipped, source=SHIPPED_NAME)
    if home is None:
        return catalog
    for path in (home / PRICES_FILE, user_catalog_path(home))[0 if synced else 1 :]:
        if path.exists():
            log.debug("overlaying catalog %s", path)
            data = read_toml(path, LIMITS.max_catalog_bytes, CatalogError)
            catalog = catalog.overlay(data, source=str(path))
    return catalog
