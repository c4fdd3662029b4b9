"""The HMI snapshot as the API sends it: JSON bytes with a strong ETag. The snapshot
itself is built in ``service/operations/plant_view.py``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from service.operations.plant_view import SIMULATED_NOTICE, alarm_view, status_body

__all__ = ["SIMULATED_NOTICE", "alarm_view", "encode", "status_body"]


def encode(body: dict[str, Any]) -> tuple[bytes, str]:
    """The JSON bytes and a strong ETag over them (quality changes with age, so the tag
    follows the content rather than the link's version counter)."""
    raw = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return raw, '"' + hashlib.blake2b(raw, digest_size=12).hexdigest() + '"'
