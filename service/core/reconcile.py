"""Reconciliation: what the lab and the plant's redundant gauges say about the gauges.

Two questions, both answered with values in, values out (time is a parameter):

**1. Is the tailings Gs (or the paste density gauge) wrong?** The plant computes the
paste's Cw from its density gauge and an *assumed* tailings Gs; the lab measures the
sample's Cw from its masses (:mod:`service.core.lab`). With the slurry (pulp density)
relation (Wills, B.A. & Finch, J.A. (2016), *Wills' Mineral Processing Technology*, 8th
ed., Butterworth-Heinemann, ch. 3) and the solids Gs of a blend of tailings and binder,
whose volumes add (Belem, T. & Benzaazoua, M. (2008), "Design and application of
underground mine paste backfill technology", Geotech. Geol. Eng. 26(2):147-174), for a
saturated paste of density rho and solids of density rho_s:

    Cw = rho_s (rho - rho_w) / (rho (rho_s - rho_w))
    => Gs_s = rho_s / rho_w = Cw rho / (rho_w - rho (1 - Cw))            (a)
    Gs_s = (1 + Bw) / (1/Gs_t + Bw/Gs_b)  =>  Gs_t = 1 / ((1 + Bw)/Gs_s - Bw/Gs_b)  (b)
    rho = rho_w / (Cw/Gs_s + 1 - Cw)                                      (c)

Hypothesis *tailings_gs*: the gauge is right and the true Gs_t is (b) of (a) at the
gauge's density and the lab's Cw. Hypothesis *density_gauge*: the Gs is right and the
gauge reads high by b = rho_gauge - (c) at the lab's Cw and the assumed Gs_s. Each
sample gives one value of each; they are pooled as a mean with a Student t interval
over the samples (the one-sample t interval; e.g. Montgomery, D.C. & Runger, G.C.
(2014), *Applied Statistics and Probability for Engineers*, 6th ed., Wiley, §8.2).
Which explains the data better: both models have one parameter, so the one with the
smaller residual sum of squares of Cw across samples of different densities is the
likelier, measured by the Akaike weight w = 1/(1 + (RSS_gs/RSS_b)^(n/2)) (Burnham, K.P.
& Anderson, D.R. (2002), *Model Selection and Multimodel Inference*, 2nd ed., Springer,
ch. 2, Akaike weights). The two signatures differ only in how the Cw error scales with density
(dCw/dGs ~ (rho - rho_w)/rho, dCw/drho ~ 1/rho^2), so across the usual 1,850-2,100
kg/m3 they are hard to tell apart: when the lab also measured the fresh paste's
density, the paired difference rho_gauge - rho_lab decides (about 0 for a Gs error, b
for a gauge bias). Either correction gives nearly the same reconciled Cw inside the sampled
density range; the distinction matters for the feed density (which also uses Gs_t) and
for which instrument to fix.

The plant's redundant flows (its gauges checking each other) are
:mod:`service.core.flow_balance`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from service.core.control.massbalance import RHO_W_KG_M3, slurry_solids_fraction
from service.core.lazy_scipy import nctdtr, stdtrit
from service.errors import InvalidInput

FloatArray = NDArray[np.float64]

_GS_MIN_EXCLUSIVE = 1.0
_GS_MAX = 10.0
_DENSITY_MIN_KG_M3 = 1000.0
_DENSITY_MAX_KG_M3 = 4000.0


# =========================================================================================
# 1. Gs (or a density gauge bias) from lab Cw against recorded Cw
# =========================================================================================


def solids_sg(tailings_sg: float, binder_ratio: float, binder_sg: float) -> float:
    """Gs_s = (1 + Bw) / (1/Gs_t + Bw/Gs_b): the volumes of tailings and binder solids add,
    Bw over dry tailings (Belem & Benzaazoua 2008)."""
    return (1.0 + binder_ratio) / (1.0 / tailings_sg + binder_ratio / binder_sg)


def solids_sg_from_density(solids_fraction: float, density_kg_m3: float) -> float:
    """Gs_s = Cw rho / (rho_w - rho (1 - Cw)): the slurry relation solved for the solids.

    Relation (a) of the module docstring (Wills & Finch 2016, ch. 3). NaN when
    rho (1 - Cw) >= rho_w (the sample's water alone would fill the volume: no solids
    density explains that Cw at that density).
    """
    denominator = RHO_W_KG_M3 - density_kg_m3 * (1.0 - solids_fraction)
    if denominator <= 0.0:
        return math.nan
    return solids_fraction * density_kg_m3 / denominator


def tailings_sg_from_solids_sg(solids_sg_: float, binder_ratio: float, binder_sg: float) -> float:
    """Gs_t = 1 / ((1 + Bw)/Gs_s - Bw/Gs_b), relation (b): the blended solids Gs of Belem &
    Benzaazoua (2008) inverted. NaN when the solids are too light for the binder they hold."""
    inverse = (1.0 + binder_ratio) / solids_sg_ - binder_ratio / binder_sg
    if not inverse > 0.0:
        return math.nan
    return 1.0 / inverse


def saturated_density_kg_m3(solids_fraction: float, solids_sg_: float) -> float:
    """rho = rho_w / (Cw/Gs_s + 1 - Cw), relation (c): the volumes of solids and water of a
    saturated paste add (Belem & Benzaazoua 2008)."""
    return RHO_W_KG_M3 / (solids_fraction / solids_sg_ + 1.0 - solids_fraction)


@dataclass(frozen=True)
class PasteSample:
    """A lab sample beside what the plant recorded for the same paste.

    ``lab_solids_fraction`` is the sample's Cw (0-1; corrected for bound water when the
    cylinder had cured, see :mod:`service.core.lab`); ``gauge_density_kg_m3`` the paste
    density the plant measured when the sample was taken; ``binder_ratio`` Bw (binder /
    dry tailings), ``binder_sg`` the blend's Gs and ``tailings_sg`` the Gs the plant
    assumed. ``lab_density_kg_m3`` is the fresh paste's density measured by the lab
    (mould mass / volume, mud balance), when there is one.
    """

    sample_id: str
    lab_solids_fraction: float
    gauge_density_kg_m3: float
    binder_ratio: float
    binder_sg: float
    tailings_sg: float
    lab_density_kg_m3: float | None = None

    @property
    def assumed_solids_sg(self) -> float:
        """Gs_s with the assumed tailings Gs."""
        return solids_sg(self.tailings_sg, self.binder_ratio, self.binder_sg)

    @property
    def recorded_solids_fraction(self) -> float:
        """The Cw the plant recorded: the slurry relation (Wills & Finch 2016, ch. 3) at the
        gauge density and the assumed Gs_s."""
        return slurry_solids_fraction(self.gauge_density_kg_m3, self.assumed_solids_sg)


@dataclass(frozen=True)
class SampleEstimate:
    """What one sample says: the tailings Gs that makes its lab Cw consistent with the
    gauge (relations a, b) and the gauge bias that would, at the assumed Gs (c)."""

    sample_id: str
    lab_solids_fraction: float
    recorded_solids_fraction: float
    gauge_density_kg_m3: float
    tailings_sg: float
    density_bias_kg_m3: float
    lab_density_kg_m3: float | None


@dataclass(frozen=True)
class Estimate:
    """A pooled estimate: the mean over ``n`` samples, its standard error sd/sqrt(n) and
    the Student t interval at ``confidence`` (None with fewer than two samples)."""

    value: float
    n: int
    standard_error: float | None
    low: float | None
    high: float | None
    confidence: float
    sample_sd: float | None

    def contains(self, value: float) -> bool:
        """True when ``value`` is inside the interval (or there is no interval)."""
        if self.low is None or self.high is None:
            return True
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "n": self.n,
            "standard_error": self.standard_error,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "sample_sd": self.sample_sd,
        }


def t_estimate(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean, standard error s/sqrt(n) and the two-sided Student t interval
    mean +- t_{(1+c)/2, n-1} s/sqrt(n) (Montgomery & Runger 2014, §8.2)."""
    _check_probability("confidence", confidence)
    n = len(values)
    if n == 0:
        raise InvalidInput("samples", "no values to pool")
    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean())
    if n < 2:
        return Estimate(mean, n, None, None, None, confidence, None)
    sd = float(data.std(ddof=1))
    se = sd / math.sqrt(n)
    half = float(stdtrit(n - 1, 0.5 + confidence / 2.0)) * se
    return Estimate(mean, n, se, mean - half, mean + half, confidence, sd)


