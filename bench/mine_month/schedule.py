"""The month's mine: its stopes (geometry and what each must reach), the plant's feed
day by day, and the lab's trial mixes for the start calibration.

Required strengths (the same functions the service answers ``/strength/required`` with):

- An exposed body: Li, L. & Aubertin, M. (2012) Can. Geotech. J. 49(8):994-1002 (the
  modified Mitchell solution: friction, the stope's width) where the sliding wedge meets
  the back wall (H >= B tan(45 + phi/2)); a low, wide stope where it does not takes
  Mitchell, R.J., Olsen, R.S. & Smith, J.D. (1982) Can. Geotech. J. 19(1):14-28
  (frictionless, FS on the limit-equilibrium strength). Both at 28 days.
- A body that will not be exposed: the site's liquefaction floor (100 kPa) at 28 days.
- The plug (the first metres over the drawpoint brow): 150 kPa at 7 days, when the body
  goes in on it (Grabinsky, M. et al. (2021) Mining 1(1):80-99), and the body's own
  requirement at 28 days (the plug is the foot of the exposed face too).

Every required strength is raised to the liquefaction floor (``required.apply_floors``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from service.core import required
from service.simulator.lab_twin import PasteTruth

FLOOR_KPA = 100.0
PLUG_KPA = 150.0
PLUG_DAYS = 7.0
BODY_DAYS = 28.0
UNIT_WEIGHT_KN_M3 = 20.0
SAFETY_FACTOR = 1.5
FRICTION_DEG = 30.0
PLUG_HEIGHT_M = 4.0


@dataclass(frozen=True)
class Stope:
    """A stope: ``width_m`` B (face to back wall), ``length_m`` L (the exposed strike
    length), ``height_m`` H; ``exposed``: a neighbour will be mined against its face."""

    name: str
    width_m: float
    length_m: float
    height_m: float
    exposed: bool

    @property
    def plan_area_m2(self) -> float:
        return self.width_m * self.length_m

    @property
    def plug_m3(self) -> float:
        return self.plan_area_m2 * min(PLUG_HEIGHT_M, self.height_m / 4.0)

    @property
    def body_m3(self) -> float:
        return self.plan_area_m2 * self.height_m - self.plug_m3

    def method(self) -> str:
        """The exposed face's method (module docstring); ``floor`` when not exposed."""
        if not self.exposed:
            return "floor"
        alpha = math.radians(45.0 + FRICTION_DEG / 2.0)
        return "li_aubertin" if self.height_m >= self.width_m * math.tan(alpha) else "mitchell"

    def body_request(self) -> dict[str, object]:
        """The body requirement as the optimiser takes it (the service computes it)."""
        method = self.method()
        if method == "floor":
            return {"name": "body", "required_ucs_kpa": FLOOR_KPA, "curing_days": BODY_DAYS}
        face: dict[str, object] = {
            "method": method,
            "fill_height_m": self.height_m,
            "exposed_length_m": self.length_m,
            "unit_weight_kn_m3": UNIT_WEIGHT_KN_M3,
            "safety_factor": SAFETY_FACTOR,
        }
        if method == "li_aubertin":
            face |= {"stope_width_m": self.width_m, "friction_angle_deg": FRICTION_DEG}
        return {"name": "body", "stope": face, "curing_days": BODY_DAYS}

    def body_kpa(self) -> float:
        """The body's required UCS (kPa at 28 days), with the floor."""
        method = self.method()
        if method == "floor":
            return FLOOR_KPA
        if method == "li_aubertin":
            computed = required.li_aubertin(
                fill_height_m=self.height_m,
                exposed_length_m=self.length_m,
                stope_width_m=self.width_m,
                unit_weight_kn_m3=UNIT_WEIGHT_KN_M3,
                safety_factor=SAFETY_FACTOR,
                friction_angle_deg=FRICTION_DEG,
            ).ucs_kpa
        else:
            computed = required.mitchell(
                fill_height_m=self.height_m,
                exposed_length_m=self.length_m,
                unit_weight_kn_m3=UNIT_WEIGHT_KN_M3,
                safety_factor=SAFETY_FACTOR,
            ).ucs_kpa
        return required.apply_floors(computed, {"liquefaction": FLOOR_KPA}).required_ucs_kpa

    def requirements(self, stage: str) -> tuple[tuple[str, float, float], ...]:
        """(name, kPa, days) a stage's paste must reach."""
        body = ("body", self.body_kpa(), BODY_DAYS)
        return (("plug", PLUG_KPA, PLUG_DAYS), body) if stage == "plug" else (body,)


