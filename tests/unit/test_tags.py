"""The TOML tag map: names, node id syntax, required tags, each error naming the tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import TagMapError
from service.plant.port import MEASUREMENT_UNITS, SETPOINT_UNITS, UNITS
from service.plant.tags import (
    OPTIONAL_TAGS,
    REQUIRED_TAGS,
    TagKind,
    is_known_tag,
    is_valid_node_id,
    load_tag_map,
    parse_tag_map,
    tag_kind,
)


def full_map() -> dict[str, str]:
    return {tag: f"ns=2;s=Backfill.{tag}" for tag in sorted(REQUIRED_TAGS)}


def test_required_tags_only_is_valid_and_splits_directions() -> None:
    tags = parse_tag_map({"tags": full_map()})
    assert "paste_density_pv" in tags.measurements
    assert "setpoint_ack" in tags.measurements
    assert "setpoint_seq" in tags.setpoints
    assert "heartbeat" in tags.setpoints
    assert "flyash_rate_pv" not in tags.measurements
    assert set(tags.measurements).isdisjoint(tags.setpoints)


def test_optional_tags_are_accepted() -> None:
    data = full_map() | {t: f"ns=2;s=Opt.{t}" for t in OPTIONAL_TAGS}
    tags = parse_tag_map({"tags": data})
    assert "flyash_rate_sp" in tags.setpoints
    assert "cement_refill" in tags.measurements


def test_kinds() -> None:
    assert tag_kind("run_request") is TagKind.BOOL
    assert tag_kind("slag_fault") is TagKind.BOOL
    assert tag_kind("plant_mode") is TagKind.INT
    assert tag_kind("setpoint_seq") is TagKind.INT
    assert tag_kind("paste_density_pv") is TagKind.REAL
    assert tag_kind("divert_to_dump_sp") is TagKind.BOOL
    assert tag_kind("diverted_to_dump_pv") is TagKind.BOOL
    assert tag_kind("barricade_pressure_pv") is TagKind.REAL
    assert tag_kind("barricade_3_pressure_pv") is TagKind.REAL


def test_the_contract_optional_tags_are_optional_with_their_units() -> None:
    optional = {"barricade_pressure_pv", "divert_to_dump_sp", "diverted_to_dump_pv"}
    assert optional <= OPTIONAL_TAGS
    assert not optional & REQUIRED_TAGS
    assert UNITS["barricade_pressure_pv"] == "kPa"
    assert UNITS["divert_to_dump_sp"] == UNITS["diverted_to_dump_pv"] == "bool"
    tags = parse_tag_map({"tags": full_map() | {t: f"ns=2;s=Opt.{t}" for t in sorted(optional)}})
    assert "divert_to_dump_sp" in tags.setpoints
    assert {"barricade_pressure_pv", "diverted_to_dump_pv"} <= set(tags.measurements)


def test_further_barricades_by_the_contract_pattern() -> None:
    extra = {
        "barricade_10_pressure_pv": "ns=2;s=B10",
        "barricade_2_pressure_pv": "ns=2;s=B2",
        "barricade_pressure_pv": "ns=2;s=B1",
    }
    tags = parse_tag_map({"tags": full_map() | extra})
    assert tags.barricade_pressures == (
        "barricade_pressure_pv",
        "barricade_2_pressure_pv",
        "barricade_10_pressure_pv",
    )
    assert tags.measurements[-2:] == ("barricade_2_pressure_pv", "barricade_10_pressure_pv")
    assert "barricade_2_pressure_pv" not in tags.setpoints
    # the unit tables know the pattern (the link looks units up by tag) ...
    assert UNITS["barricade_10_pressure_pv"] == "kPa"
    assert MEASUREMENT_UNITS["barricade_2_pressure_pv"] == "kPa"
    assert "barricade_4_pressure_pv" in MEASUREMENT_UNITS
    assert "barricade_4_pressure_pv" not in SETPOINT_UNITS
    # ... without listing it as a named tag
    assert "barricade_2_pressure_pv" not in list(MEASUREMENT_UNITS)
    # the first barricade has no number; no leading zeros, no other suffixes
    for bad in ("barricade_1_pressure_pv", "barricade_02_pressure_pv", "barricade_x_pressure_pv"):
        assert not is_known_tag(bad)
        assert bad not in UNITS
        with pytest.raises(TagMapError) as info:
            parse_tag_map({"tags": full_map() | {bad: "ns=2;s=X"}})
        assert info.value.extra["tag"] == bad


def test_unknown_tag_is_named() -> None:
    with pytest.raises(TagMapError) as info:
        parse_tag_map({"tags": full_map() | {"paste_desnity_pv": "ns=2;s=X"}})
    assert "paste_desnity_pv" in info.value.detail
    assert info.value.extra["tag"] == "paste_desnity_pv"


def test_missing_required_tag_is_named() -> None:
    data = full_map()
    del data["setpoint_ack"]
    with pytest.raises(TagMapError) as info:
        parse_tag_map({"tags": data})
    assert "setpoint_ack" in info.value.detail
    assert info.value.code == "tag_map_invalid"


@pytest.mark.parametrize("bad", ["", "ns=2", "ns=x;s=A", "s=", "ns=2;q=A", "i=abc", 42])
def test_bad_node_id_is_named(bad: object) -> None:
    with pytest.raises(TagMapError) as info:
        parse_tag_map({"tags": full_map() | {"paste_density_pv": bad}})
    assert "paste_density_pv" in info.value.detail


@pytest.mark.parametrize(
    "good",
    [
        "ns=2;s=Backfill.Paste.Density",
        'ns=3;s="DB_Backfill"."PasteDensity"',
        "i=2258",
        "ns=1;i=42",
        "nsu=urn:backfill:plant-simulator;s=Backfill.Paste.Density",
        "ns=2;g=09087e75-8e5e-499b-954f-f2a9603db28a",
        "ns=1;b=M/RbKBsRVkePCePcx24oRA==",
    ],
)
def test_node_id_syntax_accepted(good: str) -> None:
    assert is_valid_node_id(good)


def test_two_tags_on_one_node_is_an_error() -> None:
    data = full_map() | {"cement_rate_sp": "ns=2;s=Backfill.slag_rate_sp"}
    with pytest.raises(TagMapError, match="same node"):
        parse_tag_map({"tags": data})


def test_no_tags_table() -> None:
    with pytest.raises(TagMapError, match=r"\[tags\]"):
        parse_tag_map({"tag": {}})


def test_load_file(tmp_path: Path) -> None:
    data = full_map() | {"paste_density_sp": 'ns=3;s="DB_Backfill"."DensitySP"'}
    lines = ["[tags]", *(f"{t} = '{n}'" for t, n in data.items())]
    path = tmp_path / "tags.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tags = load_tag_map(path)
    assert tags.node_id("paste_density_sp") == 'ns=3;s="DB_Backfill"."DensitySP"'
    assert tags.source == str(path)


def test_load_file_errors(tmp_path: Path) -> None:
    with pytest.raises(TagMapError, match="cannot read"):
        load_tag_map(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[tags\n", encoding="utf-8")
    with pytest.raises(TagMapError, match="not valid TOML"):
        load_tag_map(broken)