CorrectionKind = Literal["tailings_gs", "density_gauge"]
Verdict = Literal["insufficient", "consistent", "tailings_gs", "density_gauge", "undetermined"]


@dataclass(frozen=True)
class CwCorrection:
    """A proposed correction of the recorded Cw.

    ``tailings_gs``: recompute Cw with ``tailings_sg`` instead of the assumed Gs;
    ``density_gauge``: subtract ``density_bias_kg_m3`` from the gauge reading. ``low`` /
    ``high`` is the confidence interval of the corrected quantity; ``determined`` is
    False when the data could not tell the two explanations apart (the correction is
    then the better-fitting one; both give nearly the same Cw in the sampled density
    range). ``basis`` says how it was chosen.
    """

    kind: CorrectionKind
    tailings_sg: float | None = None
    density_bias_kg_m3: float | None = None
    low: float | None = None
    high: float | None = None
    determined: bool = True
    basis: str = ""

    def __post_init__(self) -> None:
        if self.kind == "tailings_gs":
            if self.tailings_sg is None or not _GS_MIN_EXCLUSIVE < self.tailings_sg <= _GS_MAX:
                raise InvalidInput(
                    "tailings_sg",
                    f"a Gs correction needs a tailings_sg above 1 and at most 10 "
                    f"({self.tailings_sg!r})",
                )
        elif self.kind == "density_gauge":
            bias = self.density_bias_kg_m3
            if bias is None or not math.isfinite(bias) or abs(bias) >= 1000.0:
                raise InvalidInput(
                    "density_bias_kg_m3",
                    f"a gauge correction needs a finite bias below 1,000 kg/m3 ({bias!r})",
                )
        else:
            raise InvalidInput("kind", f"unknown correction kind {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tailings_sg": self.tailings_sg,
            "density_bias_kg_m3": self.density_bias_kg_m3,
            "low": self.low,
            "high": self.high,
            "determined": self.determined,
            "basis": self.basis,
        }


