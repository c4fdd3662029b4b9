"""Do the plant's gauges agree? The balance across the mixer, by weighted least squares.

The plant measures the mass flow twice (feed flow x
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
from typing import Any

import numpy as np

from service.core.chi_square import chdtrc, chdtri
from service.core.control.massbalance import RHO_W_KG_M3
from service.core.lazy_scipy import lsq_linear
from service.core.reconcile import _GS_MAX, _GS_MIN_EXCLUSIVE, FloatArray, _check_probability
from service.errors import InvalidInput

FEED_FLOW = "tailings_flow_pv"
FEED_DENSITY = "tailings_density_pv"
WATER_FLOW = "water_flow_pv"
PASTE_FLOW = "paste_flow_pv"
PASTE_DENSITY = "paste_density_pv"
MASS_BALANCE = "mass_t_h"
VOLUME_BALANCE = "volume_m3_h"


def binder_rate_tag(component: str) -> str:
    """Logical tag of a binder feeder's rate (docs/INTEGRATION.md): ``cement`` ->
    ``cement_rate_pv``."""
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
