"""``Closing``: the one way an app object that holds a resource is used in ``with``.

The ledger and every read-model service own a store or a database engine; each
used to spell out the same ``__enter__``/``__exit__`` around its ``close``. A
subclass writes only ``close``.
"""

from __future__ import annotations

from typing import Self

__all__ = ["Closing"]


class Closing:
    """A resource that is its own context manager: ``with`` closes it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
