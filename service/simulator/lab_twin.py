"""The lab twin: cylinders that break at the strength the placed paste truly has.

The simulated plant knows what its mixer holds; the lab twin turns that paste into
laboratory cylinders the way a mine's lab would see them, from a *true* strength model
that the service never sees. The service learns it only as a lab teaches it: cylinder
results (UCS at an age, wet and dry masses) entered through its lab API.

The true model is an Abrams-type water/binder law with a blend term and a curing-time
term (Abrams, D.A. (1918) Design of Concrete Mixtures, Structural Materials Research
Laboratory Bulletin 1, Lewis Institute, Chicago; in the binder/water form used for paste
backfill by Belem, T. & Benzaazoua, M. (2008) Design and application of underground mine
paste backfill technology, Geotech. Geol. Eng. 26:147-174), with the logarithmic
curing-time factor UCS(t) = UCS28 (t/28)^c of the time-strength relations of cemented
paste (e.g. Fall, M., Belem, T., Samb, S. & Benzaazoua, M. (2007) Experimental
characterization of the stress-strain behaviour of cemented paste backfill in
compression, J. Mater. Sci. 42:3914-3922):

    ln UCS = ln A + n ln(r / r_ref) + sum_i b_i f_i + (c0 + sum_i c_i f_i) ln(t / 28)
             + e_cast + e_cylinder

- r = Mb/Mw = Bw Cw / ((1 + Bw)(1 - Cw)), the binder to water mass ratio of the paste as
  placed (Bw binder / dry tailings, Cw solids / paste: Belem & Benzaazoua's convention);
  r_ref the ratio at the reference mix, A its median UCS at 28 days;
- f_i the mass fraction of binder i in the blend (cement the reference, no term);
- e_cast ~ N(0, s_cast): what the cylinders of one cast share (sampling, moulding,
  curing together), e_cylinder ~ N(0, s_cyl): each cylinder's own (the crushing test).

A cured cylinder is weighed wet and oven-dried: its Cw reads high by the binder's
non-evaporable water, Cw_lab = Cw (1 + k), k = w_n alpha Bw / (1 + Bw) (Powers, T.C. &
Brownyard, T.L. (1946-47) Studies of the physical properties of hardened Portland cement
paste, J. Am. Concrete Inst. 18; w_n about 0.23 g per g of hydrated binder), with the
degree of hydration alpha growing with age as alpha(t) = alpha_inf t / (t_half + t)
(a hyperbolic hydration law; Knudsen, T. (1984) The dispersion model for hydration of
Portland cement, Cem. Concr. Res. 14:622-630).

Values in, values out; the random draws come from the caller's generator.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

REFERENCE_DAYS = 28.0
_NORMAL = NormalDist()


def binder_water_ratio(binder_ratio: float, solids_fraction: float) -> float:
    """Mb/Mw = Bw Cw / ((1 + Bw)(1 - Cw)) (Belem & Benzaazoua 2008)."""
    return binder_ratio * solids_fraction / ((1.0 + binder_ratio) * (1.0 - solids_fraction))


@dataclass(frozen=True)
class PasteTruth:
    """What the paste placed truly is: its blend (fractions by binder, summing to 1), Bw
    (binder / dry tailings) and Cw (solids / paste mass)."""

    blend: Mapping[str, float] = field(hash=False)
    binder_ratio: float
    solids_fraction: float


@dataclass(frozen=True)
class TrueStrength:
    """The twin's true strength model (module docstring). ``blend_effect`` and
    ``time_blend`` give b_i and c_i per binder (cement, the reference, has none)."""

    ucs_ref_kpa: float = 463.7
    ref_binder_ratio: float = 0.05
    ref_solids_fraction: float = 0.75
    exponent: float = 1.4637
    blend_effect: Mapping[str, float] = field(
        default_factory=lambda: {"slag": 0.1137, "flyash": -0.2419}, hash=False
    )
    time_exponent: float = 0.2873
    time_blend: Mapping[str, float] = field(
        default_factory=lambda: {"slag": 0.3611, "flyash": 0.4127}, hash=False
    )
    cast_sd_log: float = 0.0431
    cylinder_sd_log: float = 0.0817
    # The oven's view of a cured cylinder (module docstring).
    nonevaporable_water: float = 0.23
    hydration_final: float = 0.75
    hydration_half_days: float = 7.0

    @property
    def total_sd_log(self) -> float:
        """The spread of ln UCS of one cylinder of a given paste (cast and cylinder)."""
        return math.hypot(self.cast_sd_log, self.cylinder_sd_log)

    def ln_median(self, paste: PasteTruth, curing_days: float) -> float:
        """ln of the median UCS (kPa) of cylinders of ``paste`` at ``curing_days``."""
        ratio = binder_water_ratio(paste.binder_ratio, paste.solids_fraction)
        reference = binder_water_ratio(self.ref_binder_ratio, self.ref_solids_fraction)
        blend = sum(self.blend_effect.get(name, 0.0) * f for name, f in paste.blend.items())
        slope = self.time_exponent + sum(
            self.time_blend.get(name, 0.0) * f for name, f in paste.blend.items()
        )
        return (
            math.log(self.ucs_ref_kpa)
            + self.exponent * math.log(ratio / reference)
            + blend
            + slope * math.log(curing_days / REFERENCE_DAYS)
        )

    def median_kpa(self, paste: PasteTruth, curing_days: float) -> float:
        return math.exp(self.ln_median(paste, curing_days))

    def pass_probability(self, paste: PasteTruth, curing_days: float, required_kpa: float) -> float:
        """The probability that a cylinder of ``paste`` reaches ``required_kpa``: the
        twin's truth, not an estimate (ln UCS is normal about :meth:`ln_median`)."""
        z = (self.ln_median(paste, curing_days) - math.log(required_kpa)) / self.total_sd_log
        return _NORMAL.cdf(z)

    def hydration(self, curing_days: float) -> float:
        """Degree of hydration alpha at an age (Knudsen 1984's hyperbolic form)."""
        return self.hydration_final * curing_days / (self.hydration_half_days + curing_days)

    def oven_solids_fraction(self, paste: PasteTruth, curing_days: float) -> float:
        """The Cw a cured cylinder shows on the oven: Cw (1 + k) (module docstring)."""
        bw = paste.binder_ratio
        k = self.nonevaporable_water * self.hydration(curing_days) * bw / (1.0 + bw)
        return min(paste.solids_fraction * (1.0 + k), 0.999)