@dataclass(frozen=True)
class GsReconciliation:
    """Lab Cw against recorded Cw over a set of samples.

    ``tailings_sg`` / ``density_bias`` are the pooled estimates under each hypothesis;
    ``assumed_tailings_sg`` the plant's value and ``tailings_sg_error_pct`` the estimate's
    departure from it (% of the assumed). ``residual_sd_gs`` / ``residual_sd_bias`` are
    the spreads (Cw, 0-1) of lab minus predicted Cw under each fitted hypothesis, and
    ``gs_weight`` the Akaike weight of the Gs hypothesis (0-1). ``direct_density_bias``
    is the paired gauge - lab density (None without two lab densities). ``verdict``:
    ``insufficient`` (fewer than two samples), ``consistent`` (no error shown at
    ``confidence``), ``tailings_gs``, ``density_gauge`` or ``undetermined``.
    ``proposal`` is the correction to put to the engineer (None when consistent or
    insufficient). ``samples_needed`` is how many samples at the observed per-sample
    spread name a Gs error of ``detect_relative_gs_error`` at ``confidence`` with 90 %
    power (None with fewer than two samples).
    """

    samples: tuple[SampleEstimate, ...]
    assumed_tailings_sg: float
    tailings_sg: Estimate
    density_bias: Estimate
    tailings_sg_error_pct: float
    mean_solids_error: float
    residual_sd_gs: float | None
    residual_sd_bias: float | None
    gs_weight: float | None
    direct_density_bias: Estimate | None
    verdict: Verdict
    explanation: str
    proposal: CwCorrection | None
    samples_needed: int | None
    detect_relative_gs_error: float


def is_paste_density(value: float) -> bool:
    """A density a paste can have: above water's (a gauge reading water, the plant at rest
    or flushing, is no paste reading) and at most 4,000 kg/m3."""
    return math.isfinite(value) and _DENSITY_MIN_KG_M3 < value <= _DENSITY_MAX_KG_M3


