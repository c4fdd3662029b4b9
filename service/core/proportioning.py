"""Mix proportioning of a saturated paste backfill.

Conventions and relations: Belem, T. & Benzaazoua, M. (2008), "Design and application of
underground mine paste backfill technology", Geotech. Geol. Eng. 26(2):147-174.
``binder_ratio`` is Bw, binder dry mass over dry tailings mass (over all non-binder dry
solids, tailings plus aggregate, when an aggregate is present); ``solids_fraction`` is
Cw, all dry solids over total paste mass; ``moisture_ratio`` is w0, water mass over dry
tailings mass (the geotechnical water content of ASTM D2216-19). Everything here is a
fraction (0-1); the API converts from its percentages. Masses in kg, densities in kg/m3.

The paste is saturated (no air), so mass and volume close exactly: the component masses
sum to ``wet_density_kg_m3 * volume_m3`` and their volumes (solids ``m / (Gs rho_w)``,
water ``m / rho_w``) sum to ``volume_m3``. No mass is inflated by ``1 + binder volume
fraction``.

Speed: :func:`proportion` is plain float arithmetic (no numpy; ~4 µs for a two-binder
blend). It stores the primary quantities only, filling the frozen result's instance dict
in one step (see :func:`_frozen`), because the generated ``__init__`` of a frozen
dataclass pays one ``object.__setattr__`` per field; quantities one multiplication away
(dry density, water, wet tailings, W/C, porosity) are properties, and the per-m3 / total
:class:`MixMasses` are built on first access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NoReturn, TypeVar

from service.errors import InvalidInput

WATER_DENSITY_KG_M3 = 1000.0

# Plausibility bounds. Specific gravities of mine tailings, binders and rock lie between
# about 2 and 7.5 (galena); anything at or below water's cannot form a settling paste.
_GS_MIN_EXCLUSIVE = 1.0
_GS_MAX = 10.0
# w0 of a thin slurry feed can exceed 100 % (a 30 % solids slurry has w0 = 233 %).
_MOISTURE_RATIO_MAX = 20.0
_VOLUME_M3_MAX = 1.0e7
_BLEND_SUM_TOLERANCE = 1.0e-6

_T = TypeVar("_T")
_new_object = object.__new__
_set_attribute = object.__setattr__


def _frozen(cls: type[_T], values: dict[str, Any]) -> _T:
    """Build a frozen (non-slots) dataclass instance from ``values`` in one step.

    Why: the generated ``__init__`` of a frozen dataclass calls ``object.__setattr__`` once
    per field (~0.25 µs each on CPython 3.11), and the proportioning call has a 5 µs
    budget. ``values`` must name every field exactly once.
    """
    instance = _new_object(cls)
    _set_attribute(instance, "__dict__", values)
    return instance


# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tailings:
    """Dry tailings: specific gravity Gs_t and the feed's moisture ratio w0 (water/dry mass)."""

    specific_gravity: float
    moisture_ratio: float = 0.0


