"""The plant's own spread: how far the paste it places strays from its recipe, and what
that does to the strength the cylinders will show.

A cylinder cast from a pour tests the paste the plant made, not the recipe: its Cw and Bw
scatter about the recipe's by what the control holds. Each pour's record keeps the
volume-weighted mean square of that scatter on the paste estimate (never on single
readings); pooled over recent pours it is the plant's spread, ``s_Cw`` (points of Cw, as a
fraction) and ``r_Bw`` (Bw relative to its target). A new site with no pours uses the
stated defaults and says so.

Carried through the strength model ln UCS = a + n ln(Mb/Mw) with
Mb/Mw = Bw Cw / ((1 + Bw)(1 - Cw)) by the delta method (first-order propagation of
independent errors; e.g. Taylor, J.R. (1997) An Introduction to Error Analysis, 2nd ed.,
University Science Books, ch. 3):

    d ln(Mb/Mw)/d Cw = 1 / (Cw (1 - Cw)),   d ln(Mb/Mw)/d Bw = 1 / (Bw (1 + Bw)),
    var(ln UCS) += n^2 [ (s_Cw / (Cw (1 - Cw)))^2 + (r_Bw / (1 + Bw))^2 ]

which adds to the fit's own prediction variance (lab scatter and leverage) in every
design bound (:func:`service.core.reliability.total_sd_log`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

SpreadBasis = Literal["pours", "default"]


@dataclass(frozen=True)
class PlantSpread:
    """The plant's Cw spread (absolute, fraction) and Bw spread (relative), and what they
    rest on: ``pours`` (that many pours, that volume) or the ``default``."""

    solids_sd: float
    binder_sd_rel: float
    basis: SpreadBasis
    pours: int = 0
    volume_m3: float = 0.0

    def variances_log(
        self, exponent: float, solids_fraction: float, binder_ratio: float
    ) -> tuple[float, float]:
        """The variance of ln UCS from the Cw spread and from the Bw spread (see the
        module text), at a mix."""
        cw_term = exponent * self.solids_sd / (solids_fraction * (1.0 - solids_fraction))
        bw_term = exponent * self.binder_sd_rel / (1.0 + binder_ratio)
        return cw_term * cw_term, bw_term * bw_term

    def variance_log(self, exponent: float, solids_fraction: float, binder_ratio: float) -> float:
        return sum(self.variances_log(exponent, solids_fraction, binder_ratio))

    def to_dict(self) -> dict[str, Any]:
        return {
            "solids_sd_pct": 100.0 * self.solids_sd,
            "binder_sd_rel_pct": 100.0 * self.binder_sd_rel,
            "basis": self.basis,
            "pours": self.pours,
            "volume_m3": self.volume_m3,
        }


def from_pours(
    records: Iterable[Mapping[str, Any]],
    *,
    default: PlantSpread,
    min_pours: int = 5,
) -> PlantSpread:
    """The pooled spread of pour records (each its ``totals`` summary: the placed volume
    and the mean squares of the Cw and Bw deviations it judged), or ``default`` when
    fewer than ``min_pours`` carry them."""
    volume = cw_sq = bw_sq = 0.0
    pours = 0
    for totals in records:
        v = totals.get("spread_volume_m3")
        c = totals.get("solids_deviation_ms")
        b = totals.get("binder_deviation_rel_ms")
        if not all(isinstance(x, int | float) for x in (v, c, b)):
            continue
        assert isinstance(v, int | float) and isinstance(c, int | float)
        assert isinstance(b, int | float)
        if v <= 0.0 or not all(math.isfinite(float(x)) for x in (v, c, b)):
            continue
        volume += float(v)
        cw_sq += float(c) * float(v)
        bw_sq += float(b) * float(v)
        pours += 1
    if pours < min_pours or volume <= 0.0:
        return default
    return PlantSpread(math.sqrt(cw_sq / volume), math.sqrt(bw_sq / volume), "pours", pours, volume)
