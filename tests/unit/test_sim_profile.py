"""The simulator's plant profile (issue 19 item 7): the shipped files, what every key
sets, and every way a file is refused (one line naming the file and the key)."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
import tomllib
from dataclasses import fields, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from service.simulator import DEFAULT_PROFILE_PATH, HARDER_PROFILE_PATH
from service.simulator.dynamics import (
    InstrumentErrors,
    PlantParams,
    PlcParams,
    SimParams,
    slurry_density_kg_m3,
    slurry_solids_fraction,
)
from service.simulator.profile import (
    KEYS,
    NUMBER_KEYS,
    SECTIONS,
    ProfileError,
    load_profile,
    parse_profile,
    profile_values,
)

ROOT = Path(__file__).resolve().parents[2]


def _flat(table: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, value in table.items():
        if isinstance(value, dict):
            out.extend(_flat(value, f"{prefix}{name}."))
        else:
            out.append(f"{prefix}{name}")
    return out


def _toml(values: dict[str, object]) -> str:
    """A profile stating ``values`` (dotted keys), one table per section."""
    by_section: dict[str, list[str]] = {}
    for key, value in values.items():
        section, _, name = key.rpartition(".")
        text = f'"{value}"' if isinstance(value, str) else repr(value).lower()
        by_section.setdefault(section, []).append(f"{name} = {text}")
    lines = by_section.pop("", [])
    for section, rows in by_section.items():
        lines += [f"[{section}]", *rows]
    return "\n".join(lines) + "\n"


# --- the shipped profiles ---------------------------------------------------------------


def test_the_default_profile_is_the_dynamics_defaults() -> None:
    profile = load_profile(DEFAULT_PROFILE_PATH)
    assert profile.name == "default"
    assert profile.path == DEFAULT_PROFILE_PATH
    # Exactly (not approximately): the simulator's default plant did not change.
    assert profile.params == SimParams()
    assert profile.params.plant == PlantParams()
    assert profile.params.plc == PlcParams()
    assert profile.instrument_errors == InstrumentErrors()


def test_the_default_profile_states_every_key_each_with_its_comment() -> None:
    text = DEFAULT_PROFILE_PATH.read_text()
    assert sorted(_flat(tomllib.loads(text))) == sorted(KEYS)
    # Every key line has a comment: inline, or in the comment block above it (up to the
    # previous blank line or table header).
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not re.match(r"^[a-z_]+ = ", line):
            continue
        if "#" in line.split("=", 1)[1] and not line.rstrip().endswith('"'):
            continue
        j = i - 1
        commented = False
        while j >= 0 and lines[j].strip() and not lines[j].startswith("["):
            commented = commented or lines[j].startswith("#")
            j -= 1
        assert commented, f"no comment for line {i + 1}: {line}"


def test_the_default_profile_states_the_feed_the_issue_asks_for() -> None:
    plant = load_profile(DEFAULT_PROFILE_PATH).plant
    assert plant.tailings_gs == plant.recipe_tailings_gs == 2.8
    low = slurry_solids_fraction(plant.feed_density_min_kg_m3, plant.tailings_gs)
    high = slurry_solids_fraction(plant.feed_density_max_kg_m3, plant.tailings_gs)
    assert (low, high) == (pytest.approx(0.70), pytest.approx(0.77))
    nominal = slurry_solids_fraction(plant.feed_density_kg_m3, plant.tailings_gs)
    assert nominal == pytest.approx(0.7368, abs=1e-4)
    assert low < nominal < high
    # The band is wide for the walk: its stationary sd is sigma sqrt(tau / 2).
    sd = plant.feed_density_walk_kg_m3_sqrt_s * math.sqrt(plant.feed_density_reversion_s / 2)
    assert plant.feed_density_kg_m3 - plant.feed_density_min_kg_m3 > 4.5 * sd
    assert plant.feed_density_max_kg_m3 - plant.feed_density_kg_m3 > 4.5 * sd


# What bench/bench_control_quality.py built in code as its harder plant before the
# profile (the bench's flow noise was a fraction of the reading: 0.005 is 0.5 %).
HARDER_PARAMS = replace(
    PlantParams(),
    feed_dead_time_s=20.0,
    paste_dead_time_s=10.0,
    feed_density_noise_kg_m3=4.0,
    paste_density_noise_kg_m3=5.0,
    friction_model="bingham",
    feed_flow_noise_pct=0.5,
    paste_flow_noise_pct=0.5,
    water_flow_noise_pct=1.0,
    binder_scale_noise_pct=2.0,
)
HARDER_ERRORS = InstrumentErrors(
    cement_scale_bias_pct=0.8,
    slag_scale_bias_pct=-0.6,
    feed_flow_bias_pct=0.3,
    paste_flow_bias_pct=-0.3,
    feed_density_bias_kg_m3=3.0,
)


def test_the_harder_profile_is_the_benchs_harder_plant() -> None:
    profile = load_profile(HARDER_PROFILE_PATH)
    assert profile.name == "harder"
    assert profile.params == SimParams(plant=HARDER_PARAMS)
    assert profile.instrument_errors == HARDER_ERRORS


def _bench() -> ModuleType:
    path = ROOT / "bench" / "bench_control_quality.py"
    spec = importlib.util.spec_from_file_location("bench_control_quality_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_the_bench_takes_its_harder_plant_from_the_file() -> None:
    bench = _bench()
    harder = bench.HARDER
    # The bench adds the flow noise itself on its own random stream, so the plant it
    # steps has none; everything else is the file's.
    no_flow_noise = replace(
        HARDER_PARAMS,
        feed_flow_noise_pct=0.0,
        paste_flow_noise_pct=0.0,
        water_flow_noise_pct=0.0,
        binder_scale_noise_pct=0.0,
    )
    assert harder.params == no_flow_noise
    assert harder.errors == HARDER_ERRORS
    assert harder.flow_noise == bench.FlowNoise(
        feed_flow=0.005, paste_flow=0.005, water_flow=0.01, binder=0.02
    )
    assert bench.IDEAL.params == load_profile(DEFAULT_PROFILE_PATH).plant
    # One definition: the bench no longer states the harder plant's values itself.
    source = (ROOT / "bench" / "bench_control_quality.py").read_text()
    assert "feed_dead_time_s=20.0" not in source
    assert "cement_scale_bias_pct=0.8" not in source


# --- what every key sets -------------------------------------------------------------


def _inside(key: str) -> float:
    """A value inside the key's range, different from the default profile's."""
    spec = NUMBER_KEYS[key]
    default = float(profile_values(load_profile(DEFAULT_PROFILE_PATH))[key])
    candidates = [
        default * 1.1 if default else 0.0,
        spec.low + 0.3 * (spec.high - spec.low),
        spec.low + 0.7 * (spec.high - spec.low),
    ]
    for x in candidates:
        if x != default and spec.contains(x):
            return round(x, 3)
    raise AssertionError(key)


def _consistent(key: str, value: float) -> dict[str, object]:
    """``key = value`` plus what keeps the profile consistent (the feed inside its band,
    the trip above the reset)."""
    values: dict[str, object] = {key: value}
    if key.startswith("feed.") and key != "feed.recipe_tailings_gs":
        values.update({"feed.solids_pct_min": 1.0, "feed.solids_pct_max": 99.0})
        values[key] = value
        if key in ("feed.solids_pct_min", "feed.solids_pct_max"):
            inside = value + 1.0 if key.endswith("min") else value - 1.0
            values["feed.density_kg_m3"] = round(slurry_density_kg_m3(inside / 100.0, 2.8), 3)
    if key == "pump.pressure_reset_kpa":
        values["pump.pressure_trip_kpa"] = 50000.0
    if key == "pump.pressure_trip_kpa":
        values["pump.pressure_reset_kpa"] = 0.0
    return values


@pytest.mark.parametrize("key", list(NUMBER_KEYS))
def test_every_key_sets_its_parameter(key: str) -> None:
    value = _inside(key)
    profile = parse_profile(_toml(_consistent(key, value)), "site.toml")
    assert profile_values(profile)[key] == pytest.approx(value, rel=1e-9, abs=1e-9)
    default = load_profile(DEFAULT_PROFILE_PATH)
    spec = NUMBER_KEYS[key]
    source = {"plant": "params.plant", "plc": "params.plc", "errors": "instrument_errors"}
    parts = source[spec.target].split(".")

    def parameter(p: object) -> object:
        for part in parts:
            p = getattr(p, part)
        return getattr(p, spec.field)

    assert parameter(profile) != parameter(default), key


def test_no_two_keys_set_one_parameter_and_every_parameter_named_exists() -> None:
    names = {"plant": PlantParams, "plc": PlcParams, "errors": InstrumentErrors}
    seen: set[tuple[str, str, int | None]] = set()
    for key, spec in NUMBER_KEYS.items():
        assert spec.field in {f.name for f in fields(names[spec.target])}, key
        target = (spec.target, spec.field, spec.index)
        assert target not in seen, key
        seen.add(target)


def test_a_key_left_out_keeps_the_default_profiles_value() -> None:
    profile = parse_profile('name = "site"\n[transport]\nfeed_dead_time_s = 12.0\n', "s.toml")
    assert profile.name == "site"
    assert profile.params == SimParams(plant=replace(PlantParams(), feed_dead_time_s=12.0))
    assert parse_profile("", "/x/unnamed.toml").name == "unnamed"  # the file's name


def test_the_solids_band_is_stated_at_the_true_gs() -> None:
    text = _toml(
        {
            "feed.true_tailings_gs": 3.1,
            "feed.recipe_tailings_gs": 2.8,
            "feed.density_kg_m3": 1950.0,
        }
    )
    plant = parse_profile(text, "gs.toml").plant
    assert plant.tailings_gs == 3.1 and plant.recipe_tailings_gs == 2.8
    # 70-77 % (the default band, by solids) at Gs 3.1, not the densities at Gs 2.8.
    assert slurry_solids_fraction(plant.feed_density_min_kg_m3, 3.1) == pytest.approx(0.70)
    assert slurry_solids_fraction(plant.feed_density_max_kg_m3, 3.1) == pytest.approx(0.77)
    assert plant.feed_density_min_kg_m3 > PlantParams().feed_density_min_kg_m3 + 80.0


def test_per_binder_keys_set_their_own_binder() -> None:
    profile = parse_profile(
        _toml({"feeders.slag_bias_pct": -7.0, "instruments.binder_scales.flyash_bias_pct": 1.5}),
        "b.toml",
    )
    assert profile.plant.feeder_bias_pct == (0.0, -7.0, 0.0)
    assert profile.instrument_errors == InstrumentErrors(flyash_scale_bias_pct=1.5)


# --- refused, in one line naming the file and the key ----------------------------------------


BAD: list[tuple[str, str, str, list[str]]] = [
    # (case, file text, the key named, more words the line must hold)
    ("syntax", "[feed]\ndensity_kg_m3 = 1900 1900\n", "", ["not valid TOML", "line 2"]),
    ("syntax, a key twice", "[feed]\nstep_kg_m3 = 1\nstep_kg_m3 = 2\n", "", ["not valid TOML"]),
    (
        "unknown key",
        "[feed]\ndensty_kg_m3 = 1900\n",
        "feed.densty_kg_m3",
        ["not a profile key", "did you mean feed.density_kg_m3?"],
    ),
    (
        "unknown section",
        "[instrument.feed_flow]\nnoise_pct = 1\n",
        "instrument",
        ["not a profile key", "did you mean instruments?"],
    ),
    (
        "unknown top-level key",
        "nmae = 'x'\n",
        "nmae",
        ["did you mean name?"],
    ),
    ("unknown, nothing close", "[feed]\nzzz = 1\n", "feed.zzz", ["not a profile key"]),
    (
        "a string for a number",
        '[feed]\ndensity_kg_m3 = "1900"\n',
        "feed.density_kg_m3",
        ["must be a number", "a string"],
    ),
    (
        "a boolean for a number",
        "[transport]\nfeed_dead_time_s = true\n",
        "transport.feed_dead_time_s",
        ["must be a number", "a boolean"],
    ),
    (
        "an array for a number",
        "[pump]\ncapacity_m3_h = [200]\n",
        "pump.capacity_m3_h",
        ["must be a number", "an array"],
    ),
    (
        "a table for a number",
        "[pump.capacity_m3_h]\nx = 1\n",
        "pump.capacity_m3_h",
        ["must be a number", "a table"],
    ),
    ("a value for a table", "feed = 1\n", "feed", ["must be a table"]),
    ("a number for a string", "name = 3\n", "name", ["must be a string"]),
    (
        "above the range",
        "[transport]\nfeed_dead_time_s = 900\n",
        "transport.feed_dead_time_s",
        ["must be within [0, 600] s", "got 900"],
    ),
    (
        "below the range",
        "[feed]\ntrue_tailings_gs = 1.2\n",
        "feed.true_tailings_gs",
        ["must be within [1.5, 6]", "got 1.2"],
    ),
    (
        "on an open bound",
        "[instruments.binder_scales]\ncement_bias_pct = 50\n",
        "instruments.binder_scales.cement_bias_pct",
        ["must be within (-50, 50) %"],
    ),
    (
        "a negative noise",
        "[instruments.paste_density]\nnoise_kg_m3 = -1\n",
        "instruments.paste_density.noise_kg_m3",
        ["must be within [0, 200] kg/m3"],
    ),
    (
        "not a number",
        "[pipe.bingham]\nlength_m = nan\n",
        "pipe.bingham.length_m",
        ["must be within (0, 50000] m", "got nan"],
    ),
    (
        "infinite",
        "[pump]\npressure_trip_kpa = inf\n",
        "pump.pressure_trip_kpa",
        ["must be within (0, 50000] kPa"],
    ),
    (
        "a friction model that is none",
        '[pipe]\nfriction_model = "herschel"\n',
        "pipe.friction_model",
        ["must be one of linear, bingham", "'herschel'"],
    ),
    ("an empty name", 'name = "  "\n', "name", ["1-100 characters"]),
    (
        "the band upside down",
        "[feed]\nsolids_pct_min = 75\nsolids_pct_max = 72\n",
        "feed.solids_pct_min",
        ["is above feed.solids_pct_max"],
    ),
    (
        "the feed outside its band",
        "[feed]\nsolids_pct_min = 60\nsolids_pct_max = 64\n",
        "feed.density_kg_m3",
        ["73.7 % solids", "60-64 %", "must lie within"],
    ),
    (
        "the reset above the trip",
        "[pump]\npressure_trip_kpa = 7000\n",
        "pump.pressure_reset_kpa",
        ["must be below pump.pressure_trip_kpa"],
    ),
]


@pytest.mark.parametrize(("case", "text", "key", "words"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_profile_is_one_line_naming_the_file_and_the_key(
    tmp_path: Path, case: str, text: str, key: str, words: list[str]
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    line = str(caught.value)
    assert "\n" not in line, case
    assert line.startswith(f"{path}: "), line
    if key:
        assert caught.value.key == key
        assert line.removeprefix(f"{path}: ").startswith(key), line
    for word in words:
        assert word in line, (word, line)


def test_a_missing_or_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"nowhere\.toml: cannot read the profile: No such"):
        load_profile(tmp_path / "nowhere.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(ProfileError) as caught:
        load_profile(binary)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(binary))


@pytest.mark.parametrize("key", list(NUMBER_KEYS))
def test_every_range_is_enforced_at_its_bounds(key: str) -> None:
    spec = NUMBER_KEYS[key]
    span = spec.high - spec.low
    for outside in (spec.low - 0.01 * span, spec.high + 0.01 * span):
        with pytest.raises(ProfileError) as caught:
            parse_profile(_toml({key: outside}), "r.toml")
        assert caught.value.key == key
        assert spec.range_text() in str(caught.value)
    for bound, is_open in ((spec.low, spec.low_open), (spec.high, spec.high_open)):
        if is_open:
            with pytest.raises(ProfileError):
                parse_profile(_toml({key: bound}), "r.toml")


def test_every_section_and_key_is_reachable_by_name() -> None:
    # The sections are exactly the tables the default file has.
    document = tomllib.loads(DEFAULT_PROFILE_PATH.read_text())

    def tables(table: dict[str, Any], prefix: str = "") -> set[str]:
        out: set[str] = set()
        for name, value in table.items():
            if isinstance(value, dict):
                out |= {f"{prefix}{name}", *tables(value, f"{prefix}{name}.")}
        return out

    assert tables(document) == SECTIONS


def test_the_readme_states_the_default_profile_and_how_to_set_one() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### The simulator's plant", 1)[1].split("\n## ", 1)[0]
    for needle in ("BACKFILL_SIM__PROFILE=", "--profile", "profile.toml", "profile_harder.toml"):
        assert needle in section, needle
    profile = load_profile(DEFAULT_PROFILE_PATH)
    plant, plc, values = profile.plant, profile.params.plc, profile_values(profile)
    default_column = [row.split(" | ")[1] for row in section.splitlines() if row.count(" | ") >= 2]
    table = " ".join(default_column)
    for stated in (
        f"{plant.tailings_gs:g} / {plant.recipe_tailings_gs:g}",
        f"{plant.feed_density_kg_m3:,.0f} kg/m3",
        f"{values['feed.solids_pct_min']:g}-{values['feed.solids_pct_max']:g} % solids",
        f"{plant.feed_density_walk_kg_m3_sqrt_s:g} kg/m3 per sqrt(s)",
        f"{plant.feed_density_reversion_s:g} s reversion",
        f"{plant.feed_dead_time_s:g} / {plant.paste_dead_time_s:g} s",
        f"{plant.feed_density_noise_kg_m3:g} / {plant.paste_density_noise_kg_m3:g} kg/m3",
        f"{plant.mixer_volume_m3:g} m3, held at {plant.mixer_level_sp_pct:g} %",
        f"{plant.pump_max_m3_h:g} m3/h; pressure trip {plc.pressure_trip_kpa:,.0f} kPa",
        f"{plant.friction_model} friction: {plant.friction_kpa_at_design:,.0f} kPa",
    ):
        assert stated in table, stated
