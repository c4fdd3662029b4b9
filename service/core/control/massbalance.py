"""Feed-forward from the mass balance of a saturated paste.

Every formula here is a mass-volume relation of a saturated paste or a slurry, from two
sources: [BB] Belem, T. & Benzaazoua, M. (2008), "Design and application of underground
mine paste backfill technology", Geotech. Geol. Eng. 26(2):147-174 (the paste: Bw over
dry tailings, solids Gs, bulk density, masses per m3); [WF] Wills, B.A. & Finch, J.A.
(2016), *Wills' Mineral Processing Technology*, 8th ed., Butterworth-Heinemann, ch. 3
(slurry streams: pulp density and dry solids rate).

- blended binder Gs, mass-fraction harmonic mean: ``1/Gs_b = sum(f_i / Gs_i)`` (the
  volumes of the components add, the same mixture rule [BB] use for the paste solids);
- solids Gs of the paste: ``Gs_s = (1 + Bw) / (1/Gs_t + Bw/Gs_b)`` [BB];
- wet density of a saturated paste: ``rho = 1 / (Cw/(Gs_s rho_w) + (1 - Cw)/rho_w)`` [BB];
- solids fraction of a slurry: ``Cw = rho_s (rho - rho_w) / (rho (rho_s - rho_w))`` [WF];
- dry solids rate ``[t/h] = Q [m3/h] * rho [t/m3] * Cw`` [WF];
- binder per component ``= Bw * dry tailings * blend fraction`` (Bw is binder over dry
  tailings, the [BB] convention);
- water to add ``= Mw - water already in the feed``, ``Mw = Ms (1/Cw - 1)`` [BB];
  negative means the feed is too wet and the recipe cannot be met by adding water.

Units: fractions 0-1 (``binder_ratio`` is Bw, ``solids_fraction`` is Cw), densities
kg/m3, mass rates t/h, volume flows m3/h. Water is taken at 1,000 kg/m3, so one
tonne of water per hour is one m3/h.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from service.errors import InvalidInput

RHO_W_KG_M3 = 1000.0
"""Density of water used by every relation here, rounded to 1 t/m3 as the relations are
written (so a tonne of water is a cubic metre)."""

BINDER_COMPONENTS: tuple[str, ...] = ("cement", "slag", "flyash")
"""Binder components the PLC has a feeder for (docs/INTEGRATION.md ``*_rate_sp`` tags)."""

_FRACTION_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class BinderComponent:
    """One binder component of a recipe: its mass fraction of the blend and its Gs."""

    name: str
    fraction: float
    specific_gravity: float


@dataclass(frozen=True)
class Recipe:
    """What the control law needs of a recipe, in fractions (0-1).

    ``binder_ratio`` is Bw (binder mass / dry tailings mass), ``solids_fraction`` is
    Cw (dry solids / paste mass), ``tailings_sg`` the Gs of the tailings solids and
    ``binder`` the blend (fractions sum to 1). Build it with :func:`make_recipe`
    to have it validated.
    """

    binder_ratio: float
    solids_fraction: float
    tailings_sg: float
    binder: tuple[BinderComponent, ...]

    def fraction(self, component: str) -> float:
        """Blend fraction of ``component``; 0 when the recipe does not use it."""
        return sum(c.fraction for c in self.binder if c.name == component)

    @property
    def component_names(self) -> tuple[str, ...]:
        """Names of the components with a non-zero fraction, in recipe order."""
        return tuple(c.name for c in self.binder if c.fraction > 0.0)


def _finite_positive(field: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0.0:
        raise InvalidInput(field, f"{field} must be a finite number > 0, got {value!r}")


def make_recipe(
    *,
    binder_ratio: float,
    solids_fraction: float,
    tailings_sg: float,
    blend: Mapping[str, float],
    binder_sg: Mapping[str, float],
) -> Recipe:
    """Validate and build a :class:`Recipe`.

    ``blend`` maps component names (``cement``, ``slag``, ``flyash``) to mass
    fractions summing to 1; ``binder_sg`` gives the Gs of each component in the
    blend. Raises :class:`InvalidInput` naming the offending field.
    """
    if not math.isfinite(binder_ratio) or not 0.0 < binder_ratio < 1.0:
        raise InvalidInput("binder_ratio", f"Bw must be a fraction in (0, 1), got {binder_ratio!r}")
    if not math.isfinite(solids_fraction) or not 0.0 < solids_fraction < 1.0:
        raise InvalidInput(
            "solids_fraction", f"Cw must be a fraction in (0, 1), got {solids_fraction!r}"
        )
    _finite_positive("tailings_sg", tailings_sg)
    if tailings_sg <= 1.0:
        raise InvalidInput("tailings_sg", "tailings Gs must exceed 1 (denser than water)")
    if not blend:
        raise InvalidInput("blend", "a recipe needs at least one binder component")
    components: list[BinderComponent] = []
    for name, fraction in blend.items():
        if name not in BINDER_COMPONENTS:
            raise InvalidInput(
                f"blend.{name}", f"unknown binder component {name!r}; known: {BINDER_COMPONENTS}"
            )
        if not math.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
            raise InvalidInput(f"blend.{name}", f"fraction must be in [0, 1], got {fraction!r}")
        if name not in binder_sg:
            raise InvalidInput(f"binder_sg.{name}", f"no specific gravity for {name!r}")
        sg = binder_sg[name]
        _finite_positive(f"binder_sg.{name}", sg)
        components.append(BinderComponent(name, float(fraction), float(sg)))
    total = sum(c.fraction for c in components)
    if abs(total - 1.0) > _FRACTION_SUM_TOLERANCE:
        raise InvalidInput("blend", f"blend fractions must sum to 1, got {total:.6f}")
    return Recipe(
        binder_ratio=float(binder_ratio),
        solids_fraction=float(solids_fraction),
        tailings_sg=float(tailings_sg),
        binder=tuple(components),
    )


def blend_sg(recipe: Recipe) -> float:
    """Gs of the blended binder: ``1/Gs_b = sum(f_i / Gs_i)`` (volumes add; the
    mixture rule of Belem & Benzaazoua 2008)."""
    return 1.0 / sum(c.fraction / c.specific_gravity for c in recipe.binder)


def solids_sg(recipe: Recipe) -> float:
    """Gs of all paste solids: ``Gs_s = (1 + Bw) / (1/Gs_t + Bw/Gs_b)`` (Belem & Benzaazoua
    2008)."""
    bw = recipe.binder_ratio
    return (1.0 + bw) / (1.0 / recipe.tailings_sg + bw / blend_sg(recipe))


def paste_density_kg_m3(recipe: Recipe) -> float:
    """Wet density of the saturated paste of the recipe (Belem & Benzaazoua 2008).

    ``rho = 1 / (Cw/(Gs_s rho_w) + (1 - Cw)/rho_w)``.
    """
    cw = recipe.solids_fraction
    return 1.0 / (cw / (solids_sg(recipe) * RHO_W_KG_M3) + (1.0 - cw) / RHO_W_KG_M3)


def slurry_solids_fraction(density_kg_m3: float, solids_sg_: float) -> float:
    """Solids mass fraction of a saturated slurry from its density (Wills & Finch 2016,
    ch. 3).

    ``Cw = rho_s (rho - rho_w) / (rho (rho_s - rho_w))`` with ``rho_s = Gs rho_w``.
    The result is outside (0, 1) when the density is not that of a slurry of those
    solids (at or below water, at or above the solids): callers treat that as a bad
    reading rather than clamp it.
    """
    rho_s = solids_sg_ * RHO_W_KG_M3
    return rho_s * (density_kg_m3 - RHO_W_KG_M3) / (density_kg_m3 * (rho_s - RHO_W_KG_M3))


def dry_solids_rate_t_h(flow_m3_h: float, density_kg_m3: float, solids_fraction: float) -> float:
    """Dry solids rate of a slurry stream: ``Q [m3/h] * rho [t/m3] * Cw`` (Wills & Finch
    2016, ch. 3)."""
    return flow_m3_h * density_kg_m3 / 1000.0 * solids_fraction


def slurry_water_rate_t_h(flow_m3_h: float, density_kg_m3: float, solids_fraction: float) -> float:
    """Water carried by a slurry stream, t/h (= m3/h): ``Q rho (1 - Cw)``."""
    return flow_m3_h * density_kg_m3 / 1000.0 * (1.0 - solids_fraction)


def binder_rates_t_h(dry_tailings_t_h: float, recipe: Recipe) -> dict[str, float]:
    """Binder rate per component: ``Bw x dry tailings x blend fraction`` (Bw over dry
    tailings, Belem & Benzaazoua 2008).

    Every known component is present; those not in the recipe are 0.
    """
    binder = recipe.binder_ratio * dry_tailings_t_h
    return {name: binder * recipe.fraction(name) for name in BINDER_COMPONENTS}


def paste_water_rate_t_h(dry_tailings_t_h: float, recipe: Recipe) -> float:
    """Water the paste must carry: ``Mw = Ms (1/Cw - 1)``, ``Ms = (1 + Bw) Mt`` (Belem &
    Benzaazoua 2008)."""
    solids = (1.0 + recipe.binder_ratio) * dry_tailings_t_h
    return solids * (1.0 / recipe.solids_fraction - 1.0)


def dilution_water_m3_h(dry_tailings_t_h: float, feed_water_t_h: float, recipe: Recipe) -> float:
    """Dilution water to reach the target Cw given the water already in the feed.

    ``Mw - water in feed`` (the water to add of Belem & Benzaazoua 2008), in m3/h.
    Negative means the feed is wetter than the recipe: it is returned as is so the caller
    can report "recipe not reachable"; it must never be commanded.
    """
    return (paste_water_rate_t_h(dry_tailings_t_h, recipe) - feed_water_t_h) * 1000.0 / RHO_W_KG_M3


def paste_volume_per_dry_tailings_m3_t(recipe: Recipe) -> float:
    """Paste volume made per tonne of dry tailings, m3/t.

    Sum of the solids volumes (tailings via Gs_t, binder via the blended Gs_b) and the
    water volume ``(1 + Bw)(1/Cw - 1)`` of a saturated paste, whose volumes add (Belem &
    Benzaazoua 2008).
    """
    rho_w_t_m3 = RHO_W_KG_M3 / 1000.0
    bw = recipe.binder_ratio
    tailings = 1.0 / (recipe.tailings_sg * rho_w_t_m3)
    binder = bw / (blend_sg(recipe) * rho_w_t_m3)
    water = paste_water_rate_t_h(1.0, recipe) / rho_w_t_m3
    return tailings + binder + water


def feed_flow_for_paste_m3_h(
    paste_flow_m3_h: float, feed_density_kg_m3: float, recipe: Recipe
) -> float:
    """Feed (tailings slurry or cake) flow that makes ``paste_flow_m3_h`` of the recipe.

    Dry tailings needed = paste flow / paste volume per tonne of dry tailings; the
    feed carries ``rho_feed [t/m3] * Cw_feed`` tonnes of dry tailings per m3, with
    ``Cw_feed`` from the feed density and the tailings Gs (the slurry relation, Wills &
    Finch 2016, ch. 3). Returns NaN when the feed density is not that of a tailings
    slurry.
    """
    feed_cw = slurry_solids_fraction(feed_density_kg_m3, recipe.tailings_sg)
    if not 0.0 < feed_cw < 1.0:
        return math.nan
    dry_tailings_t_h = paste_flow_m3_h / paste_volume_per_dry_tailings_m3_t(recipe)
    return dry_tailings_t_h / (feed_density_kg_m3 / 1000.0 * feed_cw)


def measured_solids_fraction(paste_density_kg_m3_: float, recipe: Recipe) -> float:
    """Cw of the paste from its measured density and the recipe's solids Gs (the slurry
    relation, Wills & Finch 2016, ch. 3)."""
    return slurry_solids_fraction(paste_density_kg_m3_, solids_sg(recipe))


def measured_binder_ratio(binder_rates_t_h_: Mapping[str, float], dry_tailings_t_h: float) -> float:
    """Bw from the feeders' measured rates over the measured dry tailings rate.

    NaN when there is no dry tailings flow to divide by.
    """
    if dry_tailings_t_h <= 0.0:
        return math.nan
    return sum(binder_rates_t_h_.values()) / dry_tailings_t_h


@dataclass(frozen=True)
class FeedForward:
    """Feed-forward setpoints from the mass balance, before limits and trims.

    ``water_m3_h`` may be negative (feed too wet: recipe not reachable); the law
    never commands it as such.
    """

    feed_solids_fraction: float
    dry_tailings_t_h: float
    feed_water_t_h: float
    tailings_flow_m3_h: float
    binder_t_h: Mapping[str, float]
    water_m3_h: float

    @property
    def reachable(self) -> bool:
        """True when the recipe's Cw is reachable by adding water (water >= 0)."""
        return self.water_m3_h >= 0.0


