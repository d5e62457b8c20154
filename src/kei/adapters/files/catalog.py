"""Read the model catalog: the TOML shipped inside kei, then ``$KEI_HOME/models.toml``.

- The shipped catalog is package data (``kei/data/models.toml``), read with
  ``importlib.resources`` so it works from a wheel or a zip.
- The user catalog is optional; when present it overlays the shipped one
  (:meth:`kei.domain.catalog.catalog.Catalog.overlay`).
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


def user_catalog_path(home: Path) -> Path:
    return home / USER_FILE


def load_catalog(home: Path | None) -> Catalog:
    """The shipped catalog, overlaid by ``home/models.toml`` if that file exists."""
    shipped = read_shipped_toml(SHIPPED_FILE, "catalog", CatalogError)
    catalog = Catalog.from_data(shipped, source=SHIPPED_NAME)
    if home is None:
        return catalog
    path = user_catalog_path(home)
    if not path.exists():
        return catalog
    log.debug("overlaying user catalog %s", path)
    user = read_toml(path, LIMITS.max_catalog_bytes, CatalogError)
    return catalog.overlay(user, source=str(path))
