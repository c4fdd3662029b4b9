"""Reconciliation: what the lab and the plant's redundant gauges say about the gauges.

Two questions, both answered with values in, values out (time is a parameter):

**1. Is the tailings Gs (or the paste density gauge) wrong?** The plant computes the
paste's Cw from its density gauge and an *assumed* tailings Gs; the lab measures the
sample's Cw from its masses (:mod:`service.core.lab`). With the slurry relation of
DOMAIN.md "Mass-volume relations" (after Belem, T. & Benzaazoua, M. (2008), "Design and
application of underground mine paste backfill technology", Geotech. Geol. Eng.
26:147-174), for a saturated paste of density rho and solids of density rho_s:

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

**2. Do the plant's gauges agree?** The plant measures the mass flow twice (feed flow x
density + binder + water in; paste flow x density out) and, because a saturated paste's
volumes add, the volume flow twice too (feed + binder/Gs_b + water in; paste out). Two
constraints, f(x) = 0, on the measured x with covariance Sigma = diag(sd^2):

    mass   [t/h]:  Qf rho_f/1000 + sum B_k + W rho_w/1000 - Qp rho_p/1000 - dM/dt = 0
    volume [m3/h]: Qf + sum B_k/Gs_k + W - Qp - dV/dt = 0

Data reconciliation by weighted least squares (Kuehn, D.R. & Davidson, H. (1961),
"Computer control II: mathematics of control", Chem. Eng. Prog. 57(6):44-47; Crowe,
C.M., Garcia Campos, Y.A. & Hrymak, A. (1983), "Reconciliation of process flow rates by
matrix projection. Part I: linear case", AIChE J. 29(6):881-888; Narasimhan, S. &
Jordache, C. (2000), *Data Reconciliation and Gross Error Detection*, Gulf, ch. 3 and 5
for the bilinear case by successive linearisation): with A = df/dx at the measurements,
r = f(x) and V = A Sigma A',

    x_hat = x - Sigma A' V^-1 r,
    global test gamma = r' V^-1 r ~ chi^2_k (Reilly, P.M. & Carpani, R.E. (1963),
    "Application of statistical theory of adjustment to material balances", 13th
    Canadian Chemical Engineering Conference, Montreal; N&J ch. 7),
    measurement test z_j = |a_j' V^-1 r| / sqrt(a_j' V^-1 a_j) (Mah, R.S.H. & Tamhane,
    A.C. (1982), "Detection of gross errors in process data", AIChE J. 28(5):828-830),

where a_j is column j of A; z_j is also the generalised likelihood ratio statistic of a
bias in gauge j (Narasimhan, S. & Mah, R.S.H. (1987), "Generalized likelihood ratio
method for gross error identification", AIChE J. 33(9):1514-1521), whose estimate is
b_j = a_j' V^-1 r / a_j' V^-1 a_j. A density gauge enters only the mass balance, a flow
meter both, so the pair of balances tells a density error from a flow error; the feed
and the paste density gauges have parallel signatures (both only in the mass balance),
so no balance can tell one from the other: the ranking between them is a plausibility
rule (the smaller error relative to the gauge's own stated uncertainty) and both are
named.

Persistence: one snapshot proves little, so the residual vector is smoothed by an
exponentially weighted moving average, R_t = (1 - l) R_{t-1} + l r_t, l = 1 - e^(-dt/tau)
(Roberts, S.W. (1959), "Control chart tests based on geometric moving averages",
Technometrics 1(3):239-250; the multivariate form of Lowry, C.A., Woodall, W.H., Champ,
C.W. & Rigdon, S.E. (1992), "A multivariate exponentially weighted moving average
control chart", Technometrics 34(1):46-53; Montgomery, D.C. (2019), *Introduction to
Statistical Quality Control*, 8th ed., Wiley, ch. 9 and 11, with Page's CUSUM (Page,
E.S. (1954), "Continuous inspection schemes", Biometrika 41(1/2):100-115) as the
alternative). Its covariance is carried exactly, P_t = (1 - l)^2 P_{t-1} + l^2 V_t (for
a gauge whose noise is first-order correlated with time constant tau_j, its share of V
is inflated by (1 + phi q)/(1 - phi q), q = 1 - l, phi = e^(-dt/tau_j): the variance of
an EWMA of an AR(1) series, the sum of two geometric series; cf. Lu, C.-W. & Reynolds,
M.R. (1999), "EWMA control charts for monitoring the mean of autocorrelated processes",
J. Quality Technology 31(2):166-188). Under clean noise D_t = R_t' P_t^-1 R_t is
chi^2_k at every step, so with the threshold h = chi^2_k quantile at
1 - alpha dt/T the probability of any false alarm within a horizon T of T/dt steps is at
most alpha (Bonferroni's union bound, which holds whatever the dependence between steps;
the strong autocorrelation of D makes the true rate far lower). The defaults (alpha
0.001, T 8 h, dt 1 s) give h = 34.4 for the two balances. The bound rests on the stated
sd and correlation times being right: noise larger or slower than stated is read as a
disagreement. Calibration
errors a gauge may carry within its specification (``tolerance``) are not alarms: the
alarm statistic is the distance from R_t to the nearest residual those errors can make,
min_{|t_j| <= tol_j} (R_t - A t)' P_t^-1 (R_t - A t) (a bounded least-squares problem),
which keeps the same false-alarm bound for any within-tolerance offsets. The alarm
clears with hysteresis, below the chi^2_k quantile at 1 - ``clear_probability``, and
only once the average has run a time constant since it last restarted (after a gap, a
fresh average knows too little to clear). The size of each gauge's bias is estimated
from the mean residual since that distance beyond the tolerances last left its normal
band (as a CUSUM estimates a new process mean, Montgomery 2019, ch. 9),
so it is right as soon as the alarm rises, where the EWMA still lags.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from service.core.chi_square import chdtrc, chdtri
from service.core.control.massbalance import RHO_W_KG_M3, slurry_solids_fraction
from service.core.lazy_scipy import lsq_linear, nctdtr, stdtrit
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
    """Gs_s = (1 + Bw) / (1/Gs_t + Bw/Gs_b) (DOMAIN.md, Belem & Benzaazoua convention)."""
    return (1.0 + binder_ratio) / (1.0 / tailings_sg + binder_ratio / binder_sg)


def solids_sg_from_density(solids_fraction: float, density_kg_m3: float) -> float:
    """Gs_s = Cw rho / (rho_w - rho (1 - Cw)): the slurry relation solved for the solids.

    Relation (a) of the module docstring (DOMAIN.md "Mass-volume relations"). NaN when
    rho (1 - Cw) >= rho_w (the sample's water alone would fill the volume: no solids
    density explains that Cw at that density).
    """
    denominator = RHO_W_KG_M3 - density_kg_m3 * (1.0 - solids_fraction)
    if denominator <= 0.0:
        return math.nan
    return solids_fraction * density_kg_m3 / denominator


def tailings_sg_from_solids_sg(solids_sg_: float, binder_ratio: float, binder_sg: float) -> float:
    """Gs_t = 1 / ((1 + Bw)/Gs_s - Bw/Gs_b), relation (b) (the blended solids Gs of
    DOMAIN.md inverted). NaN when the solids are too light for the binder they hold."""
    inverse = (1.0 + binder_ratio) / solids_sg_ - binder_ratio / binder_sg
    if not inverse > 0.0:
        return math.nan
    return 1.0 / inverse


def saturated_density_kg_m3(solids_fraction: float, solids_sg_: float) -> float:
    """rho = rho_w / (Cw/Gs_s + 1 - Cw), relation (c) (DOMAIN.md, saturated paste)."""
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
        """The Cw the plant recorded: the slurry relation at the gauge density and the
        assumed Gs_s (DOMAIN.md)."""
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
    """The Cw of a record recomputed with a correction: the slurry relation (DOMAIN.md)
    at the gauge density with Gs_s of the corrected tailings Gs (``tailings_gs``), or at
    the gauge density minus the bias with the assumed Gs_s (``density_gauge``)."""
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


# =========================================================================================
# 2. Redundant mass and volume flows: weighted least squares, tests, persistence
# =========================================================================================

FEED_FLOW = "tailings_flow_pv"
FEED_DENSITY = "tailings_density_pv"
WATER_FLOW = "water_flow_pv"
PASTE_FLOW = "paste_flow_pv"
PASTE_DENSITY = "paste_density_pv"
MASS_BALANCE = "mass_t_h"
VOLUME_BALANCE = "volume_m3_h"


def binder_rate_tag(component: str) -> str:
    """Logical tag of a binder feeder's rate (CONTRACT.md): ``cement`` -> ``cement_rate_pv``."""
    return f"{component}_rate_pv"


