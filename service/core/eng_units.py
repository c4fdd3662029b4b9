"""Engineering units as SCADA hosts look them up: the UN/CEFACT common code of each unit
the service writes, and the OPC UA UnitId made from it. Pure.

Codes from UN/CEFACT Recommendation No. 20, "Codes for Units of Measure Used in
International Trade" (UNECE, revision 17, 2021). The UnitId of an EUInformation is the
common code's characters packed into an Int32, first character highest (OPC UA Part 8,
"Data Access", §5.6.3, which names this namespace URI).
"""

from __future__ import annotations

from dataclasses import dataclass

#: EUInformation.NamespaceUri of units coded by UN/CEFACT Recommendation 20.
UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"


@dataclass(frozen=True, slots=True)
class EngineeringUnit:
    text: str  # as the service writes it (/plant/status, Sparkplug engUnit)
    code: str  # UN/CEFACT common code
    display: str
    description: str

    @property
    def unit_id(self) -> int:
        return unit_id(self.code)


def unit_id(code: str) -> int:
    """OPC UA Part 8 §5.6.3: each character of the common code (at most 3) shifted into
    an integer, the first highest ("MQH" -> 0x4D5148)."""
    if not 1 <= len(code) <= 3 or not code.isascii():
        raise ValueError(f"not a UN/CEFACT common code: {code!r}")
    value = 0
    for char in code:
        value = (value << 8) | ord(char)
    return value


UNITS: dict[str, EngineeringUnit] = {
    u.text: u
    for u in (
        EngineeringUnit("m3/h", "MQH", "m³/h", "cubic metre per hour"),
        EngineeringUnit("kg/m3", "KMQ", "kg/m³", "kilogram per cubic metre"),
        EngineeringUnit("t/h", "E18", "t/h", "tonne per hour"),
        EngineeringUnit("kPa", "KPA", "kPa", "kilopascal"),
        EngineeringUnit("%", "P1", "%", "percent"),
        EngineeringUnit("m3", "MTQ", "m³", "cubic metre"),
        EngineeringUnit("t", "TNE", "t", "tonne (metric ton)"),
        EngineeringUnit("", "C62", "", "one (dimensionless)"),
    )
}
