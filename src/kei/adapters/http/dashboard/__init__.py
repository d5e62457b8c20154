"""The dashboard ``kei serve`` shows at ``/``: one HTML page and its assets, no framework.

The page is static: it holds no data and needs no token to load. It asks the person
for a read token (kept in the tab's ``sessionStorage``, sent as ``Authorization:
Bearer``) and reads everything it shows from the ``/v1`` API (docs/http.md), so every
number on it is one the API answers, re-derivable from the signed log. The assets
live in ``static/`` inside the package (they ship in the wheel): no CDN, works
offline.

The headers keep the page to its own origin: a Content-Security-Policy that allows
only the page's own scripts, styles and API (so an event payload rendered on the page
can never run as code), no framing, no referrer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC", "routes"]

STATIC: Final = Path(__file__).parent / "static"

_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def _index(request: Request) -> Response:
    """The page itself; revalidated on each load so an upgrade is seen at once."""
    del request
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=_HEADERS)


def routes() -> list[BaseRoute]:
    """``GET /`` (the page) and ``/assets/…`` (its scripts and style), for the server's
    route list."""
    return [
        Route("/", _index, methods=["GET", "HEAD"], name="dashboard"),
        Mount("/assets", app=StaticFiles(directory=STATIC), name="dashboard-assets"),
    ]
