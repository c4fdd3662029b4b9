"""Values as they cross the OPC UA wire: a status code's quality, a variant's plain value,
a PLC's REAL (float32), which VariantType a node's DataType is and whether a tag's kind
fits it, and whether a value read back is the one written."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from asyncua import ua

from service.plant.port import MeasurementValue, Quality, SetpointValue
from service.plant.tags import TagKind

FLOAT32_MAX = 3.4028234663852886e38
INT_RANGES: Mapping[ua.VariantType, tuple[int, int]] = {
    ua.VariantType.SByte: (-(2**7), 2**7 - 1),
    ua.VariantType.Byte: (0, 2**8 - 1),
    ua.VariantType.Int16: (-(2**15), 2**15 - 1),
    ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1),
    ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1),
    ua.VariantType.UInt64: (0, 2**64 - 1),
}
FLOAT_TYPES = frozenset({ua.VariantType.Float, ua.VariantType.Double})
BUILTIN_SCALARS = {vt.value: vt for vt in (ua.VariantType.Boolean, *INT_RANGES, *FLOAT_TYPES)}


def quality_of(status: ua.StatusCode | None) -> Quality:
    """OPC UA Part 4 §7.39: the two top bits of a StatusCode are its severity."""
    code = 0 if status is None else int(status.value)
    severity = code >> 30
    if severity == 0:
        return Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    return Quality.BAD


def plain_value(variant: ua.Variant | None) -> MeasurementValue:
    raw = None if variant is None else variant.Value
    if isinstance(raw, bool | int | float):
        return raw
    return None


def utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def as_float32(value: float) -> float:
    result: float = struct.unpack("<f", struct.pack("<f", value))[0]
    return result


def notifications(result: ua.PublishResult) -> list[Any]:
    message = result.NotificationMessage
    data = message.NotificationData if message is not None else None
    return list(data or [])


def variant_type_of(dtype: object) -> ua.VariantType | None:
    if isinstance(dtype, ua.NodeId) and dtype.NamespaceIndex == 0:
        ident = dtype.Identifier
        if isinstance(ident, int):
            return BUILTIN_SCALARS.get(ident)
    return None


def type_name(dtype: object) -> str:
    vt = variant_type_of(dtype)
    if vt is not None:
        return vt.name
    return dtype.to_string() if isinstance(dtype, ua.NodeId) else repr(dtype)


def fits(kind: TagKind, vt: ua.VariantType) -> bool:
    if kind is TagKind.BOOL:
        return vt is ua.VariantType.Boolean
    if kind is TagKind.INT:
        return vt in INT_RANGES
    return vt in INT_RANGES or vt in FLOAT_TYPES


def same_value(want: SetpointValue, got: MeasurementValue, vt: ua.VariantType) -> bool:
    if got is None:
        return False
    if vt is ua.VariantType.Boolean or isinstance(want, bool) or isinstance(got, bool):
        return want is got or (isinstance(got, bool) and got == want)
    if vt is ua.VariantType.Float:
        return math.isclose(as_float32(float(want)), float(got), rel_tol=1e-6, abs_tol=1e-9)
    return float(want) == float(got)
