"""The SCADA model from the HMI snapshot: every point present whatever the plant says,
values and qualities as the snapshot has them, nothing invented where there is no data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.core import scada_model as M
from service.core.control.alarms import DEFAULT_SEVERITY, AlarmCode

SPEC = M.specs(
    {"paste_density_pv": "kg/m3", "remote_enabled": "bool"},
    {"cement_rate_sp": "t/h"},
    ("cement", "slag", "flyash"),
)
STATUS: dict[str, Any] = {
    "connected": True,
    "plc_mode": "running",
    "remote_enabled": True,
    "simulator": False,
    "measurements": {
        "paste_density_pv": {
            "value": 1880.5,
            "unit": "kg/m3",
            "quality": "uncertain",
            "timestamp": "2026-03-01T10:00:00Z",
        }
    },
    "setpoints": {},
    "active_pour": None,
    "alarms": [
        {
            "code": "solids_off_spec",
            "severity": "high",
            "state": "active_unacknowledged",
            "detail": "Cw 70.1 % against 72.0 %",
            "since": "2026-03-01T09:59:00+00:00",
            "acknowledged": False,
        }
    ],
}


def test_every_point_is_there_and_no_pour_is_no_data() -> None:
    points = M.points(STATUS, SPEC)
    assert set(points) == {s.path for s in SPEC}
    assert len([s for s in SPEC if s.path.startswith("Alarms.")]) == 5 * len(AlarmCode)
    density = points["Plant.Measurements.paste_density_pv"]
    assert density == M.Point(1880.5, M.Quality.UNCERTAIN, datetime(2026, 3, 1, 10, tzinfo=UTC))
    # Never read, no pour: no value, said so; text points say "none" or empty.
    assert points["Plant.Measurements.remote_enabled"].quality is M.Quality.NO_DATA
    assert points["Plant.Setpoints.cement_rate_sp"].quality is M.Quality.NO_DATA
    assert points["Pour.PouredM3"] == M.Point(None, M.Quality.NO_DATA)
    assert points["Recipe.SolidsPct"].quality is M.Quality.NO_DATA
    assert points["Pour.State"] == M.Point("none", M.Quality.GOOD)
    assert points["Plant.PlcMode"] == M.Point("running", M.Quality.GOOD)


def test_the_link_down_makes_the_plant_points_bad() -> None:
    points = M.points({**STATUS, "connected": False, "plc_mode": None}, SPEC)
    assert points["Plant.Connected"] == M.Point(False, M.Quality.GOOD)
    assert points["Plant.PlcMode"].quality is M.Quality.BAD
    assert points["Plant.RemoteEnabled"].quality is M.Quality.BAD


def test_alarms_read_as_annunciated_or_normal() -> None:
    points = M.points(STATUS, SPEC)
    assert points["Alarms.solids_off_spec.Active"].value is True
    assert points["Alarms.solids_off_spec.Acknowledged"].value is False
    assert points["Alarms.solids_off_spec.Severity"].value == "high"
    assert points["Alarms.solids_off_spec.State"].source_time == datetime(
        2026, 3, 1, 9, 59, tzinfo=UTC
    )
    quiet = AlarmCode.INSTRUMENTS_DISAGREE
    assert points[f"Alarms.{quiet.value}.State"].value == "normal"
    assert points[f"Alarms.{quiet.value}.Active"].value is False
    assert points[f"Alarms.{quiet.value}.Severity"].value == DEFAULT_SEVERITY[quiet].value


def test_a_pour_and_its_recipe() -> None:
    pour = {
        "id": "p-1",
        "stope_id": "S-1",
        "state": "running",
        "target_volume_m3": 50.0,
        "poured_m3": 12.5,
        "average_solids_pct": 71.8,
        "average_binder_pct": None,
        "binder_t": 1.1,
        "off_spec_m3": 0.4,
        "dumped_m3": 2.0,
        "targets": {
            "solids_pct": 72.0,
            "binder_pct": 5.0,
            "tailings_sg": 2.8,
            "blend_pct": {"cement": 20.0, "slag": 80.0},
        },
    }
    points = M.points({**STATUS, "active_pour": pour}, SPEC)
    assert points["Pour.ProgressPct"].value == 25.0
    assert points["Pour.SolidsPct"].value == 71.8
    assert points["Pour.BinderPct"].quality is M.Quality.NO_DATA  # not measured yet
    assert points["Recipe.Blend.slagPct"].value == 80.0
    assert points["Recipe.Blend.flyashPct"].value == 0.0  # not in this recipe
    assert points["Recipe.TailingsSg"].value == 2.8
