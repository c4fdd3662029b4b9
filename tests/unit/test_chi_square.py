"""The control cycle's chi-square tail and quantile against scipy's (the reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import chdtrc as scipy_chdtrc  # type: ignore[import-untyped]
from scipy.special import chdtri as scipy_chdtri

from service.core.chi_square import chdtrc, chdtri

DOF = range(1, 41)


@pytest.mark.parametrize("k", DOF)
def test_the_upper_tail_matches_scipy(k: int) -> None:
    xs = np.concatenate([np.logspace(-10, 3.3, 300), [k - 1.0, k, k + 0.5]])
    for x in xs:
        ours, reference = chdtrc(k, float(x)), float(scipy_chdtrc(k, x))
        if reference > 1e-300:
            assert ours == pytest.approx(reference, rel=1e-12, abs=0.0), (k, x)
        else:
            assert ours <= 1e-290, (k, x)


@pytest.mark.parametrize("k", DOF)
def test_the_quantile_matches_scipy_in_both_tails(k: int) -> None:
    upper = np.logspace(-300, math.log10(0.5), 200)
    lower = 1.0 - np.logspace(-16, math.log10(0.5), 100)
    for p in np.concatenate([upper, lower]):
        ours, reference = chdtri(k, float(p)), float(scipy_chdtri(k, p))
        assert ours == pytest.approx(reference, rel=1e-11, abs=0.0), (k, p)


def test_the_balance_check_thresholds() -> None:
    # reconcile.py's module docstring: alpha 0.001 over 8 h of 1 s cycles, two balances.
    assert chdtri(2, 0.001 / 28_800) == pytest.approx(34.35, abs=0.01)
    assert chdtri(1, 0.05) == pytest.approx(3.841458820694124, rel=1e-13)


def test_the_edges() -> None:
    assert chdtrc(3, 0.0) == 1.0
    assert chdtrc(3, -1.0) == 1.0
    assert chdtrc(3, math.inf) == 0.0
    assert math.isnan(chdtrc(3, math.nan))
    assert chdtri(3, 1.0) == 0.0
    assert chdtri(3, 0.0) == math.inf
    assert math.isnan(chdtri(3, 1.5))
    assert math.isnan(chdtri(3, math.nan))
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="degrees of freedom"):
            chdtrc(bad, 1.0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="degrees of freedom"):
            chdtri(bad, 0.5)  # type: ignore[arg-type]


def test_the_quantile_inverts_the_tail() -> None:
    for k in (1, 2, 3, 7, 30):
        for p in (1e-12, 1e-6, 0.01, 0.3, 0.5, 0.9, 0.999999):
            assert chdtrc(k, chdtri(k, p)) == pytest.approx(p, rel=1e-11)