@dataclass(frozen=True)
class Reading:
    """One gauge reading with what is known of its error, in the reading's units.

    ``sd``: the random error of one reading (repeatability), > 0. ``tolerance``: the
    systematic error the gauge may carry within its specification (calibration
    accuracy); an offset within it is not an alarm. ``correlation_time_s``: the time
    constant of the noise when it is filtered (first-order), 0 for white noise.
    """

    value: float
    sd: float
    tolerance: float = 0.0
    correlation_time_s: float = 0.0


@dataclass(frozen=True)
class FlowMeasurements:
    """The plant's redundant flow measurements of one cycle.

    Feed (tailings slurry or cake) ``feed_flow_m3_h`` and ``feed_density_kg_m3``; binder
    feeder rates ``binder_t_h`` by component with the components' ``binder_sg``;
    dilution water ``water_flow_m3_h``; paste ``paste_flow_m3_h`` and
    ``paste_density_kg_m3``. ``holdup_mass_change_t_h`` / ``holdup_volume_change_m3_h``
    are the rates of change of the mixer's content (from its level or load cells; 0 at
    steady state).
    """

    feed_flow_m3_h: Reading
    feed_density_kg_m3: Reading
    water_flow_m3_h: Reading
    paste_flow_m3_h: Reading
    paste_density_kg_m3: Reading
    binder_t_h: Mapping[str, Reading] = field(default_factory=dict)
    binder_sg: Mapping[str, float] = field(default_factory=dict)
    holdup_mass_change_t_h: float = 0.0
    holdup_volume_change_m3_h: float = 0.0