def feed_forward(
    recipe: Recipe,
    *,
    feed_flow_m3_h: float,
    feed_density_kg_m3: float,
    paste_flow_request_m3_h: float,
) -> FeedForward | None:
    """All feed-forward values from the measured feed and the requested paste flow.

    Binder and water follow the *measured* dry tailings (ratio control on the feed);
    the tailings flow setpoint is what the requested paste flow needs at the measured
    feed density. Returns None when the feed density is not that of a slurry of the
    recipe's tailings (Cw outside (0, 1)): there is no mass balance to compute.
    """
    feed_cw = slurry_solids_fraction(feed_density_kg_m3, recipe.tailings_sg)
    if not (math.isfinite(feed_cw) and 0.0 < feed_cw < 1.0):
        return None
    flow = max(feed_flow_m3_h, 0.0)
    dry = dry_solids_rate_t_h(flow, feed_density_kg_m3, feed_cw)
    feed_water = slurry_water_rate_t_h(flow, feed_density_kg_m3, feed_cw)
    return FeedForward(
        feed_solids_fraction=feed_cw,
        dry_tailings_t_h=dry,
        feed_water_t_h=feed_water,
        tailings_flow_m3_h=feed_flow_for_paste_m3_h(
            max(paste_flow_request_m3_h, 0.0), feed_density_kg_m3, recipe
        ),
        binder_t_h=binder_rates_t_h(dry, recipe),
        water_m3_h=dilution_water_m3_h(dry, feed_water, recipe),
    )
