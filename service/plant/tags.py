"""The TOML tag map: logical tag (docs/INTEGRATION.md "PLC interface") -> OPC UA node id.

```toml
[tags]
paste_density_pv = "ns=2;s=Backfill.Paste.Density"
cement_rate_sp   = 'ns=3;s="DB_Backfill"."CementRateSP"'
```

Validation here is about the file alone (names, node id syntax, required tags);
whether each node exists on the server and has a usable type is checked by the
adapter at connect. Optional tags (docs/INTEGRATION.md "Optional tags") may be left out; further
instrumented barricades are named by the pattern ``barricade_2_pressure_pv``,
``barricade_3_pressure_pv``, ... (kPa, PLC -> service).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from service.errors import TagMapError
from service.plant.port import BARRICADE_PRESSURE_TAG, MEASUREMENT_UNITS, SETPOINT_UNITS


class TagKind(StrEnum):
    """What a logical tag holds, hence which OPC UA data types fit it."""

    REAL = "real"  # any numeric type (a PLC REAL is an OPC UA Float)
    INT = "int"  # an integer type (INT Int16, DINT Int32, ...)
    BOOL = "bool"  # Boolean


BOOL_TAGS = frozenset(
    {
        "remote_enabled",
        "run_request",
        "cement_refill",
        "slag_refill",
        "flyash_refill",
        "cement_fault",
        "slag_fault",
        "flyash_fault",
        "divert_to_dump_sp",
        "diverted_to_dump_pv",
    }
)
INT_TAGS = frozenset({"plant_mode", "setpoint_seq", "setpoint_ack", "heartbeat"})

MEASUREMENT_TAGS = frozenset(MEASUREMENT_UNITS)
SETPOINT_TAGS = frozenset(SETPOINT_UNITS)
ALL_TAGS = MEASUREMENT_TAGS | SETPOINT_TAGS

OPTIONAL_TAGS = frozenset(
    {
        "flyash_rate_pv",
        "flyash_rate_sp",
        "cement_refill",
        "slag_refill",
        "flyash_refill",
        "cement_fault",
        "slag_fault",
        "flyash_fault",
        # docs/INTEGRATION.md "Optional tags" (and barricade_<n>_pressure_pv, n >= 2, by pattern)
        "barricade_pressure_pv",
        "divert_to_dump_sp",
        "diverted_to_dump_pv",
        "paste_volume_total_pv",
    }
)
REQUIRED_TAGS = ALL_TAGS - OPTIONAL_TAGS

# OPC UA Part 6 §5.3.1.10 string form: [ns=<index>;|nsu=<uri>;]<i|s|g|b>=<identifier>
_NODE_ID = re.compile(
    r"""^(?:ns=(?P<ns>\d{1,5});|nsu=(?P<nsu>[^;]+);)?
        (?:i=(?P<i>\d{1,10})
          |s=(?P<s>.+)
          |g=(?P<g>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})
          |b=(?P<b>[A-Za-z0-9+/]+={0,2}))$""",
    re.VERBOSE | re.DOTALL,
)


def is_barricade_pressure_tag(tag: str) -> bool:
    """``barricade_pressure_pv`` or a further barricade ``barricade_<n>_pressure_pv``."""
    return tag == "barricade_pressure_pv" or BARRICADE_PRESSURE_TAG.fullmatch(tag) is not None


def is_known_tag(tag: str) -> bool:
    """A logical tag of the interface (docs/INTEGRATION.md; named, or a numbered barricade)."""
    return tag in ALL_TAGS or BARRICADE_PRESSURE_TAG.fullmatch(tag) is not None


def _barricade_number(tag: str) -> int:
    return 1 if tag == "barricade_pressure_pv" else int(tag.split("_")[1])


def tag_kind(tag: str) -> TagKind:
    if tag in BOOL_TAGS:
        return TagKind.BOOL
    if tag in INT_TAGS:
        return TagKind.INT
    return TagKind.REAL


def is_valid_node_id(text: str) -> bool:
    match = _NODE_ID.match(text)
    if match is None:
        return False
    ns, i = match.group("ns"), match.group("i")
    if ns is not None and int(ns) > 65535:
        return False
    return not (i is not None and int(i) > 0xFFFFFFFF)


@dataclass(frozen=True)
class TagMap:
    """A validated tag map; ``node_ids`` maps each present logical tag to its node id."""

    node_ids: Mapping[str, str]
    source: str = "<memory>"
    #: Optional ``[ranges]`` table: a tag's engineering range (its instrument's span),
    #: ``tag = [low, high]``, for the SCADA faces (OPC UA EURange, Sparkplug deadbands).
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def measurements(self) -> tuple[str, ...]:
        """PLC -> service tags present in the map, in a stable order (the numbered
        barricades last, by number)."""
        named = tuple(t for t in MEASUREMENT_UNITS if t in self.node_ids)
        numbered = sorted(
            (t for t in self.node_ids if BARRICADE_PRESSURE_TAG.fullmatch(t)),
            key=_barricade_number,
        )
        return (*named, *numbered)

    @property
    def barricade_pressures(self) -> tuple[str, ...]:
        """The barricade pressure tags present in the map, by barricade number."""
        present = (t for t in self.node_ids if is_barricade_pressure_tag(t))
        return tuple(sorted(present, key=_barricade_number))

    @property
    def setpoints(self) -> tuple[str, ...]:
        """Service -> PLC tags present in the map, in a stable order."""
        return tuple(t for t in SETPOINT_UNITS if t in self.node_ids)

    def __contains__(self, tag: object) -> bool:
        return tag in self.node_ids

    def node_id(self, tag: str) -> str:
        return self.node_ids[tag]


def parse_tag_map(data: Mapping[str, object], *, source: str = "<memory>") -> TagMap:
    """Validate an already-parsed TOML document; raises ``TagMapError`` naming the tag."""
    tags = data.get("tags")
    if not isinstance(tags, Mapping):
        raise TagMapError(f"{source}: no [tags] table", source=source)
    node_ids: dict[str, str] = {}
    for tag, node_id in tags.items():
        if not is_known_tag(tag):
            raise TagMapError(
                f"{source}: unknown logical tag {tag!r} (known: {', '.join(sorted(ALL_TAGS))}, "
                "barricade_<n>_pressure_pv for n >= 2)",
                tag=tag,
                source=source,
            )
        if not isinstance(node_id, str) or not is_valid_node_id(node_id.strip()):
            raise TagMapError(
                f"{source}: tag {tag!r} has an invalid node id {node_id!r} "
                '(expected e.g. "ns=2;s=Backfill.Paste.Density")',
                tag=tag,
                source=source,
            )
        node_ids[tag] = node_id.strip()
    missing = sorted(REQUIRED_TAGS - node_ids.keys())
    if missing:
        raise TagMapError(
            f"{source}: required tag(s) missing: {', '.join(missing)}",
            tag=missing[0],
            missing=missing,
            source=source,
        )
    seen: dict[str, str] = {}
    for tag, node_id in node_ids.items():
        if node_id in seen:
            raise TagMapError(
                f"{source}: tags {seen[node_id]!r} and {tag!r} name the same node {node_id!r}",
                tag=tag,
                source=source,
            )
        seen[node_id] = tag
    return TagMap(
        node_ids=MappingProxyType(node_ids),
        source=source,
        ranges=MappingProxyType(_ranges(data.get("ranges"), node_ids, source)),
    )


def _ranges(
    table: object, node_ids: Mapping[str, str], source: str
) -> dict[str, tuple[float, float]]:
    """The optional [ranges] table: ``tag = [low, high]``, finite, low below high, for
    a tag of the map."""
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise TagMapError(f"{source}: [ranges] must be a table of tag = [low, high]", source=source)
    out: dict[str, tuple[float, float]] = {}
    for tag, value in table.items():
        if tag not in node_ids:
            raise TagMapError(
                f"{source}: [ranges] names {tag!r}, which is not a tag of the map",
                tag=tag,
                source=source,
            )
        numbers = value if isinstance(value, list) else []
        if (
            len(numbers) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
            or not all(math.isfinite(float(v)) for v in numbers)
            or not float(numbers[0]) < float(numbers[1])
        ):
            raise TagMapError(
                f"{source}: [ranges] {tag} must be [low, high], two finite numbers with "
                f"low below high, not {value!r}",
                tag=tag,
                source=source,
            )
        out[tag] = (float(numbers[0]), float(numbers[1]))
    return out


def load_tag_map(path: Path) -> TagMap:
    """Read and validate a TOML tag map file."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as err:
        raise TagMapError(f"cannot read tag map {path}: {err}", source=str(path)) from err
    except tomllib.TOMLDecodeError as err:
        raise TagMapError(f"tag map {path} is not valid TOML: {err}", source=str(path)) from err
    return parse_tag_map(data, source=str(path))