@dataclass(frozen=True, eq=False)
class FlowReconciliation:
    """One cycle's reconciliation (see the module docstring, part 2).

    Arrays are aligned with ``names`` (logical tags) and ``constraints`` (``mass_t_h``,
    ``volume_m3_h``). ``residuals`` r = in - out - accumulation of each balance at the
    measurements; ``residual_covariance`` V = A Sigma A'; ``global_statistic`` gamma =
    r'V^-1 r with ``degrees_of_freedom`` k and ``p_value`` P(chi^2_k > gamma);
    ``measurement_statistics`` z_j; ``adjusted`` the reconciled values.
    """

    names: tuple[str, ...]
    constraints: tuple[str, ...]
    measured: FloatArray
    adjusted: FloatArray
    sd: FloatArray
    tolerance: FloatArray
    correlation_time_s: FloatArray
    jacobian: FloatArray
    residuals: FloatArray
    residual_covariance: FloatArray
    global_statistic: float
    degrees_of_freedom: int
    p_value: float
    measurement_statistics: FloatArray
    iterations: int

    @property
    def residual_mass_t_h(self) -> float:
        return float(self.residuals[0])

    @property
    def residual_volume_m3_h(self) -> float | None:
        if VOLUME_BALANCE not in self.constraints:
            return None
        return float(self.residuals[self.constraints.index(VOLUME_BALANCE)])

    @property
    def normalised_residuals(self) -> tuple[float, ...]:
        """r_i / sqrt(V_ii): each balance's residual in units of its noise."""
        return tuple(
            float(r / math.sqrt(v))
            for r, v in zip(self.residuals, np.diag(self.residual_covariance), strict=True)
        )

    def global_test_failed(self, significance: float = 0.05) -> bool:
        """The global test at ``significance``: P(chi^2_k > gamma) below it."""
        return self.p_value < significance

    @property
    def suspect(self) -> str:
        """The gauge with the largest measurement-test statistic this cycle."""
        return self.names[int(np.argmax(self.measurement_statistics))]

    def adjustments(self) -> dict[str, float]:
        """Measured minus reconciled, per gauge."""
        return {
            name: float(m - a)
            for name, m, a in zip(self.names, self.measured, self.adjusted, strict=True)
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "constraints": list(self.constraints),
            "residuals": [float(v) for v in self.residuals],
            "normalised_residuals": list(self.normalised_residuals),
            "global_statistic": self.global_statistic,
            "degrees_of_freedom": self.degrees_of_freedom,
            "p_value": self.p_value,
            "measured": dict(zip(self.names, (float(v) for v in self.measured), strict=True)),
            "adjusted": dict(zip(self.names, (float(v) for v in self.adjusted), strict=True)),
            "measurement_statistics": dict(
                zip(self.names, (float(v) for v in self.measurement_statistics), strict=True)
            ),
        }