def _check_probability(field_name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise InvalidInput(field_name, f"{field_name} must be between 0 and 1 ({value!r})")


def _check_sample(index: int, sample: PasteSample) -> None:
    prefix = f"samples[{index}]"
    if not sample.sample_id:
        raise InvalidInput(f"{prefix}.sample_id", "sample_id is empty")
    if not 0.0 < sample.lab_solids_fraction < 1.0:
        raise InvalidInput(
            f"{prefix}.lab_solids_fraction",
            f"the lab Cw must be between 0 and 1 ({sample.lab_solids_fraction!r})",
        )
    densities = [("gauge_density_kg_m3", sample.gauge_density_kg_m3)]
    if sample.lab_density_kg_m3 is not None:
        densities.append(("lab_density_kg_m3", sample.lab_density_kg_m3))
    for name, value in densities:
        if not _DENSITY_MIN_KG_M3 < value <= _DENSITY_MAX_KG_M3:
            raise InvalidInput(
                f"{prefix}.{name}",
                f"{name} must be above {_DENSITY_MIN_KG_M3:g} and at most "
                f"{_DENSITY_MAX_KG_M3:g} kg/m3 ({value!r})",
            )
    if not 0.0 < sample.binder_ratio <= 1.0:
        raise InvalidInput(
            f"{prefix}.binder_ratio", f"Bw must be in (0, 1] ({sample.binder_ratio!r})"
        )
    for name, value in (("binder_sg", sample.binder_sg), ("tailings_sg", sample.tailings_sg)):
        if not _GS_MIN_EXCLUSIVE < value <= _GS_MAX:
            raise InvalidInput(
                f"{prefix}.{name}", f"{name} must be above 1 and at most 10 ({value!r})"
            )
    if not 0.0 < sample.recorded_solids_fraction < 1.0:
        raise InvalidInput(
            f"{prefix}.gauge_density_kg_m3",
            f"the gauge density {sample.gauge_density_kg_m3:g} kg/m3 is not that of a paste of "
            f"solids Gs {sample.assumed_solids_sg:.3f}",
        )


def estimate_sample(sample: PasteSample, index: int = 0) -> SampleEstimate:
    """The tailings Gs (relations a, b) and the gauge bias (relation c) one sample implies.

    InvalidInput naming ``samples[i].lab_solids_fraction`` when no solids density makes
    the lab Cw consistent with the gauge density (a mislabelled sample or a dead gauge).
    """
    _check_sample(index, sample)
    gs_solids = solids_sg_from_density(sample.lab_solids_fraction, sample.gauge_density_kg_m3)
    gs_tailings = (
        tailings_sg_from_solids_sg(gs_solids, sample.binder_ratio, sample.binder_sg)
        if math.isfinite(gs_solids)
        else math.nan
    )
    if not (math.isfinite(gs_tailings) and _GS_MIN_EXCLUSIVE < gs_tailings <= _GS_MAX):
        raise InvalidInput(
            f"samples[{index}].lab_solids_fraction",
            f"sample {sample.sample_id!r}: a lab Cw of {sample.lab_solids_fraction * 100:.2f} % "
            f"at a gauge density of {sample.gauge_density_kg_m3:g} kg/m3 implies no plausible "
            "tailings Gs (mislabelled sample, or the gauge was not reading this paste)",
        )
    bias = sample.gauge_density_kg_m3 - saturated_density_kg_m3(
        sample.lab_solids_fraction, sample.assumed_solids_sg
    )
    return SampleEstimate(
        sample_id=sample.sample_id,
        lab_solids_fraction=sample.lab_solids_fraction,
        recorded_solids_fraction=sample.recorded_solids_fraction,
        gauge_density_kg_m3=sample.gauge_density_kg_m3,
        tailings_sg=gs_tailings,
        density_bias_kg_m3=bias,
        lab_density_kg_m3=sample.lab_density_kg_m3,
    )


def _akaike_weight(rss_first: float, rss_second: float, n: int) -> float:
    """Akaike weight of the first of two one-parameter models: 1/(1 + (RSS1/RSS2)^(n/2))
    (AIC = n ln(RSS/n) + 2k, equal k; Burnham & Anderson 2002, ch. 2)."""
    tiny = 1.0e-300
    log_ratio = math.log(max(rss_first, tiny)) - math.log(max(rss_second, tiny))
    exponent = 0.5 * n * log_ratio
    if exponent > 700.0:
        return 0.0
    return 1.0 / (1.0 + math.exp(exponent))


def reconcile_gs(
    samples: Sequence[PasteSample],
    *,
    confidence: float = 0.95,
    decision_weight: float = 0.95,
    detect_relative_gs_error: float = 0.03,
) -> GsReconciliation:
    """Estimate the tailings Gs, or a paste density gauge bias, from lab Cw against the
    recorded Cw of the same paste; say which explains the data and propose a correction.

    See the module docstring for the relations and statistics. An error is *shown* when
    the Gs interval excludes the assumed Gs or the bias interval excludes 0 (at
    ``confidence``). Which one: with two or more lab densities, the paired gauge - lab
    density decides when its interval holds 0 but not the bias the Cw needs (Gs), or
    excludes 0 (gauge; the proposed bias is then the direct gauge - lab difference, and
    any Cw gap it leaves is a Gs error for the next samples to show); otherwise the
    Akaike weight of the better model must reach ``decision_weight``; failing both the
    verdict is ``undetermined`` and the better fitting correction is proposed with
    ``determined`` False. All samples must share the assumed tailings Gs (reconcile one
    assumption at a time).
    """
    if not samples:
        raise InvalidInput("samples", "no samples to reconcile")
    _check_probability("confidence", confidence)
    if not 0.5 < decision_weight < 1.0:
        raise InvalidInput(
            "decision_weight", f"decision_weight must be between 0.5 and 1 ({decision_weight!r})"
        )
    if not 0.0 < detect_relative_gs_error < 1.0:
        raise InvalidInput(
            "detect_relative_gs_error",
            f"detect_relative_gs_error must be between 0 and 1 ({detect_relative_gs_error!r})",
        )
    estimates = tuple(estimate_sample(sample, i) for i, sample in enumerate(samples))
    assumed = samples[0].tailings_sg
    for i, sample in enumerate(samples):
        if sample.tailings_sg != assumed:
            raise InvalidInput(
                f"samples[{i}].tailings_sg",
                f"the samples assume different tailings Gs ({assumed:g} and "
                f"{sample.tailings_sg:g}): reconcile one assumption at a time",
            )
    n = len(estimates)
    gs = t_estimate([e.tailings_sg for e in estimates], confidence)
    bias = t_estimate([e.density_bias_kg_m3 for e in estimates], confidence)
    lab = np.array([s.lab_solids_fraction for s in samples])
    mean_error = float(np.mean(lab - np.array([e.recorded_solids_fraction for e in estimates])))

    lab_densities = [
        s.gauge_density_kg_m3 - s.lab_density_kg_m3
        for s in samples
        if s.lab_density_kg_m3 is not None
    ]
    direct = t_estimate(lab_densities, confidence) if len(lab_densities) >= 2 else None

    residual_sd_gs = residual_sd_bias = weight = None
    needed = None
    if n >= 2:
        predicted_gs = np.array(
            [
                slurry_solids_fraction(
                    s.gauge_density_kg_m3, solids_sg(gs.value, s.binder_ratio, s.binder_sg)
                )
                for s in samples
            ]
        )
        predicted_bias = np.array(
            [
                slurry_solids_fraction(s.gauge_density_kg_m3 - bias.value, s.assumed_solids_sg)
                for s in samples
            ]
        )
        rss_gs = float(np.sum((lab - predicted_gs) ** 2))
        rss_bias = float(np.sum((lab - predicted_bias) ** 2))
        residual_sd_gs = math.sqrt(rss_gs / (n - 1))
        residual_sd_bias = math.sqrt(rss_bias / (n - 1))
        weight = _akaike_weight(rss_gs, rss_bias, n)
        if gs.sample_sd is not None and gs.sample_sd > 0.0:
            needed = samples_for_t_test(
                detect_relative_gs_error * assumed, gs.sample_sd, confidence=confidence
            )

    verdict: Verdict
    proposal: CwCorrection | None = None
    if n < 2:
        verdict = "insufficient"
        explanation = "one sample gives no interval: at least two are needed"
    elif gs.contains(assumed) and bias.contains(0.0):
        verdict = "consistent"
        explanation = (
            f"the lab Cw agrees with the recorded Cw: the assumed Gs {assumed:g} is inside "
            f"the {confidence * 100:g} % interval of the estimate "
            f"[{gs.low:.3f}, {gs.high:.3f}] and a gauge bias of 0 inside "
            f"[{bias.low:.1f}, {bias.high:.1f}] kg/m3"
        )
    else:
        verdict, explanation = _which(gs, bias, direct, weight, decision_weight, confidence)
        # A gauge the lab's density shows biased is corrected by that direct comparison.
        shown = direct is not None and not direct.contains(0.0)
        gauge = direct if verdict == "density_gauge" and direct is not None and shown else bias
        proposal = _proposal(verdict, gs, gauge, weight, explanation)
    return GsReconciliation(
        samples=estimates,
        assumed_tailings_sg=assumed,
        tailings_sg=gs,
        density_bias=bias,
        tailings_sg_error_pct=(gs.value - assumed) / assumed * 100.0,
        mean_solids_error=mean_error,
        residual_sd_gs=residual_sd_gs,
        residual_sd_bias=residual_sd_bias,
        gs_weight=weight,
        direct_density_bias=direct,
        verdict=verdict,
        explanation=explanation,
        proposal=proposal,
        samples_needed=needed,
        detect_relative_gs_error=detect_relative_gs_error,
    )


def _which(
    gs: Estimate,
    bias: Estimate,
    direct: Estimate | None,
    weight: float | None,
    decision_weight: float,
    confidence: float,
) -> tuple[Verdict, str]:
    pct = f"{confidence * 100:g} %"
    if direct is not None and direct.low is not None and direct.high is not None:
        zero_in = direct.contains(0.0)
        bias_in = direct.contains(bias.value)
        interval = f"[{direct.low:.1f}, {direct.high:.1f}] kg/m3"
        if zero_in and not bias_in:
            return "tailings_gs", (
                f"the gauge agrees with the lab's density (gauge - lab {pct} interval "
                f"{interval} holds 0, not the {bias.value:.1f} kg/m3 a gauge bias needs): the "
                f"tailings Gs is {gs.value:.3f}"
            )
        if bias_in and not zero_in:
            return "density_gauge", (
                f"the gauge reads {direct.value:+.1f} kg/m3 against the lab's density "
                f"({pct} interval {interval}, holding the {bias.value:.1f} kg/m3 the Cw "
                "needs): the density gauge is biased"
            )
        if not zero_in:
            return "density_gauge", (
                f"the gauge reads {direct.value:+.1f} kg/m3 against the lab's density "
                f"({pct} interval {interval}), but the Cw needs {bias.value:.1f} kg/m3: "
                "the gauge is biased and the Gs may be off as well; correct the gauge by "
                "the lab's density and reconcile the Gs on the next samples"
            )
    assert weight is not None  # n >= 2 here
    if weight >= decision_weight:
        return "tailings_gs", (
            f"a Gs of {gs.value:.3f} explains the lab Cw across the sampled densities better "
            f"than a gauge bias (Akaike weight {weight:.2f})"
        )
    if weight <= 1.0 - decision_weight:
        return "density_gauge", (
            f"a gauge bias of {bias.value:+.1f} kg/m3 explains the lab Cw across the sampled "
            f"densities better than a Gs error (Akaike weight {1.0 - weight:.2f})"
        )
    return "undetermined", (
        f"the lab Cw departs from the recorded Cw, but a Gs of {gs.value:.3f} and a gauge "
        f"bias of {bias.value:+.1f} kg/m3 explain it about equally (Akaike weight of the Gs "
        f"{weight:.2f}); both give nearly the same Cw in the sampled density range. To name "
        "it: measure the fresh paste's density in the lab, check the gauge, or test the "
        "tailings Gs (pycnometer, ASTM D854)"
    )


def _proposal(
    verdict: Verdict, gs: Estimate, bias: Estimate, weight: float | None, basis: str
) -> CwCorrection:
    kind: CorrectionKind
    if verdict == "tailings_gs":
        kind = "tailings_gs"
    elif verdict == "density_gauge":
        kind = "density_gauge"
    else:
        kind = "tailings_gs" if (weight or 0.5) >= 0.5 else "density_gauge"
    determined = verdict != "undetermined"
    if kind == "tailings_gs":
        return CwCorrection(
            "tailings_gs",
            tailings_sg=gs.value,
            low=gs.low,
            high=gs.high,
            determined=determined,
            basis=basis,
        )
    return CwCorrection(
        "density_gauge",
        density_bias_kg_m3=bias.value,
        low=bias.low,
        high=bias.high,
        determined=determined,
        basis=basis,
    )


# --- how many samples -------------------------------------------------------------------


def samples_for_t_test(
    effect: float,
    sd: float,
    *,
    confidence: float = 0.95,
    power: float = 0.9,
    max_samples: int = 100_000,
) -> int:
    """Smallest n >= 2 whose two-sided one-sample t test at ``confidence`` detects a mean
    shift ``effect`` with probability ``power`` when one sample has spread ``sd``.

    Power from the noncentral t distribution, delta = effect sqrt(n)/sd:
    1 - T'_{n-1,delta}(t_c) + T'_{n-1,delta}(-t_c), t_c = t_{(1+c)/2, n-1} (Montgomery, D.C.
    (2017), *Design and Analysis of Experiments*, 9th ed., Wiley, ch. 2). ``max_samples``
    + 1 is returned when even ``max_samples`` is not enough.
    """
    _check_probability("confidence", confidence)
    _check_probability("power", power)
    if not (math.isfinite(effect) and effect != 0.0):
        raise InvalidInput("effect", f"the effect to detect must be finite and not 0 ({effect!r})")
    if not (math.isfinite(sd) and sd > 0.0):
        raise InvalidInput("sd", f"the per-sample spread must be finite and above 0 ({sd!r})")

    def achieved(n: int) -> float:
        dof = n - 1
        critical = float(stdtrit(dof, 0.5 + confidence / 2.0))
        delta = abs(effect) * math.sqrt(n) / sd
        value = float(1.0 - nctdtr(dof, delta, critical) + nctdtr(dof, delta, -critical))
        if math.isnan(value):  # far in the tail of a large noncentrality
            return 1.0 if delta > critical else 0.0
        return value

    # Double n until the power is reached, then bisect (power rises with n).
    low, high = 1, 2
    while achieved(high) < power:
        if high >= max_samples:
            return max_samples + 1
        low, high = high, min(2 * high, max_samples)
    while high - low > 1:
        middle = (low + high) // 2
        if achieved(middle) >= power:
            high = middle
        else:
            low = middle
    return high


def gs_estimate_sd(
    *,
    gauge_density_kg_m3: float,
    binder_ratio: float,
    binder_sg: float,
    tailings_sg: float,
    lab_solids_sd: float,
    gauge_density_sd_kg_m3: float = 0.0,
) -> float:
    """Spread of one sample's tailings Gs estimate, by the delta method (first-order
    propagation: JCGM 100:2008, *Guide to the expression of uncertainty in measurement*,
    §5.1.2) through relations (a) and (b):

    dGs_s/dCw = rho (rho_w - rho)/D^2, dGs_s/drho = Cw rho_w/D^2 with
    D = rho_w - rho (1 - Cw), and dGs_t/dGs_s = Gs_t^2 (1 + Bw)/Gs_s^2; evaluated at the
    paste the gauge reads with Gs_t = ``tailings_sg``.
    """
    sample = PasteSample("design", 0.5, gauge_density_kg_m3, binder_ratio, binder_sg, tailings_sg)
    _check_sample(0, sample)
    cw = sample.recorded_solids_fraction
    if not (lab_solids_sd > 0.0 and math.isfinite(lab_solids_sd)):
        raise InvalidInput("lab_solids_sd", f"lab_solids_sd must be above 0 ({lab_solids_sd!r})")
    if not (gauge_density_sd_kg_m3 >= 0.0 and math.isfinite(gauge_density_sd_kg_m3)):
        raise InvalidInput(
            "gauge_density_sd_kg_m3",
            f"gauge_density_sd_kg_m3 must be at least 0 ({gauge_density_sd_kg_m3!r})",
        )
    rho = gauge_density_kg_m3
    denominator = RHO_W_KG_M3 - rho * (1.0 - cw)
    gs_s = sample.assumed_solids_sg
    d_solids_d_cw = rho * (RHO_W_KG_M3 - rho) / denominator**2
    d_solids_d_rho = cw * RHO_W_KG_M3 / denominator**2
    d_tailings_d_solids = tailings_sg**2 * (1.0 + binder_ratio) / gs_s**2
    return d_tailings_d_solids * math.hypot(
        d_solids_d_cw * lab_solids_sd, d_solids_d_rho * gauge_density_sd_kg_m3
    )


def samples_to_name_gs_error(
    relative_gs_error: float,
    *,
    lab_solids_sd: float,
    gauge_density_kg_m3: float,
    binder_ratio: float,
    binder_sg: float,
    tailings_sg: float,
    gauge_density_sd_kg_m3: float = 0.0,
    confidence: float = 0.95,
    power: float = 0.9,
) -> int:
    """How many samples show a Gs error of ``relative_gs_error`` (0.03 = 3 %): the t
    interval of the pooled Gs excludes the assumed value with probability ``power``.

    The per-sample spread is :func:`gs_estimate_sd` (lab Cw spread ``lab_solids_sd``,
    0-1, and the gauge noise over the sampling, ``gauge_density_sd_kg_m3``); the count is
    :func:`samples_for_t_test`.
    """
    if not 0.0 < abs(relative_gs_error) < 1.0:
        raise InvalidInput(
            "relative_gs_error",
            f"relative_gs_error must be between 0 and 1 ({relative_gs_error!r})",
        )
    sd = gs_estimate_sd(
        gauge_density_kg_m3=gauge_density_kg_m3,
        binder_ratio=binder_ratio,
        binder_sg=binder_sg,
        tailings_sg=tailings_sg,
        lab_solids_sd=lab_solids_sd,
        gauge_density_sd_kg_m3=gauge_density_sd_kg_m3,
    )
    return samples_for_t_test(
        relative_gs_error * tailings_sg, sd, confidence=confidence, power=power
    )


# --- reconciled Cw of past records ------------------------------------------------------


Basis = Literal["reconciled", "as_controlled"]


def reconciled_solids_fraction(
    gauge_density_kg_m3: float,
    *,
    binder_ratio: float,
    binder_sg: float,
    tailings_sg: float,
    correction: CwCorrection,
) -> float:
    """The Cw of a record recomputed with a correction: the slurry relation (Wills & Finch
    2016, ch. 3) at the gauge density with Gs_s of the corrected tailings Gs
    (``tailings_gs``), or at the gauge density minus the bias with the assumed Gs_s
    (``density_gauge``)."""
    if correction.kind == "tailings_gs":
        assert correction.tailings_sg is not None  # checked by CwCorrection
        return slurry_solids_fraction(
            gauge_density_kg_m3, solids_sg(correction.tailings_sg, binder_ratio, binder_sg)
        )
    assert correction.density_bias_kg_m3 is not None
    return slurry_solids_fraction(
        gauge_density_kg_m3 - correction.density_bias_kg_m3,
        solids_sg(tailings_sg, binder_ratio, binder_sg),
    )


@dataclass(frozen=True)
class ReconciledSolids:
    """A record's Cw as controlled (assumed Gs, raw gauge) and reconciled (None without an
    approved correction); ``best`` is the reconciled one when there is one, and ``basis``
    says which."""

    as_controlled: float
    reconciled: float | None
    basis: Basis
    correction_kind: CorrectionKind | None

    @property
    def best(self) -> float:
        return self.reconciled if self.reconciled is not None else self.as_controlled


def reconcile_record(
    gauge_density_kg_m3: float,
    *,
    binder_ratio: float,
    binder_sg: float,
    tailings_sg: float,
    correction: CwCorrection | None,
) -> ReconciledSolids:
    """A record's reconciled Cw beside its as-controlled one (see
    :func:`reconciled_solids_fraction`)."""
    as_controlled = slurry_solids_fraction(
        gauge_density_kg_m3, solids_sg(tailings_sg, binder_ratio, binder_sg)
    )
    if correction is None:
        return ReconciledSolids(as_controlled, None, "as_controlled", None)
    reconciled = reconciled_solids_fraction(
        gauge_density_kg_m3,
        binder_ratio=binder_ratio,
        binder_sg=binder_sg,
        tailings_sg=tailings_sg,
        correction=correction,
    )
    return ReconciledSolids(as_controlled, reconciled, "reconciled", correction.kind)


@dataclass(frozen=True)
class DensityInterval:
    """A slice of a pour's history: the paste volume placed and the gauge density over it
    (NaN or None when the gauge was not usable)."""

    volume_m3: float
    gauge_density_kg_m3: float | None


@dataclass(frozen=True)
class OffSpecVolume:
    """Off-spec volume of a pour judged on the best Cw estimate.

    ``volume_m3`` is judged on ``basis`` (``reconciled`` when a correction is given, else
    ``as_controlled``); both figures are kept. ``unknown_volume_m3`` had no usable
    density."""

    volume_m3: float
    basis: Basis
    as_controlled_volume_m3: float
    reconciled_volume_m3: float | None
    unknown_volume_m3: float
    correction_kind: CorrectionKind | None


def off_spec_volume(
    intervals: Sequence[DensityInterval],
    *,
    target_solids_fraction: float,
    band_fraction: float,
    binder_ratio: float,
    binder_sg: float,
    tailings_sg: float,
    correction: CwCorrection | None = None,
) -> OffSpecVolume:
    """Volume whose Cw lies outside ``target +- band_fraction`` (absolute, as the
    ``solids_off_spec`` alarm), as controlled and, with a correction, reconciled; the
    reconciled figure is the one that counts when there is one."""
    if not 0.0 < target_solids_fraction < 1.0:
        raise InvalidInput(
            "target_solids_fraction", f"Cw must be between 0 and 1 ({target_solids_fraction!r})"
        )
    if not 0.0 < band_fraction < 1.0:
        raise InvalidInput("band_fraction", f"band must be between 0 and 1 ({band_fraction!r})")
    as_controlled = reconciled = unknown = 0.0
    for i, interval in enumerate(intervals):
        if not (math.isfinite(interval.volume_m3) and interval.volume_m3 >= 0.0):
            raise InvalidInput(
                f"intervals[{i}].volume_m3",
                f"volume must be finite and >= 0 ({interval.volume_m3!r})",
            )
        density = interval.gauge_density_kg_m3
        if density is None or not math.isfinite(density):
            unknown += interval.volume_m3
            continue
        record = reconcile_record(
            density,
            binder_ratio=binder_ratio,
            binder_sg=binder_sg,
            tailings_sg=tailings_sg,
            correction=correction,
        )
        if abs(record.as_controlled - target_solids_fraction) > band_fraction:
            as_controlled += interval.volume_m3
        if record.reconciled is not None and (
            abs(record.reconciled - target_solids_fraction) > band_fraction
        ):
            reconciled += interval.volume_m3
    if correction is None:
        return OffSpecVolume(as_controlled, "as_controlled", as_controlled, None, unknown, None)
    return OffSpecVolume(
        reconciled, "reconciled", as_controlled, reconciled, unknown, correction.kind
    )
