"""The rheology's root finder against scipy's brentq, which it follows step for step."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from scipy.optimize import brentq as scipy_brentq  # type: ignore[import-untyped]

from service.core.roots import brentq

CASES: list[tuple[Callable[[float], float], float, float]] = [
    (lambda x: x**3 - 2.0 * x - 5.0, 2.0, 3.0),
    (lambda x: math.cos(x) - x, 0.0, 1.0),
    (lambda x: math.exp(x) - 10.0, 0.0, 5.0),
    (lambda x: x / (1.0 - x) ** 3 - 0.3, 0.0, 1.0 - 1e-12),  # a plug's size (rheology)
    (lambda x: math.tanh(50.0 * (x - 0.3)), -1.0, 2.0),
    (lambda x: x - 1e-9, 0.0, 1.0),
    (lambda x: x**9 - 0.5, 0.0, 1.0),
]


@pytest.mark.parametrize("xtol", [2e-12, 1e-14, 1e-6, 1e-3])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_same_root_as_scipy(case: int, xtol: float) -> None:
    f, a, b = CASES[case]
    assert brentq(f, a, b, xtol=xtol) == scipy_brentq(f, a, b, xtol=xtol)


def test_the_same_root_as_scipy_for_random_cubics() -> None:
    rng = random.Random(7)
    compared = 0
    while compared < 500:
        c = [rng.uniform(-5.0, 5.0) for _ in range(4)]

        def f(x: float, c: list[float] = c) -> float:
            return c[0] + c[1] * x + c[2] * x * x + c[3] * x**3

        a, b = rng.uniform(-10.0, 0.0), rng.uniform(0.0, 10.0)
        if f(a) * f(b) >= 0.0:
            continue
        assert brentq(f, a, b) == scipy_brentq(f, a, b), c
        compared += 1


def test_an_end_that_is_a_root_is_returned() -> None:
    assert brentq(lambda x: x - 1.0, 1.0, 2.0) == 1.0
    assert brentq(lambda x: x - 2.0, 1.0, 2.0) == 2.0


def test_refusals_as_scipy() -> None:
    with pytest.raises(ValueError, match="different signs"):
        brentq(lambda x: x, 1.0, 2.0)
    with pytest.raises(ValueError, match="xtol"):
        brentq(lambda x: x, -1.0, 2.0, xtol=0.0)
    with pytest.raises(ValueError, match="rtol"):
        brentq(lambda x: x, -1.0, 2.0, rtol=1e-20)
    with pytest.raises(RuntimeError, match="converge"):
        brentq(lambda x: x**3 - 0.3, 0.0, 1.0, maxiter=2)
