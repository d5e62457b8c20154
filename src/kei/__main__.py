"""``python -m kei``: the same entry point as the ``kei`` console script."""

from __future__ import annotations

from kei.adapters.cli.entry import main

if __name__ == "__main__":
    main()