def _readings(m: FlowMeasurements) -> tuple[list[str], FloatArray, list[float]]:
    """Names, the (n, 4) table [value, sd, tolerance, correlation_time_s] and the binder
    Gs list, in the vector order [Qf, rho_f, B_1..B_k, W, Qp, rho_p]; InvalidInput
    names the first bad entry."""
    names = [FEED_FLOW, FEED_DENSITY]
    readings = [m.feed_flow_m3_h, m.feed_density_kg_m3]
    sgs: list[float] = []
    for component in sorted(m.binder_t_h):
        names.append(binder_rate_tag(component))
        readings.append(m.binder_t_h[component])
        if component not in m.binder_sg:
            raise InvalidInput(f"binder_sg.{component}", f"no specific gravity for {component!r}")
        sg = m.binder_sg[component]
        if not _GS_MIN_EXCLUSIVE < sg <= _GS_MAX:
            raise InvalidInput(
                f"binder_sg.{component}", f"binder Gs must be above 1 and at most 10 ({sg!r})"
            )
        sgs.append(sg)
    names += [WATER_FLOW, PASTE_FLOW, PASTE_DENSITY]
    readings += [m.water_flow_m3_h, m.paste_flow_m3_h, m.paste_density_kg_m3]
    table = np.array(
        [(r.value, r.sd, r.tolerance, r.correlation_time_s) for r in readings], dtype=np.float64
    )
    holdup = (m.holdup_mass_change_t_h, m.holdup_volume_change_m3_h)
    if not (
        np.isfinite(table).all()
        and (table[:, 1] > 0.0).all()
        and (table[:, 2:] >= 0.0).all()
        and math.isfinite(holdup[0])
        and math.isfinite(holdup[1])
    ):
        _raise_bad_reading(names, readings, m)
    return names, table, sgs


def _raise_bad_reading(
    names: Sequence[str], readings: Sequence[Reading], m: FlowMeasurements
) -> None:
    for name, reading in zip(names, readings, strict=True):
        for part in ("value", "sd", "tolerance", "correlation_time_s"):
            value = getattr(reading, part)
            if not math.isfinite(value):
                raise InvalidInput(f"{name}.{part}", f"{name} {part} must be finite ({value!r})")
        if not reading.sd > 0.0:
            raise InvalidInput(f"{name}.sd", f"{name} sd must be above 0 ({reading.sd!r})")
        if reading.tolerance < 0.0:
            raise InvalidInput(f"{name}.tolerance", f"{name} tolerance must be >= 0")
        if reading.correlation_time_s < 0.0:
            raise InvalidInput(
                f"{name}.correlation_time_s", f"{name} correlation time must be >= 0"
            )
    for name in ("holdup_mass_change_t_h", "holdup_volume_change_m3_h"):
        if not math.isfinite(getattr(m, name)):
            raise InvalidInput(name, f"{name} must be finite")


def _balances(
    x: FloatArray, n_binders: int, inverse_sg: FloatArray, m: FlowMeasurements, volume: bool
) -> tuple[FloatArray, FloatArray]:
    """f(x) and its Jacobian A = df/dx for the vector order of :func:`_readings`."""
    qf, rho_f = x[0], x[1]
    binders = x[2 : 2 + n_binders]
    w, qp, rho_p = x[2 + n_binders], x[3 + n_binders], x[4 + n_binders]
    rho_w_t_m3 = RHO_W_KG_M3 / 1000.0
    n = x.shape[0]
    k = 2 if volume else 1
    f = np.empty(k)
    a = np.zeros((k, n))
    f[0] = (
        qf * rho_f / 1000.0
        + float(binders.sum())
        + w * rho_w_t_m3
        - qp * rho_p / 1000.0
        - m.holdup_mass_change_t_h
    )
    a[0, 0] = rho_f / 1000.0
    a[0, 1] = qf / 1000.0
    a[0, 2 : 2 + n_binders] = 1.0
    a[0, 2 + n_binders] = rho_w_t_m3
    a[0, 3 + n_binders] = -rho_p / 1000.0
    a[0, 4 + n_binders] = -qp / 1000.0
    if volume:
        # t/h of binder over Gs_k rho_w [t/m3] is m3/h.
        f[1] = qf + float(binders @ inverse_sg) / rho_w_t_m3 + w - qp - m.holdup_volume_change_m3_h
        a[1, 0] = 1.0
        a[1, 2 : 2 + n_binders] = inverse_sg / rho_w_t_m3
        a[1, 2 + n_binders] = 1.0
        a[1, 3 + n_binders] = -1.0
    return f, a