@dataclass(frozen=True, slots=True)
class BinderComponent:
    """One binder of the blend: its Gs and its mass fraction of the binder (0-1)."""

    name: str
    specific_gravity: float
    fraction: float


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Waste rock or other granular waste added to the tailings.

    ``fraction`` is its mass share of the non-binder dry solids (tailings + aggregate);
    ``moisture_ratio`` is its own water content (water / dry aggregate mass).
    """

    specific_gravity: float
    fraction: float
    moisture_ratio: float = 0.0


# --- outputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixMasses:
    """Masses of one batch of paste (per m3 or for a volume), kg.

    ``wet_paste_kg`` = dry tailings + dry aggregate + binder + water
    = wet tailings + wet aggregate + binder + water to add.
    ``water_to_add_kg`` is negative when the feed already holds more water than the
    recipe (the feed is too wet: the recipe cannot be met by adding water).
    """

    wet_paste_kg: float
    dry_solids_kg: float
    dry_tailings_kg: float
    wet_tailings_kg: float
    dry_aggregate_kg: float
    wet_aggregate_kg: float
    binder_kg: float
    binder_components_kg: dict[str, float] = field(hash=False)
    water_kg: float
    water_to_add_kg: float


@dataclass(frozen=True)
class Proportioning:
    """A proportioned saturated paste: per-m3 masses, index properties, and
    :attr:`per_m3` / :attr:`total` (:class:`MixMasses` per m3 and for ``volume_m3``).

    Per-m3 masses are in kg per m3 of paste (``*_kg_m3``): ``wet_density_kg_m3`` is the
    wet paste mass and ``dry_density_kg_m3`` the dry solids mass in one m3.
    ``void_ratio`` e = Gs_s rho_w / rho_d - 1 and ``porosity`` n = e / (1 + e) of the
    saturated mix (standard phase relations); ``water_binder_ratio`` is Mw / Mb.
    ``water_to_add_kg_m3`` < 0 means the feed is too wet (see :attr:`feed_too_wet`).
    """

    volume_m3: float
    tailings: Tailings
    binder: tuple[BinderComponent, ...]
    aggregate: Aggregate | None
    binder_ratio: float
    solids_fraction: float
    binder_specific_gravity: float
    solids_specific_gravity: float
    wet_density_kg_m3: float
    dry_tailings_kg_m3: float
    dry_aggregate_kg_m3: float
    binder_kg_m3: float
    water_to_add_kg_m3: float
    void_ratio: float

    # Quantities one multiplication away are properties, to keep the call cheap.
    @property
    def dry_density_kg_m3(self) -> float:
        """Dry solids (tailings + aggregate + binder) per m3: rho_d = rho Cw."""
        return self.wet_density_kg_m3 * self.solids_fraction

    @property
    def water_kg_m3(self) -> float:
        """All water per m3 of saturated paste: rho (1 - Cw)."""
        return self.wet_density_kg_m3 - self.wet_density_kg_m3 * self.solids_fraction

    @property
    def wet_tailings_kg_m3(self) -> float:
        """Tailings as fed (with their moisture w0) per m3."""
        return self.dry_tailings_kg_m3 * (1.0 + self.tailings.moisture_ratio)

    @property
    def wet_aggregate_kg_m3(self) -> float:
        """Aggregate as fed (with its moisture) per m3; 0 without aggregate."""
        if self.aggregate is None:
            return 0.0
        return self.dry_aggregate_kg_m3 * (1.0 + self.aggregate.moisture_ratio)

    @property
    def water_binder_ratio(self) -> float:
        """W/C = Mw/Mb = (1 + Bw)(1 - Cw)/(Bw Cw) (Belem & Benzaazoua 2008)."""
        return self.water_kg_m3 / self.binder_kg_m3

    @property
    def porosity(self) -> float:
        """n = e / (1 + e)."""
        return self.void_ratio / (1.0 + self.void_ratio)

    @property
    def binder_components_kg_m3(self) -> dict[str, float]:
        """Binder mass per component per m3, in blend order."""
        return {c.name: self.binder_kg_m3 * c.fraction for c in self.binder}

    def masses(self, volume_m3: float) -> MixMasses:
        """Masses for ``volume_m3`` of this paste."""
        binder_kg = self.binder_kg_m3 * volume_m3
        return _frozen(
            MixMasses,
            {
                "wet_paste_kg": self.wet_density_kg_m3 * volume_m3,
                "dry_solids_kg": self.dry_density_kg_m3 * volume_m3,
                "dry_tailings_kg": self.dry_tailings_kg_m3 * volume_m3,
                "wet_tailings_kg": self.wet_tailings_kg_m3 * volume_m3,
                "dry_aggregate_kg": self.dry_aggregate_kg_m3 * volume_m3,
                "wet_aggregate_kg": self.wet_aggregate_kg_m3 * volume_m3,
                "binder_kg": binder_kg,
                "binder_components_kg": {c.name: binder_kg * c.fraction for c in self.binder},
                "water_kg": self.water_kg_m3 * volume_m3,
                "water_to_add_kg": self.water_to_add_kg_m3 * volume_m3,
            },
        )

    @cached_property
    def per_m3(self) -> MixMasses:
        """Masses in one m3 of paste."""
        return self.masses(1.0)

    @cached_property
    def total(self) -> MixMasses:
        """Masses in ``volume_m3`` of paste."""
        return self.masses(self.volume_m3)

    @property
    def feed_too_wet(self) -> bool:
        """True when the feed alone holds more water than the recipe allows."""
        return self.water_to_add_kg_m3 < 0.0


# --- validation ---------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{value * 100.0:g}"


def _bad_gs(field_name: str, value: float) -> InvalidInput:
    return InvalidInput(
        field_name,
        f"{field_name} must be a finite number above {_GS_MIN_EXCLUSIVE:g} and at most "
        f"{_GS_MAX:g} (got {value!r})",
    )


def _bad_pct(field_name: str, value: float, rule: str) -> InvalidInput:
    return InvalidInput(field_name, f"{field_name} must be {rule} (got {_pct(value)})")


def blend_specific_gravity(binder: Sequence[BinderComponent]) -> float:
    """Gs of a binder blend: the mass-fraction harmonic mean 1/Gs_b = sum(f_i / Gs_i).

    Source: the volumes of the components add, so per unit mass of blend the volume is
    sum(f_i / (Gs_i rho_w)) (the mixture rule Belem & Benzaazoua 2008 use for the paste
    solids; each Gs_i as measured, e.g. ASTM C188 for a hydraulic cement). Validates the
    blend: at least one component, each Gs plausible, fractions in 0-1 summing to 1.
    """
    if not binder:
        raise InvalidInput("binder", "binder must list at least one component")
    inverse = 0.0
    total = 0.0
    for index, component in enumerate(binder):
        gs = component.specific_gravity
        fraction = component.fraction
        if not _GS_MIN_EXCLUSIVE < gs <= _GS_MAX:
            raise _bad_gs(f"binder[{index}].specific_gravity", gs)
        if not 0.0 <= fraction <= 1.0:
            raise _bad_pct(f"binder[{index}].fraction_pct", fraction, "between 0 and 100")
        if not component.name:
            raise InvalidInput(f"binder[{index}].name", "binder component name is empty")
        inverse += fraction / gs
        total += fraction
    if not abs(total - 1.0) <= _BLEND_SUM_TOLERANCE:
        raise InvalidInput(
            "binder", f"fraction_pct of the binder components must sum to 100 (got {_pct(total)})"
        )
    return 1.0 / inverse


def _raise_blend_error(binder: Sequence[BinderComponent]) -> NoReturn:
    blend_specific_gravity(binder)  # raises, naming the component at fault
    raise InvalidInput("binder", "invalid binder blend")


def _check_tailings(tailings: Tailings) -> None:
    if not _GS_MIN_EXCLUSIVE < tailings.specific_gravity <= _GS_MAX:
        raise _bad_gs("tailings.specific_gravity", tailings.specific_gravity)
    if not 0.0 <= tailings.moisture_ratio <= _MOISTURE_RATIO_MAX:
        raise _bad_pct(
            "tailings.moisture_pct",
            tailings.moisture_ratio,
            f"between 0 and {_pct(_MOISTURE_RATIO_MAX)}",
        )


def _check_aggregate(aggregate: Aggregate) -> None:
    if not _GS_MIN_EXCLUSIVE < aggregate.specific_gravity <= _GS_MAX:
        raise _bad_gs("aggregate.specific_gravity", aggregate.specific_gravity)
    if not 0.0 <= aggregate.fraction < 1.0:
        raise _bad_pct("aggregate.fraction_pct", aggregate.fraction, "at least 0 and below 100")
    if not 0.0 <= aggregate.moisture_ratio <= _MOISTURE_RATIO_MAX:
        raise _bad_pct(
            "aggregate.moisture_pct",
            aggregate.moisture_ratio,
            f"between 0 and {_pct(_MOISTURE_RATIO_MAX)}",
        )


def _check_binder_ratio(binder_ratio: float) -> None:
    if not 0.0 < binder_ratio <= 1.0:
        raise _bad_pct("binder_pct", binder_ratio, "above 0 and at most 100")


def _check_solids_fraction(solids_fraction: float) -> None:
    if not 0.0 < solids_fraction < 1.0:
        raise _bad_pct("solids_pct", solids_fraction, "above 0 and below 100")


# --- the relations ------------------------------------------------------------------------


def solids_specific_gravity(
    tailings_specific_gravity: float,
    binder_specific_gravity: float,
    binder_ratio: float,
    aggregate: Aggregate | None = None,
) -> float:
    """Gs_s of all dry solids: Gs_s = (1 + Bw) / (1/Gs_t + Bw/Gs_b).

    Source: Belem & Benzaazoua (2008) (Bw over dry tailings; the volumes of the solids
    add). With an aggregate of fraction a of the non-binder solids, 1/Gs_t becomes
    (1 - a)/Gs_t + a/Gs_a, the same harmonic rule. Inputs are not validated here.
    """
    inverse_non_binder = 1.0 / tailings_specific_gravity
    if aggregate is not None:
        inverse_non_binder = (1.0 - aggregate.fraction) * inverse_non_binder + (
            aggregate.fraction / aggregate.specific_gravity
        )
    return (1.0 + binder_ratio) / (inverse_non_binder + binder_ratio / binder_specific_gravity)


def wet_density_kg_m3(solids_specific_gravity: float, solids_fraction: float) -> float:
    """Bulk density of a saturated paste: rho = 1 / (Cw/(Gs_s rho_w) + (1 - Cw)/rho_w).

    Source: Belem & Benzaazoua (2008) (saturated two-phase mixture: the volumes of solids
    and water add).
    """
    return WATER_DENSITY_KG_M3 / (solids_fraction / solids_specific_gravity + 1.0 - solids_fraction)


def water_binder_ratio(binder_ratio: float, solids_fraction: float) -> float:
    """W/C = Mw/Mb = (1 + Bw)(1 - Cw)/(Bw Cw) (Belem & Benzaazoua 2008)."""
    _check_binder_ratio(binder_ratio)
    _check_solids_fraction(solids_fraction)
    return (1.0 + binder_ratio) * (1.0 - solids_fraction) / (binder_ratio * solids_fraction)


def proportion(
    tailings: Tailings,
    binder: Sequence[BinderComponent],
    binder_ratio: float,
    solids_fraction: float,
    volume_m3: float = 1.0,
    aggregate: Aggregate | None = None,
) -> Proportioning:
    """Proportion a saturated paste of Bw = ``binder_ratio`` and Cw = ``solids_fraction``.

    Source: Belem & Benzaazoua (2008): Gs_b harmonic mean; Gs_s = (1 + Bw)/(1/Gs_t +
    Bw/Gs_b); rho = rho_w/(Cw/Gs_s + 1 - Cw); per m3 Ms = rho Cw, non-binder solids
    Ms/(1 + Bw), Mb = Bw x that, Mw = Ms(1/Cw - 1); water to add = Mw - w0 Mt (- w_a Ma
    with aggregate; negative = feed too wet, reported, not raised); rho_d = rho Cw;
    e = Gs_s rho_w/rho_d - 1; n = e/(1 + e); W/C = Mw/Mb.

    Raises InvalidInput naming the API field (``binder_pct``, ``solids_pct``,
    ``tailings.specific_gravity``, ``binder[1].fraction_pct``, ...) for any value that is
    not finite or out of its domain.
    """
    # Validation is inline and uses chained comparisons, which are False for NaN and
    # reject infinities through the upper bounds.
    gs_t = tailings.specific_gravity
    w0 = tailings.moisture_ratio
    if not _GS_MIN_EXCLUSIVE < gs_t <= _GS_MAX:
        raise _bad_gs("tailings.specific_gravity", gs_t)
    if not 0.0 <= w0 <= _MOISTURE_RATIO_MAX:
        _check_tailings(tailings)
    if not 0.0 < binder_ratio <= 1.0:
        _check_binder_ratio(binder_ratio)
    if not 0.0 < solids_fraction < 1.0:
        _check_solids_fraction(solids_fraction)
    if not 0.0 < volume_m3 <= _VOLUME_M3_MAX:
        raise InvalidInput(
            "volume_m3",
            f"volume_m3 must be above 0 and at most {_VOLUME_M3_MAX:g} (got {volume_m3!r})",
        )
    # The blend loop of blend_specific_gravity, inlined: a call costs ~0.15 µs.
    if not binder:
        raise InvalidInput("binder", "binder must list at least one component")
    inverse_gs_b = 0.0
    blend_total = 0.0
    for component in binder:
        gs = component.specific_gravity
        fraction = component.fraction
        if not (_GS_MIN_EXCLUSIVE < gs <= _GS_MAX and 0.0 <= fraction <= 1.0 and component.name):
            _raise_blend_error(binder)
        inverse_gs_b += fraction / gs
        blend_total += fraction
    if not abs(blend_total - 1.0) <= _BLEND_SUM_TOLERANCE:
        _raise_blend_error(binder)
    components = tuple(binder)
    count = len(components)
    if count == 2:
        duplicate_names = components[0].name == components[1].name
    else:
        duplicate_names = count > 2 and len({c.name for c in components}) != count
    if duplicate_names:
        raise InvalidInput("binder", "binder component names must be unique")

    inverse_non_binder = 1.0 / gs_t
    aggregate_fraction = 0.0
    aggregate_moisture = 0.0
    if aggregate is not None:
        _check_aggregate(aggregate)
        aggregate_fraction = aggregate.fraction
        aggregate_moisture = aggregate.moisture_ratio
        inverse_non_binder = (1.0 - aggregate_fraction) * inverse_non_binder + (
            aggregate_fraction / aggregate.specific_gravity
        )
    one_plus_bw = 1.0 + binder_ratio
    gs_s = one_plus_bw / (inverse_non_binder + binder_ratio * inverse_gs_b)
    rho = WATER_DENSITY_KG_M3 / (solids_fraction / gs_s + 1.0 - solids_fraction)

    dry_solids = rho * solids_fraction
    non_binder = dry_solids / one_plus_bw
    dry_aggregate = non_binder * aggregate_fraction
    dry_tailings = non_binder - dry_aggregate
    binder_kg = dry_solids - non_binder
    water = rho - dry_solids
    # Filled in one step, see _frozen (inlined here: a call costs ~0.15 µs).
    instance = _new_object(Proportioning)
    _set_attribute(
        instance,
        "__dict__",
        {
            "volume_m3": volume_m3,
            "tailings": tailings,
            "binder": components,
            "aggregate": aggregate,
            "binder_ratio": binder_ratio,
            "solids_fraction": solids_fraction,
            "binder_specific_gravity": 1.0 / inverse_gs_b,
            "solids_specific_gravity": gs_s,
            "wet_density_kg_m3": rho,
            "dry_tailings_kg_m3": dry_tailings,
            "dry_aggregate_kg_m3": dry_aggregate,
            "binder_kg_m3": binder_kg,
            "water_to_add_kg_m3": water - w0 * dry_tailings - aggregate_moisture * dry_aggregate,
            "void_ratio": gs_s * WATER_DENSITY_KG_M3 / dry_solids - 1.0,
        },
    )
    return instance


# --- inverse inputs -----------------------------------------------------------------------


def solids_fraction_for_water_binder_ratio(binder_ratio: float, water_binder_ratio: float) -> float:
    """Cw giving a target W/C at a given Bw: Cw = (1 + Bw)/(1 + Bw + Bw W/C).

    Inverts W/C = (1 + Bw)(1 - Cw)/(Bw Cw) (Belem & Benzaazoua 2008).
    """
    _check_binder_ratio(binder_ratio)
    if not 0.0 < water_binder_ratio <= 1.0e6:
        raise InvalidInput(
            "water_binder_ratio",
            f"water_binder_ratio must be above 0 and at most 1e6 (got {water_binder_ratio!r})",
        )
    return (1.0 + binder_ratio) / (1.0 + binder_ratio + binder_ratio * water_binder_ratio)


def solids_fraction_for_wet_density(
    tailings: Tailings,
    binder: Sequence[BinderComponent],
    binder_ratio: float,
    wet_density_kg_m3: float,
    aggregate: Aggregate | None = None,
) -> float:
    """Cw giving a target wet density: Cw = Gs_s (rho - rho_w) / (rho (Gs_s - 1)).

    The slurry (pulp density) relation Cw = rho_s (rho - rho_w)/(rho (rho_s - rho_w))
    (Wills, B.A. & Finch, J.A. (2016), *Wills' Mineral Processing Technology*, 8th ed.,
    Butterworth-Heinemann, ch. 3) with rho_s = Gs_s rho_w, Gs_s of Belem & Benzaazoua
    (2008). The density must lie strictly between water's and the solids'.
    """
    _check_tailings(tailings)
    _check_binder_ratio(binder_ratio)
    if aggregate is not None:
        _check_aggregate(aggregate)
    gs_s = solids_specific_gravity(
        tailings.specific_gravity, blend_specific_gravity(binder), binder_ratio, aggregate
    )
    solids_density = gs_s * WATER_DENSITY_KG_M3
    if not WATER_DENSITY_KG_M3 < wet_density_kg_m3 < solids_density:
        raise InvalidInput(
            "wet_density_kg_m3",
            f"wet_density_kg_m3 must lie between {WATER_DENSITY_KG_M3:g} and the solids "
            f"density {solids_density:.1f} (got {wet_density_kg_m3!r})",
        )
    return (
        solids_density
        * (wet_density_kg_m3 - WATER_DENSITY_KG_M3)
        / (wet_density_kg_m3 * (solids_density - WATER_DENSITY_KG_M3))
    )


def moisture_ratio_from_solids_fraction(feed_solids_fraction: float) -> float:
    """w0 of a feed known by its solids content: w0 = 1/Cw_feed - 1.

    w0 is water / dry solids (ASTM D2216-19) and Cw_feed dry solids / total mass, so per
    unit of dry solids the feed holds 1/Cw_feed - 1 of water: a filter cake at 76 %
    solids has w0 = 1/0.76 - 1 = 31.58 %.
    """
    if not 0.0 < feed_solids_fraction <= 1.0:
        raise _bad_pct("feed_solids_pct", feed_solids_fraction, "above 0 and at most 100")
    return 1.0 / feed_solids_fraction - 1.0
