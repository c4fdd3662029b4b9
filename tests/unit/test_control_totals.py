"""Pour totals: integration, bad data, off-spec volume, checkpoints, monotonicity."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.control import massbalance as mb
from service.core.control.law import (
    BAD,
    ControlConfig,
    ControlInputs,
    ControlState,
    Measurement,
    step,
)
from service.core.control.totals import (
    PourTotals,
    Rate,
    TotalsSample,
    accumulate,
    sample_from_step,
)
from service.errors import InvalidInput


def rate(value: float, fallback: float = 0.0, good: bool = True) -> Rate:
    return Rate(Measurement(value, good), fallback)


def sample(
    paste: Rate | None = None, cw: float | None = 0.72, bw: float | None = 0.05
) -> TotalsSample:
    return TotalsSample(
        paste_flow_m3_h=paste or rate(100.0),
        dry_tailings_t_h=rate(130.0),
        binder_t_h={"cement": rate(1.3), "slag": rate(5.2)},
        water_m3_h=rate(10.0),
        solids_fraction=cw,
        binder_ratio=bw,
        solids_fraction_target=0.72,
        binder_ratio_target=0.05,
    )


def run(totals: PourTotals, s: TotalsSample, seconds: int) -> PourTotals:
    for _ in range(seconds):
        totals = accumulate(totals, s, 1.0)
    return totals


def test_one_hour_at_constant_rates() -> None:
    t = run(PourTotals(), sample(), 3600)
    assert t.elapsed_s == 3600.0
    assert t.poured_m3 == pytest.approx(100.0)
    assert t.dry_tailings_t == pytest.approx(130.0)
    assert t.binder_t["cement"] == pytest.approx(1.3)
    assert t.binder_t["slag"] == pytest.approx(5.2)
    assert t.binder_t["flyash"] == 0.0
    assert t.water_m3 == pytest.approx(10.0)
    assert t.unmeasured_m3 == 0.0 and t.off_spec_m3 == 0.0
    summary = t.summary()
    assert summary["average_solids_pct"] == pytest.approx(72.0)
    assert summary["average_binder_pct"] == pytest.approx(5.0)
    assert summary["binder_t"] == pytest.approx(6.5)


def test_averages_are_volume_weighted_with_min_and_max() -> None:
    t = run(PourTotals(), sample(paste=rate(100.0), cw=0.70, bw=0.048), 60)
    t = run(t, sample(paste=rate(300.0), cw=0.74, bw=0.052), 60)
    assert t.average_solids_fraction == pytest.approx((0.70 * 100 + 0.74 * 300) / 400)
    assert (t.solids_min, t.solids_max) == (0.70, 0.74)
    assert (t.binder_min, t.binder_max) == (0.048, 0.052)
    assert t.off_spec_m3 == pytest.approx(t.poured_m3)  # Cw 0.70 and 0.74 both out of band


def test_off_spec_volume_counts_either_band() -> None:
    t = run(PourTotals(), sample(cw=0.725, bw=0.05), 36)  # in spec: 1 m3
    t = run(t, sample(cw=0.72, bw=0.056), 36)  # Bw off spec: 1 m3
    t = run(t, sample(cw=0.70, bw=0.05), 36)  # Cw off spec: 1 m3
    assert t.poured_m3 == pytest.approx(3.0)
    assert t.off_spec_m3 == pytest.approx(2.0)


def test_bad_data_is_integrated_from_the_fallback_and_counted_as_unmeasured() -> None:
    t = run(PourTotals(), sample(paste=rate(math.nan, fallback=90.0)), 3600)
    assert t.poured_m3 == pytest.approx(90.0)
    assert t.unmeasured_m3 == pytest.approx(90.0)
    t = run(PourTotals(), sample(paste=rate(500.0, fallback=90.0, good=False)), 3600)
    assert t.poured_m3 == pytest.approx(90.0)


def test_unknown_quality_is_not_off_spec_and_not_in_the_averages() -> None:
    t = run(PourTotals(), sample(cw=None, bw=None), 3600)
    assert t.off_spec_m3 == 0.0
    assert t.average_solids_fraction is None and t.average_binder_ratio is None
    assert t.solids_measured_m3 == 0.0
    assert t.summary()["min_solids_pct"] is None


def test_negative_readings_never_subtract() -> None:
    t = run(PourTotals(), sample(paste=rate(-50.0)), 60)
    assert t.poured_m3 == 0.0


def test_checkpoint_round_trip() -> None:
    t = run(PourTotals(), sample(), 100)
    data = t.to_dict()
    assert PourTotals.from_dict(data) == t
    assert PourTotals.from_dict(PourTotals().to_dict()) == PourTotals()
    with pytest.raises(InvalidInput):
        PourTotals.from_dict({"poured_m3": 1.0})


@pytest.mark.parametrize("dt", [-1.0, math.nan])
def test_bad_time_step_is_invalid_input(dt: float) -> None:
    with pytest.raises(InvalidInput):
        accumulate(PourTotals(), sample(), dt)


def test_sample_from_a_control_step() -> None:
    recipe = mb.make_recipe(
        binder_ratio=0.05,
        solids_fraction=0.72,
        tailings_sg=2.8,
        blend={"cement": 0.2, "slag": 0.8},
        binder_sg={"cement": 3.15, "slag": 2.9},
    )
    inp = ControlInputs(
        recipe=recipe,
        paste_flow_request_m3_h=100.0,
        tailings_flow_m3_h=Measurement(90.0),
        tailings_density_kg_m3=Measurement(1900.0),
        paste_density_kg_m3=Measurement(mb.paste_density_kg_m3(recipe)),
        binder_rates_t_h={"cement": Measurement(1.0), "slag": Measurement(4.0)},
        refilling=frozenset({"slag"}),
    )
    _, out = step(ControlState.initial(), inp, ControlConfig(), 1.0)
    s = sample_from_step(inp, out, paste_flow_m3_h=Measurement(98.0), water_flow_m3_h=BAD)
    assert s.paste_flow_m3_h.value() == (98.0, True)
    assert s.dry_tailings_t_h.value()[1]
    assert s.binder_t_h["cement"].value() == (1.0, True)
    assert s.binder_t_h["slag"].value() == (out.setpoints.slag_rate_sp, False)  # refilling
    assert s.water_m3_h.value() == (out.setpoints.water_flow_sp, False)
    t = accumulate(PourTotals(), s, 36.0)
    assert t.unmeasured_m3 == pytest.approx(t.poured_m3) == pytest.approx(0.98)
    idle_inp = replace(inp, plant_running=False)
    _, idle_out = step(ControlState.initial(), idle_inp, ControlConfig(), 1.0)
    idle = sample_from_step(idle_inp, idle_out, paste_flow_m3_h=BAD, water_flow_m3_h=BAD)
    assert accumulate(PourTotals(), idle, 60.0).poured_m3 == 0.0


reading = st.builds(
    Rate,
    st.builds(Measurement, st.floats(allow_nan=True, allow_infinity=True), st.booleans()),
    st.one_of(st.just(math.nan), st.floats(min_value=-1e6, max_value=1e6)),
)
fraction = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(reading, reading, reading, reading, fraction, fraction, st.floats(0, 10)),
        max_size=30,
    )
)
def test_totals_are_monotone(
    steps: list[tuple[Rate, Rate, Rate, Rate, float | None, float | None, float]],
) -> None:
    totals = PourTotals()
    for paste, dry, binder, water, cw, bw, dt in steps:
        s = TotalsSample(paste, dry, {"cement": binder}, water, cw, bw, 0.72, 0.05)
        new = accumulate(totals, s, dt)
        for key in ("poured_m3", "unmeasured_m3", "dry_tailings_t", "water_m3", "off_spec_m3"):
            assert getattr(new, key) >= getattr(totals, key)
        assert new.binder_t["cement"] >= totals.binder_t["cement"]
        assert new.off_spec_m3 <= new.poured_m3 + 1e-9 * new.poured_m3
        assert new.unmeasured_m3 <= new.poured_m3 + 1e-9 * new.poured_m3
        totals = new


def test_flush_water_is_counted_apart_from_the_paste() -> None:
    flush = replace(sample(paste=rate(30.0), cw=0.0, bw=None), flushing=True, plant_running=False)
    t = run(PourTotals(), flush, 120)
    assert t.flush_water_m3 == pytest.approx(1.0)
    assert t.poured_m3 == 0.0 and t.off_spec_m3 == 0.0 and t.solids_measured_m3 == 0.0
    t = run(t, sample(), 36)
    assert t.poured_m3 == pytest.approx(1.0)
    assert t.flush_water_m3 == pytest.approx(1.0)
    summary = t.summary()
    assert summary["flush_water_m3"] == pytest.approx(1.0)
    assert summary["poured_m3"] == pytest.approx(1.0)


def test_off_spec_paste_before_the_mix_first_settles_is_start_up() -> None:
    diluted = sample(cw=0.60)  # the mixer's flush water being displaced
    t = run(PourTotals(), diluted, 36)  # 1 m3
    assert t.off_spec_m3 == pytest.approx(1.0)
    assert t.startup_off_spec_m3 == pytest.approx(1.0)
    assert not t.settled
    t = run(t, sample(cw=0.72, bw=None), 36)  # Bw unknown: not yet shown in band
    assert not t.settled
    t = run(t, sample(), 36)  # both in band: settled
    assert t.settled
    t = run(t, sample(bw=0.04), 36)  # a binder upset: off-spec, not start-up
    assert t.off_spec_m3 == pytest.approx(2.0)
    assert t.startup_off_spec_m3 == pytest.approx(1.0)
    # The plant stops (a pause, a trip) and starts again: start-up once more.
    t = accumulate(t, replace(sample(paste=rate(0.0)), plant_running=False), 1.0)
    assert not t.settled
    t = run(t, diluted, 36)
    assert t.startup_off_spec_m3 == pytest.approx(2.0)
    assert t.off_spec_m3 == pytest.approx(3.0)
    assert t.summary()["startup_off_spec_m3"] == pytest.approx(2.0)


def test_a_moment_of_unknown_plant_mode_is_not_a_restart() -> None:
    """A mode tag bad or stale for a moment (a slow link) keeps a settled run settled,
    for as long as the diverter holds its valve on it: an off-spec moment after it is a
    control matter, not start-up paste."""
    t = run(PourTotals(), sample(), 36)
    assert t.settled
    unknown = replace(sample(cw=None, bw=None), plant_running=None, mode_hold_s=60.0)
    t = run(t, unknown, 2)
    assert t.settled and t.mode_unknown_s == pytest.approx(2.0)
    assert PourTotals.from_dict(t.to_dict()) == t  # a checkpoint keeps the count
    t = run(t, sample(bw=0.04), 36)  # a binder upset right after: off-spec, not start-up
    assert t.mode_unknown_s == 0.0
    assert t.off_spec_m3 == pytest.approx(1.0)
    assert t.startup_off_spec_m3 == 0.0
    # Unknown past the hold: not known to be running, so the next start settles afresh.
    t = run(t, sample(), 36)
    t = run(t, unknown, 60)
    assert t.settled  # unknown for 59 s before the 60th step: still held
    t = run(t, unknown, 1)
    assert not t.settled
    t = run(t, sample(bw=0.04), 36)
    assert t.startup_off_spec_m3 == pytest.approx(1.0)
    # An unknown mode never settles a run that had not settled.
    t = run(PourTotals(), unknown, 10)
    assert not t.settled


def test_an_unknown_mode_holds_a_settled_start_in_the_dump_too() -> None:
    t = run(PourTotals(), dumped(sample()), 36)
    assert t.settled
    t = run(t, replace(dumped(sample()), plant_running=None), 5)
    assert t.settled and t.mode_unknown_s == pytest.approx(5.0)
    t = run(t, replace(dumped(sample(paste=rate(0.0))), plant_running=False), 1)
    assert not t.settled and t.mode_unknown_s == 0.0


def test_a_checkpoint_from_before_flush_and_start_up_were_kept_still_loads() -> None:
    t = run(PourTotals(), sample(), 60)
    old = {
        k: v
        for k, v in t.to_dict().items()
        if k not in {"startup_off_spec_m3", "settled", "flush_water_m3"}
    }
    back = PourTotals.from_dict(old)
    assert back.poured_m3 == t.poured_m3
    assert back.flush_water_m3 == 0.0 and back.startup_off_spec_m3 == 0.0
    assert PourTotals.from_dict(t.to_dict()) == t


# --- dumped paste (the diverter's proven position is the dump) --------------------------

# The integrator dict as the code before dumped paste was kept apart wrote it.
OLD_CHECKPOINT_KEYS = (
    "elapsed_s",
    "poured_m3",
    "unmeasured_m3",
    "dry_tailings_t",
    "binder_t",
    "water_m3",
    "off_spec_m3",
    "startup_off_spec_m3",
    "settled",
    "flush_water_m3",
    "solids_weighted_m3",
    "solids_measured_m3",
    "solids_min",
    "solids_max",
    "binder_weighted_m3",
    "binder_measured_m3",
    "binder_min",
    "binder_max",
)


def dumped(s: TotalsSample) -> TotalsSample:
    return replace(s, to_dump=True)


def test_dumped_paste_and_binder_are_recorded_apart_from_the_stope() -> None:
    t = run(PourTotals(), dumped(sample(cw=0.60)), 360)  # 10 m3 of diluted start-up paste
    assert t.poured_m3 == 0.0 and t.off_spec_m3 == 0.0 and t.startup_off_spec_m3 == 0.0
    assert t.unmeasured_m3 == 0.0 and t.solids_measured_m3 == 0.0 and t.solids_min is None
    assert t.dry_tailings_t == 0.0 and t.water_m3 == 0.0 and t.binder_total_t == 0.0
    assert t.dumped_m3 == pytest.approx(10.0)
    assert t.dumped_dry_tailings_t == pytest.approx(13.0)
    assert t.dumped_binder_t["cement"] == pytest.approx(0.13)
    assert t.dumped_binder_t["slag"] == pytest.approx(0.52)
    assert t.dumped_binder_t["flyash"] == 0.0
    assert t.dumped_water_m3 == pytest.approx(1.0)
    assert t.elapsed_s == 360.0
    t = run(t, sample(), 36)  # the valve proves the stope: placed
    assert t.poured_m3 == pytest.approx(1.0)
    assert t.dumped_m3 == pytest.approx(10.0)
    assert t.delivered_m3 == pytest.approx(11.0)
    summary = t.summary()
    assert summary["dumped_m3"] == pytest.approx(10.0)
    assert summary["dumped_binder_t"] == pytest.approx(0.65)
    assert summary["dumped_binder_t_by_component"]["slag"] == pytest.approx(0.52)
    assert summary["dumped_dry_tailings_t"] == pytest.approx(13.0)
    assert summary["dumped_water_m3"] == pytest.approx(1.0)
    assert summary["poured_m3"] == pytest.approx(1.0)
    assert summary["binder_t"] == pytest.approx(0.065)
    assert summary["solids_measured_m3"] == pytest.approx(1.0)
    assert summary["binder_measured_m3"] == pytest.approx(1.0)


def test_a_start_up_settled_in_the_dump_places_no_start_up_off_spec() -> None:
    t = run(PourTotals(), dumped(sample(cw=0.60)), 36)
    assert not t.settled
    t = run(t, dumped(sample()), 36)  # in band while still dumped: the mix has settled
    assert t.settled
    t = run(t, sample(bw=0.04), 36)  # a binder upset in the stope: off-spec, not start-up
    assert t.off_spec_m3 == pytest.approx(1.0)
    assert t.startup_off_spec_m3 == 0.0
    stopped = replace(dumped(sample(paste=rate(0.0))), plant_running=False)
    t = accumulate(t, stopped, 1.0)
    assert not t.settled  # a stop: the next start is a start-up again


def test_a_flush_to_the_dump_is_flush_water() -> None:
    flush = replace(dumped(sample(paste=rate(30.0), cw=0.0)), flushing=True, plant_running=False)
    t = run(PourTotals(), flush, 120)
    assert t.flush_water_m3 == pytest.approx(1.0)
    assert t.dumped_m3 == 0.0 and t.poured_m3 == 0.0


def test_bad_data_while_dumping_is_integrated_from_the_fallback() -> None:
    t = run(PourTotals(), dumped(sample(paste=rate(math.nan, fallback=90.0))), 3600)
    assert t.dumped_m3 == pytest.approx(90.0)
    assert t.poured_m3 == 0.0 and t.unmeasured_m3 == 0.0


def test_a_checkpoint_written_before_dumped_paste_was_kept_still_loads() -> None:
    t = run(PourTotals(), sample(), 60)
    old = {k: v for k, v in t.to_dict().items() if k in OLD_CHECKPOINT_KEYS}
    assert set(old) == set(OLD_CHECKPOINT_KEYS)
    back = PourTotals.from_dict(old)
    # Nothing was dumped: the new fields are their zero defaults (what an old checkpoint
    # could not know, the spread of its paste, starts from zero too).
    newer = ("spread_volume_m3", "solids_deviation_sq_m3", "binder_deviation_rel_sq_m3")
    assert back == dataclasses.replace(t, **dict.fromkeys(newer, 0.0))
    assert back.dumped_m3 == 0.0 and back.dumped_binder_total_t == 0.0
    assert back.dumped_binder_t == {"cement": 0.0, "slag": 0.0, "flyash": 0.0}
    assert back.summary()["dumped_m3"] == 0.0
    with_dump = run(t, dumped(sample()), 60)
    assert PourTotals.from_dict(with_dump.to_dict()) == with_dump
    assert (
        PourTotals.from_dict({**with_dump.to_dict(), "dumped_binder_t": None}).dumped_binder_t[
            "cement"
        ]
        == 0.0
    )


def test_the_summary_keeps_every_field_it_had() -> None:
    summary = PourTotals().summary()
    for key in (
        "poured_m3",
        "unmeasured_m3",
        "dry_tailings_t",
        "binder_t",
        "binder_t_by_component",
        "water_m3",
        "average_solids_pct",
        "min_solids_pct",
        "max_solids_pct",
        "average_binder_pct",
        "min_binder_pct",
        "max_binder_pct",
        "off_spec_m3",
        "startup_off_spec_m3",
        "flush_water_m3",
    ):
        assert key in summary
    assert summary["dumped_m3"] == 0.0 and summary["dumped_binder_t"] == 0.0


def test_sample_from_step_carries_the_diverter_position() -> None:
    recipe = mb.make_recipe(
        binder_ratio=0.05,
        solids_fraction=0.72,
        tailings_sg=2.8,
        blend={"cement": 1.0},
        binder_sg={"cement": 3.15},
    )
    inp = ControlInputs(
        recipe=recipe,
        paste_flow_request_m3_h=100.0,
        tailings_flow_m3_h=Measurement(90.0),
        tailings_density_kg_m3=Measurement(1900.0),
        paste_density_kg_m3=Measurement(mb.paste_density_kg_m3(recipe)),
        binder_rates_t_h={"cement": Measurement(5.0)},
    )
    _, out = step(ControlState.initial(), inp, ControlConfig(), 1.0)
    s = sample_from_step(
        inp, out, paste_flow_m3_h=Measurement(100.0), water_flow_m3_h=BAD, to_dump=True
    )
    assert s.to_dump
    t = accumulate(PourTotals(), s, 36.0)
    assert t.poured_m3 == 0.0 and t.dumped_m3 == pytest.approx(1.0)
    assert t.dumped_binder_t["cement"] == pytest.approx(0.05)
    assert not sample_from_step(
        inp, out, paste_flow_m3_h=Measurement(100.0), water_flow_m3_h=BAD
    ).to_dump


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-50.0, 300.0),  # paste flow, m3/h (negative readings floor at 0)
            st.floats(0.0, 10.0),  # binder, t/h
            st.booleans(),  # to the dump
            st.booleans(),  # flushing
            st.booleans(),  # plant running
            fraction,
            st.floats(0.0, 10.0),  # dt, s
        ),
        max_size=40,
    )
)
def test_placed_plus_dumped_is_what_the_pump_delivered(
    steps: list[tuple[float, float, bool, bool, bool, float | None, float]],
) -> None:
    totals = PourTotals()
    paste_in = binder_in = flush_in = 0.0
    for flow, binder, to_dump, flushing, running, cw, dt in steps:
        s = TotalsSample(
            rate(flow),
            rate(100.0),
            {"cement": rate(binder)},
            rate(10.0),
            cw,
            0.05,
            0.72,
            0.05,
            plant_running=running,
            flushing=flushing,
            to_dump=to_dump,
        )
        new = accumulate(totals, s, dt)
        volume = max(flow, 0.0) * dt / 3600.0
        if flushing:
            flush_in += volume
        else:
            paste_in += volume
            binder_in += binder * dt / 3600.0
        for key in ("poured_m3", "dumped_m3", "dumped_dry_tailings_t", "dumped_water_m3"):
            assert getattr(new, key) >= getattr(totals, key)
        if to_dump and not flushing:
            assert new.poured_m3 == totals.poured_m3  # never stope volume
            assert new.off_spec_m3 == totals.off_spec_m3
            assert new.binder_t == totals.binder_t
        totals = new
    tol = 1e-9 * max(1.0, paste_in)
    assert totals.poured_m3 + totals.dumped_m3 == pytest.approx(paste_in, abs=tol)
    assert totals.delivered_m3 == pytest.approx(paste_in, abs=tol)
    assert totals.flush_water_m3 == pytest.approx(flush_in, abs=1e-9 * max(1.0, flush_in))
    assert totals.binder_total_t + totals.dumped_binder_total_t == pytest.approx(
        binder_in, abs=1e-9 * max(1.0, binder_in)
    )
    assert totals.off_spec_m3 <= totals.poured_m3 * (1 + 1e-9)