# The month's stopes: primaries to be exposed (tall and narrow, long, low and wide) and
# secondaries that will not be; about 30,000 m3 in all.
MONTH_STOPES: tuple[Stope, ...] = (
    Stope("S-101", 8.0, 12.0, 30.0, True),
    Stope("S-102", 10.0, 15.0, 20.0, True),
    Stope("S-103", 12.0, 10.0, 18.0, True),
    Stope("S-104", 6.0, 20.0, 35.0, True),
    Stope("S-105", 9.0, 14.0, 24.0, False),
    Stope("S-106", 10.0, 10.0, 40.0, True),
    Stope("S-107", 8.0, 18.0, 16.0, True),
    Stope("S-108", 11.0, 12.0, 22.0, False),
    Stope("S-109", 7.0, 16.0, 28.0, True),
    Stope("S-110", 12.0, 14.0, 15.0, False),
)

# A few small stopes for the suite's short month.
SHORT_STOPES: tuple[Stope, ...] = (
    Stope("T-1", 3.0, 5.0, 12.0, True),
    Stope("T-2", 4.0, 4.0, 8.0, False),
)


def fixed_class(stope: Stope, stage: str) -> str:
    """The class of a fixed recipe list, as mines keep one: the plug, the exposed body
    up to 25 m and above it, and the body that is not exposed."""
    if stage == "plug":
        return "plug"
    if not stope.exposed:
        return "body_unexposed"
    return "body_exposed_high" if stope.height_m > 25.0 else "body_exposed_low"


@dataclass(frozen=True)
class FeedDay:
    """The plant's feed on a day: its solids content (by mass) and its tailings' true Gs."""

    solids: float
    tailings_gs: float


@dataclass(frozen=True)
class FeedDrift:
    """How the feed drifts from day to day: a mean-reverting walk of its solids and of
    the tailings' true Gs, each held inside its stated band."""

    solids_mean: float = 0.752
    solids_step: float = 0.006
    solids_band: tuple[float, float] = (0.735, 0.77)
    gs_mean: float = 2.812
    gs_step: float = 0.012
    gs_band: tuple[float, float] = (2.77, 2.85)
    reversion: float = 0.25  # of the gap to the mean, per day

    def days(self, count: int, rng: random.Random) -> list[FeedDay]:
        out: list[FeedDay] = []
        solids, gs = self.solids_mean, self.gs_mean
        for _ in range(count):
            out.append(FeedDay(solids, gs))
            solids += self.reversion * (self.solids_mean - solids) + rng.gauss(0, self.solids_step)
            gs += self.reversion * (self.gs_mean - gs) + rng.gauss(0, self.gs_step)
            solids = min(max(solids, self.solids_band[0]), self.solids_band[1])
            gs = min(max(gs, self.gs_band[0]), self.gs_band[1])
        return out


def trial_mix_design() -> list[PasteTruth]:
    """The lab's trial mixes for the start calibration: three blends, two doses, two Cw
    (12 mixes, each crushed at 7 and 28 days: 24 cylinders), as a lab tests a new
    tailings before the plant runs; the doses and Cw span what the site's recipes may
    take (Bw 2.5-8 %, Cw 68-76 %)."""
    mixes = []
    for slag in (0.0, 0.5, 0.8):
        for bw in (0.025, 0.08):
            for cw in (0.68, 0.76):
                mixes.append(PasteTruth({"cement": 1.0 - slag, "slag": slag}, bw, cw))
    return mixes