def _inverse(matrix: FloatArray) -> FloatArray:
    """Inverse of a 1 x 1 or 2 x 2 symmetric positive definite matrix in closed form
    (the balances are at most two; numpy.linalg costs more than the algebra here)."""
    if matrix.shape == (1, 1):
        return np.array([[1.0 / matrix[0, 0]]])
    if matrix.shape == (2, 2):
        a, b, d = float(matrix[0, 0]), float(matrix[0, 1]), float(matrix[1, 1])
        determinant = a * d - b * b
        return np.array([[d, -b], [-b, a]]) / determinant
    return np.asarray(np.linalg.inv(matrix), dtype=np.float64)


def reconcile_flows(
    measurements: FlowMeasurements,
    *,
    use_volume_balance: bool = True,
    max_iterations: int = 4,
    tolerance_relative: float = 1.0e-7,
) -> FlowReconciliation:
    """Reconcile one cycle's flows by weighted least squares and test them.

    See the module docstring (part 2) for the balances, the estimate x_hat (iterated by
    successive linearisation of the bilinear mass balance, Narasimhan & Jordache 2000
    ch. 5, until the step is below ``tolerance_relative`` of the readings or after
    ``max_iterations``), the global test and the measurement test (both at the
    measurements' linearisation). ``use_volume_balance`` False drops the volume balance
    (e.g. a paste that carries air). InvalidInput names a non-finite reading, an sd not
    above 0 or a binder without its Gs.
    """
    if max_iterations < 1:
        raise InvalidInput(
            "max_iterations", f"max_iterations must be at least 1 ({max_iterations!r})"
        )
    names, table, sgs = _readings(measurements)
    n_binders = len(sgs)
    inverse_sg = 1.0 / np.asarray(sgs, dtype=np.float64)
    x = table[:, 0].copy()
    sd = table[:, 1].copy()
    variance = sd * sd
    f, a = _balances(x, n_binders, inverse_sg, measurements, use_volume_balance)
    v = (a * variance) @ a.T
    v_inverse = _inverse(v)
    v_inverse_f = v_inverse @ f
    gamma = float(f @ v_inverse_f)
    k = f.shape[0]
    g = a.T @ v_inverse_f
    h = np.sum(a * (v_inverse @ a), axis=0)
    z = np.abs(g) / np.sqrt(np.where(h > 0.0, h, np.inf))

    # x_hat = x - Sigma A_k' (A_k Sigma A_k')^-1 (f(x_k) + A_k (x - x_k)), from x_0 = x.
    x_hat = x - variance * g
    iterations = 1
    scale = np.maximum(np.abs(x), 1.0)
    while iterations < max_iterations:
        f_k, a_k = _balances(x_hat, n_binders, inverse_sg, measurements, use_volume_balance)
        step = _inverse((a_k * variance) @ a_k.T) @ (f_k + a_k @ (x - x_hat))
        new = x - variance * (a_k.T @ step)
        iterations += 1
        done = bool(np.max(np.abs(new - x_hat) / scale) <= tolerance_relative)
        x_hat = new
        if done:
            break
    return FlowReconciliation(
        names=tuple(names),
        constraints=(MASS_BALANCE, VOLUME_BALANCE) if use_volume_balance else (MASS_BALANCE,),
        measured=x,
        adjusted=x_hat,
        sd=sd,
        tolerance=table[:, 2].copy(),
        correlation_time_s=table[:, 3].copy(),
        jacobian=a,
        residuals=f,
        residual_covariance=v,
        global_statistic=gamma,
        degrees_of_freedom=k,
        p_value=float(chdtrc(k, gamma)),
        measurement_statistics=z,
        iterations=iterations,
    )


# --- persistence: the "instruments disagree" alarm --------------------------------------


