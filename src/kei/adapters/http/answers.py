"""JSON answers: the one form of times and money (``app/json_form.py``), msgspec-encoded."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from kei.app.json_form import json_form

_ENCODER = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    return _ENCODER.encode(json_form(obj))


def answer(obj: dict[str, Any], status: int = 200) -> Response:
    return Response(encode(obj), status_code=status, media_type="application/json")
