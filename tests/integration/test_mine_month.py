"""The mine month on the twin, short: two small stopes under both policies, the service
in-process (its API over ASGI, its store a real SQLite file, its clock the plant's), the
pours on the service's pour machine and the simulated plant, the cylinders from the lab
twin's true strength model.

What must hold whatever the figures: the month runs through the service's API (designs,
recipes, pours, casts, lab sheets, a recalibration proposed and approved), the table
prints, and the twin's truth never reaches the service except as lab results and plant
measurements: no true coefficient, no true tailings Gs, no true Cw, Bw or blend of a
cast appears in any request body, any record stored, or any reading handed to the pour
machine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import pytest

from bench.mine_month.month import MonthResult, run_month, short_month
from bench.mine_month.report import ceiling_lines, table, verdict
from bench.mine_month.schedule import SHORT_STOPES

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def numbers_in(texts: Iterable[str]) -> list[float]:
    """Every number written in the texts (JSON bodies, CSV sheets, stored records)."""
    return [float(m.group()) for text in texts for m in _NUMBER.finditer(text)]


def leaked(truths: Sequence[float], numbers: Iterable[float]) -> list[float]:
    """The truth values found among ``numbers``, as they are or as a percentage (equal
    to 1e-12 relative). 0 and 1 are left out: a blend's absent binder or a pure one
    says nothing of the truth."""
    wanted = {t for t in truths if t not in (0.0, 1.0) and math.isfinite(t)}
    found = []
    values = sorted(set(numbers))
    for t in wanted:
        for target in (t, 100.0 * t):
            if any(math.isclose(v, target, rel_tol=1e-12) for v in _near(values, target)):
                found.append(t)
    return found


def _near(values: Sequence[float], target: float) -> list[float]:
    import bisect

    i = bisect.bisect_left(values, target * (1 - 1e-9) if target > 0 else target * (1 + 1e-9))
    return values[max(0, i - 1) : i + 2]


def test_the_leak_check_finds_a_planted_value() -> None:
    """The check of the service's inputs can fail: a true value written into a body, or
    as a percentage, is found; a rounded or a different value is not."""
    truths = [0.7231456789012, 2.8137, 1.4637]
    assert leaked(truths, numbers_in(['{"solids_pct": 72.31456789012}'])) == [0.7231456789012]
    assert leaked(truths, numbers_in(["tailings,2.8137\n"])) == [2.8137]
    assert leaked(truths, numbers_in(['{"solids_pct": 72.31, "sg": 2.8}'])) == []


@pytest.fixture(scope="module")
def months() -> dict[str, MonthResult]:
    import asyncio

    out = {}
    for policy in ("fixed", "designed"):
        config = short_month(policy, record_inputs=True)
        out[policy] = asyncio.run(run_month(config))
    return out


def test_the_short_month_runs_through_the_service(months: dict[str, MonthResult]) -> None:
    fixed, designed = months["fixed"], months["designed"]
    for r in (fixed, designed):
        # Every stage poured (a plug and a body per stope), cylinders cast and crushed.
        assert r.pours == 4
        assert r.placed_m3 == pytest.approx(sum(s.plan_area_m2 * s.height_m for s in
                                                SHORT_STOPES), rel=0.01)  # fmt: skip
        assert r.cylinders >= 4 and r.lab_sheets >= 2
        assert r.binder_total_t > 0 and r.dumped_m3 > 0
        for s in r.stopes:
            # The service's own compliance read back for every stope.
            assert s.service_pass_pct.get("body") is not None
            assert 0.0 <= s.true_pass_pct("body") <= 100.0
    # Only the service's policy recalibrates, from the lab's results.
    assert fixed.calibrations_approved == 0
    assert designed.calibrations_approved >= 1
    lines = table(fixed, designed)
    assert any(line.startswith("binder t (placed + dumped)") for line in lines)
    assert any("T-1" in line and "li_aubertin" in line for line in lines)
    v = verdict(fixed, designed)
    assert not v.low_pass and not v.short_only_designed
    # Every pour's recipe and binder kept for the ceiling, which prints beside (a) and (b).
    assert len(fixed.doses) == len(designed.doses) == 4
    assert sum(d.binder_placed_kg for d in designed.doses) <= 1000.0 * designed.binder_total_t
    top = ceiling_lines(short_month("designed"), fixed, designed)
    assert top and "dosed on the truth" in top[0]
    assert "the least tonnes" in top[2] and "the least cost" in top[2]


def test_the_truth_never_reaches_the_service(months: dict[str, MonthResult]) -> None:
    for r in months.values():
        # The truth held back: the twin's coefficients, each day's true Gs, every cast's
        # true Cw, Bw and blend.
        assert len(r.truth_values) > 10
        assert r.service_texts and r.machine_values
        sent = numbers_in(r.service_texts)
        assert len(sent) > 100
        assert leaked(r.truth_values, sent) == []
        assert leaked(r.truth_values, r.machine_values) == []