@dataclass(frozen=True)
class DisagreementConfig:
    """Settings of the persistence filter (see the module docstring, part 2).

    ``time_constant_s``: EWMA time constant tau. ``false_alarm_probability`` alpha over
    ``horizon_s`` T of cycles every ``sample_period_s`` set the alarm threshold
    h = chi^2_k quantile at 1 - alpha dt/T. The alarm clears below the quantile at
    1 - ``clear_probability``. A gap in the data longer than ``max_gap_s`` restarts the
    average. Gauges whose bias statistics are within the chi^2_1 quantile at
    1 - ``indistinguishable_probability`` of the best are named as indistinguishable.
    """

    time_constant_s: float = 120.0
    false_alarm_probability: float = 0.001
    horizon_s: float = 8.0 * 3600.0
    sample_period_s: float = 1.0
    clear_probability: float = 0.01
    max_gap_s: float = 30.0
    indistinguishable_probability: float = 0.05

    def __post_init__(self) -> None:
        for name in ("time_constant_s", "horizon_s", "sample_period_s", "max_gap_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise InvalidInput(name, f"{name} must be finite and above 0 ({value!r})")
        for name in (
            "false_alarm_probability",
            "clear_probability",
            "indistinguishable_probability",
        ):
            _check_probability(name, getattr(self, name))
        if self.sample_period_s > self.horizon_s:
            raise InvalidInput("sample_period_s", "sample_period_s must not exceed horizon_s")
        if self.clear_probability <= self.false_alarm_probability * self.sample_period_s / (
            self.horizon_s
        ):
            raise InvalidInput(
                "clear_probability", "the clear threshold must lie below the alarm threshold"
            )

    def threshold(self, degrees_of_freedom: int) -> float:
        """h: P(chi^2_k > h) = alpha dt / T (the union bound over T/dt cycles)."""
        tail = self.false_alarm_probability * self.sample_period_s / self.horizon_s
        return float(chdtri(degrees_of_freedom, tail))

    def clear_threshold(self, degrees_of_freedom: int) -> float:
        return float(chdtri(degrees_of_freedom, self.clear_probability))


@dataclass(frozen=True, eq=False)
class DisagreementState:
    """Memory of the filter: the EWMA of the residuals and its covariance, when they were
    last updated, and the alarm. Start with :meth:`initial`."""

    constraints: tuple[str, ...] = ()
    average: FloatArray | None = None
    covariance: FloatArray | None = None
    last_at: datetime | None = None
    alarm: bool = False
    alarm_since: datetime | None = None
    averaging_since: datetime | None = None
    samples: int = 0
    excursion_sum: FloatArray | None = None
    excursion_count: int = 0

    @classmethod
    def initial(cls) -> DisagreementState:
        return cls()


@dataclass(frozen=True)
class Suspect:
    """One gauge as the explanation of the persistent residual: its bias statistic
    (chi^2_1 under no bias), the bias it would carry (reading minus truth, the
    reading's units, and % of the reading) and that bias over its tolerance (or sd)."""

    name: str
    statistic: float
    bias: float
    bias_pct_of_reading: float | None
    bias_in_uncertainties: float


@dataclass(frozen=True)
class DisagreementStatus:
    """What the filter says this cycle.

    ``alarm`` is the "instruments disagree" condition (``raised`` / ``cleared`` on the
    transition). ``statistic`` D = R'P^-1 R of the averaged residuals ``average`` (one
    per balance in ``constraints``); ``statistic_beyond_tolerance`` the same distance
    beyond what within-tolerance offsets explain (None when not computed: D is below the
    clear threshold, so it does not matter); ``threshold`` / ``clear_threshold`` the
    limits. ``suspects`` ranks the gauges (best explanation first); ``most_likely`` is
    named, with ``indistinguishable`` the gauges the balances cannot tell from it.
    ``held``: no reconciliation this cycle (nothing updated).
    """

    alarm: bool
    raised: bool
    cleared: bool
    held: bool
    constraints: tuple[str, ...]
    average: tuple[float, ...]
    statistic: float
    statistic_beyond_tolerance: float | None
    threshold: float
    clear_threshold: float
    suspects: tuple[Suspect, ...]
    most_likely: str | None
    indistinguishable: tuple[str, ...]
    detail: str
    samples: int


def _status_without_data(
    state: DisagreementState, config: DisagreementConfig, held: bool
) -> DisagreementStatus:
    k = len(state.constraints) or 2
    statistic = 0.0
    if state.average is not None and state.covariance is not None:
        statistic = float(state.average @ _inverse(state.covariance) @ state.average)
    return DisagreementStatus(
        alarm=state.alarm,
        raised=False,
        cleared=False,
        held=held,
        constraints=state.constraints,
        average=tuple(float(v) for v in state.average) if state.average is not None else (),
        statistic=statistic,
        statistic_beyond_tolerance=None,
        threshold=config.threshold(k),
        clear_threshold=config.clear_threshold(k),
        suspects=(),
        most_likely=None,
        indistinguishable=(),
        detail="",
        samples=state.samples,
    )


def _distance_beyond_tolerance(
    average: FloatArray, p_inverse_root: FloatArray, a: FloatArray, tolerance: FloatArray
) -> float:
    """min over |t_j| <= tol_j of (R - A t)' P^-1 (R - A t), by bounded least squares
    (scipy.optimize.lsq_linear, BVLS: Stark, P.B. & Parker, R.L. (1995), "Bounded-variable
    least-squares: an algorithm and applications", Computational Statistics 10:129-141)."""
    used = tolerance > 0.0
    whitened = p_inverse_root @ average
    if not np.any(used):
        return float(whitened @ whitened)
    bound = tolerance[used]
    result = lsq_linear(
        p_inverse_root @ a[:, used], whitened, bounds=(-bound, bound), method="bvls"
    )
    residual = whitened - p_inverse_root @ a[:, used] @ result.x
    return float(residual @ residual)


def _suspects(
    rec: FlowReconciliation, average: FloatArray, p_inverse: FloatArray, shift: FloatArray
) -> list[Suspect]:
    """Each gauge as the sole cause: the GLR statistic (a_j'M R)^2 / a_j'M a_j on the
    EWMA R (M = P^-1) and the bias a_j'M s / a_j'M a_j of the mean shift ``shift``."""
    a = rec.jacobian
    g = a.T @ (p_inverse @ average)
    h = np.sum(a * (p_inverse @ a), axis=0)
    usable = h > 0.0
    safe_h = np.where(usable, h, 1.0)
    bias = (a.T @ (p_inverse @ shift)) / safe_h
    statistic = g * g / safe_h
    scale = np.where(rec.tolerance > 0.0, rec.tolerance, rec.sd)
    out = [
        Suspect(
            name=rec.names[j],
            statistic=float(statistic[j]),
            bias=float(bias[j]),
            bias_pct_of_reading=(
                float(bias[j] / rec.measured[j] * 100.0) if rec.measured[j] != 0.0 else None
            ),
            bias_in_uncertainties=float(abs(bias[j]) / scale[j]),
        )
        for j in np.flatnonzero(usable)
    ]
    out.sort(key=lambda s: -s.statistic)
    return out


def _describe(shift: FloatArray, most_likely: Suspect, others: Sequence[Suspect]) -> str:
    parts = [f"mass balance (in - out) {shift[0]:+.2f} t/h"]
    if len(shift) > 1:
        parts.append(f"volume {shift[1]:+.2f} m3/h")
    text = "instruments disagree: " + ", ".join(parts)

    def reads(s: Suspect) -> str:
        direction = "high" if s.bias > 0.0 else "low"
        pct = "" if s.bias_pct_of_reading is None else f" ({abs(s.bias_pct_of_reading):.1f} %)"
        return f"{s.name} reading {abs(s.bias):.3g}{pct} {direction}"

    text += f"; most likely {reads(most_likely)}"
    if others:
        text += "; the balances cannot tell it from " + ", ".join(reads(s) for s in others)
    return text


def update_disagreement(
    state: DisagreementState,
    reconciliation: FlowReconciliation | None,
    now: datetime,
    config: DisagreementConfig | None = None,
) -> tuple[DisagreementState, DisagreementStatus]:
    """Advance the persistence filter by one cycle at ``now``.

    ``reconciliation`` None (a gauge unusable, plant not at steady production) holds
    everything (the alarm keeps its state, as an unknown condition does in
    :func:`service.core.control.alarms.evaluate`). A first sample, a gap longer than
    ``max_gap_s`` or a change of the balances used restarts the average; a sample not
    after the last one is ignored. The alarm is raised when the averaged residuals lie
    beyond what the noise and the gauges' tolerances explain at the threshold, and
    cleared below the clear threshold; the gauges are ranked every cycle.
    """
    cfg = config or DisagreementConfig()
    if reconciliation is None:
        return state, _status_without_data(state, cfg, held=True)
    rec = reconciliation
    k = len(rec.constraints)
    dt = cfg.sample_period_s
    restart = (
        state.average is None
        or state.covariance is None
        or state.last_at is None
        or state.constraints != rec.constraints
    )
    if not restart:
        assert state.last_at is not None
        dt = (now - state.last_at).total_seconds()
        if dt <= 0.0:
            return state, _status_without_data(state, cfg, held=True)
        if dt > cfg.max_gap_s:
            restart = True
            dt = cfg.sample_period_s
    smoothing = -math.expm1(-dt / cfg.time_constant_s)
    keep = 1.0 - smoothing
    # Each gauge's share of V, inflated for first-order correlated noise (AR(1) EWMA).
    taus = rec.correlation_time_s
    if taus.any():
        phi = np.exp(-dt / np.where(taus > 0.0, taus, 1.0)) * (taus > 0.0)
        inflation = (1.0 + phi * keep) / (1.0 - phi * keep)
        v_eff = (rec.jacobian * (rec.sd * rec.sd * inflation)) @ rec.jacobian.T
    else:
        v_eff = rec.residual_covariance
    if restart:
        average = smoothing * rec.residuals
        covariance = smoothing * smoothing * v_eff
        samples = 1
    else:
        assert state.average is not None and state.covariance is not None
        average = keep * state.average + smoothing * rec.residuals
        covariance = keep * keep * state.covariance + smoothing * smoothing * v_eff
        samples = state.samples + 1

    p_inverse = _inverse(covariance)
    statistic = float(average @ p_inverse @ average)
    threshold = cfg.threshold(k)
    clear_threshold = cfg.clear_threshold(k)
    beyond: float | None = None
    if statistic >= clear_threshold:
        root = np.asarray(np.linalg.cholesky(p_inverse).T, dtype=np.float64)  # root' root = P^-1
        beyond = _distance_beyond_tolerance(average, root, rec.jacobian, rec.tolerance)
    averaging_since = now if restart or state.averaging_since is None else state.averaging_since
    # A restarted average (after a gap) knows too little to clear an alarm: the alarm
    # holds until the average has run a time constant.
    mature = (now - averaging_since).total_seconds() >= cfg.time_constant_s
    alarm = state.alarm
    raised = cleared = False
    below = beyond is None or beyond < clear_threshold
    if not alarm and beyond is not None and beyond > threshold:
        alarm = raised = True
    elif alarm and below and mature:
        alarm = False
        cleared = True

    # The shift since the residuals left their normal band (the distance beyond the
    # tolerances last below the clear threshold: in-tolerance offsets are the normal
    # band): the mean over that excursion estimates the size of a step at once,
    # where the EWMA still lags (cf. the CUSUM estimate of a new mean, Montgomery 2019,
    # ch. 9).
    if below or restart or state.excursion_sum is None:
        excursion_sum = np.zeros_like(average) if below else rec.residuals
        excursion_count = 0 if below else 1
    else:
        excursion_sum = state.excursion_sum + rec.residuals
        excursion_count = state.excursion_count + 1
    shift = excursion_sum / excursion_count if excursion_count else average
    suspects = _suspects(rec, average, p_inverse, shift)
    most_likely: Suspect | None = None
    indistinguishable: tuple[str, ...] = ()
    detail = ""
    if suspects:
        margin = float(chdtri(1, cfg.indistinguishable_probability))
        best = suspects[0].statistic
        tied = [s for s in suspects if s.statistic >= best - margin]
        most_likely = min(tied, key=lambda s: s.bias_in_uncertainties)
        indistinguishable = tuple(s.name for s in tied)
        if alarm:
            detail = _describe(shift, most_likely, [s for s in tied if s is not most_likely])
    new_state = DisagreementState(
        constraints=rec.constraints,
        average=average,
        covariance=covariance,
        last_at=now,
        alarm=alarm,
        alarm_since=(now if raised else state.alarm_since) if alarm else None,
        averaging_since=averaging_since,
        samples=samples,
        excursion_sum=excursion_sum,
        excursion_count=excursion_count,
    )
    status = DisagreementStatus(
        alarm=alarm,
        raised=raised,
        cleared=cleared,
        held=False,
        constraints=rec.constraints,
        average=tuple(float(v) for v in average),
        statistic=statistic,
        statistic_beyond_tolerance=beyond,
        threshold=threshold,
        clear_threshold=clear_threshold,
        suspects=tuple(suspects),
        most_likely=most_likely.name if most_likely is not None else None,
        indistinguishable=indistinguishable,
        detail=detail,
        samples=samples,
    )
    return new_state, status