@dataclass(frozen=True)
class Cylinder:
    """One cylinder as the lab reports it: the sample (the set cast together) it belongs
    to, the age it was crushed at, its UCS and its wet and oven-dry masses (g)."""

    sample_id: str
    curing_days: float
    ucs_kpa: float
    wet_mass_g: float
    dry_mass_g: float


@dataclass(frozen=True)
class LabPractice:
    """How the lab makes and reports its cylinders: a 100 x 200 mm mould (a paste of
    2,000 kg/m3 weighs about 3.1 kg), masses to 0.1 g, UCS to 1 kPa."""

    cylinder_volume_cm3: float = math.pi * 10.0**2 * 20.0 / 4.0
    mass_resolution_g: float = 0.1
    ucs_resolution_kpa: float = 1.0


def _rounded(value: float, step: float) -> float:
    return round(value / step) * step


def paste_density_kg_m3(
    paste: PasteTruth, tailings_sg: float, binder_sg: Mapping[str, float]
) -> float:
    """Bulk density of a saturated paste: 1 / (Cw / rho_s + (1 - Cw) / rho_w), the solids
    density the harmonic mean of the tailings and binders by mass (Belem & Benzaazoua
    2008, eq. 1-6)."""
    bw = paste.binder_ratio
    binder_volume = sum(f / binder_sg[name] for name, f in paste.blend.items() if f > 0.0)
    solids_sg = (1.0 + bw) / (1.0 / tailings_sg + bw * binder_volume)
    cw = paste.solids_fraction
    return 1000.0 / (cw / solids_sg + (1.0 - cw))


def break_cylinders(
    truth: TrueStrength,
    paste: PasteTruth,
    sample_ids: Sequence[str],
    ages_days: Sequence[float],
    rng: random.Random,
    *,
    tailings_sg: float,
    binder_sg: Mapping[str, float],
    practice: LabPractice = LabPractice(),
) -> list[Cylinder]:
    """The cylinders of one cast: one per sample and age, sharing the cast's draw,
    each with its own; weighed and crushed at its age."""
    cast = rng.gauss(0.0, truth.cast_sd_log)
    density = paste_density_kg_m3(paste, tailings_sg, binder_sg)
    out = []
    for sample_id in sample_ids:
        for days in ages_days:
            ln_ucs = truth.ln_median(paste, days) + cast + rng.gauss(0.0, truth.cylinder_sd_log)
            wet = density * practice.cylinder_volume_cm3 / 1000.0
            dry = wet * truth.oven_solids_fraction(paste, days)
            out.append(
                Cylinder(
                    sample_id=sample_id,
                    curing_days=days,
                    ucs_kpa=_rounded(math.exp(ln_ucs), practice.ucs_resolution_kpa),
                    wet_mass_g=_rounded(wet, practice.mass_resolution_g),
                    dry_mass_g=_rounded(dry, practice.mass_resolution_g),
                )
            )
    return out


@dataclass(frozen=True)
class TrialCylinder:
    """A cylinder of a lab trial mix (made in the lab to its proportions, so its Bw, Cw
    and blend are what the lab weighed in): a calibration row."""

    blend: Mapping[str, float] = field(hash=False)
    binder_ratio: float
    solids_fraction: float
    curing_days: float
    ucs_kpa: float


def trial_mixes(
    truth: TrueStrength,
    mixes: Sequence[PasteTruth],
    ages_days: Sequence[float],
    rng: random.Random,
    *,
    cylinders_per_age: int = 1,
    practice: LabPractice = LabPractice(),
) -> list[TrialCylinder]:
    """A mine's start calibration: each trial mix cast once, crushed at each age."""
    out = []
    for paste in mixes:
        cast = rng.gauss(0.0, truth.cast_sd_log)
        for days in ages_days:
            for _ in range(cylinders_per_age):
                ln_ucs = truth.ln_median(paste, days) + cast + rng.gauss(0.0, truth.cylinder_sd_log)
                out.append(
                    TrialCylinder(
                        blend=dict(paste.blend),
                        binder_ratio=paste.binder_ratio,
                        solids_fraction=paste.solids_fraction,
                        curing_days=days,
                        ucs_kpa=_rounded(math.exp(ln_ucs), practice.ucs_resolution_kpa),
                    )
                )
    return out


def mixer_paste(
    cement_kg: float, slag_kg: float, flyash_kg: float, tailings_kg: float, water_kg: float
) -> PasteTruth | None:
    """The paste a well-mixed tank holds, from its component masses (None when it holds
    no tailings or no binder: water, or paste without binder, casts no cylinder)."""
    binder = cement_kg + slag_kg + flyash_kg
    if tailings_kg <= 1e-9 or binder <= 1e-9:
        return None
    solids = tailings_kg + binder
    return PasteTruth(
        blend={
            "cement": cement_kg / binder,
            "slag": slag_kg / binder,
            "flyash": flyash_kg / binder,
        },
        binder_ratio=binder / tailings_kg,
        solids_fraction=solids / (solids + water_kg),
    )
