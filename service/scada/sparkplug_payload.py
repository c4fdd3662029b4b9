"""Sparkplug B payloads of the edge node: metrics with aliases and properties, encoded as
Eclipse Tahu's ``sparkplug_b.proto`` defines them (through pysparkplug).

pysparkplug's Metric has no PropertySet; :class:`Metric` adds one, written into the
protobuf metric pysparkplug builds. Birth metrics carry name, alias, datatype and the
properties ``engUnit`` (String, the unit as ``/plant/status`` writes it) and
``Quality`` (Int32: 192, 0, 500) with a description in the metadata; DATA metrics carry
the alias alone, no name and no datatype (Specification 3.0 §6.4.3, tck-id
payloads-alias-data-cmd-requirement and payloads-metric-datatype-not-req), and
``Quality`` when it is not GOOD or changed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pysparkplug as spb

# Property value types (Sparkplug data type numbers).
INT32, DOUBLE_TYPE, BOOLEAN, STRING = 3, 10, 11, 12
_FIELDS = {INT32: "int_value", DOUBLE_TYPE: "double_value", BOOLEAN: "boolean_value"}
_FIELDS[STRING] = "string_value"


@dataclasses.dataclass(frozen=True)
class Metric(spb.Metric):
    """pysparkplug's metric with a PropertySet: ``(key, type, value)`` triples."""

    properties: tuple[tuple[str, int, Any], ...] = ()

    def to_pb(self, include_dtype: bool) -> Any:
        pb = super().to_pb(include_dtype)
        for key, value_type, value in self.properties:
            pb.properties.keys.append(key)
            entry = pb.properties.values.add()
            entry.type = value_type
            if value is None:
                entry.is_null = True
            else:
                setattr(entry, _FIELDS[value_type], value)
        return pb
