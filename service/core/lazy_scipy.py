"""scipy's functions the core uses, loaded when one is first called.

scipy serves the rarely used parts of the service: the Student t, binomial and normal
quantiles of designs, predictions, compliance and the lab's reconciliation
(``scipy.special``, about 20 MB resident once loaded) and the bounded least squares
that sizes a disagreement of the plant's gauges (``scipy.optimize``, about 26 MB more).
Imported at the top of the modules that use them, they were loaded by every process at
start, pour or no pour. The modules take these names instead of scipy's own, so
importing the service loads no scipy; the first call loads the module it needs (about
0.2 s for ``scipy.special`` and 0.4 s for ``scipy.optimize`` on the 2-core development
machine, once per process). ``tests/unit/test_lean_imports.py`` keeps it so.

Each function passes its arguments through unchanged and returns what scipy returns
(scalars or arrays alike). What runs every control cycle or at start needs no scipy at
all: the chi-square tail and quantile of the balance check are
:mod:`service.core.chi_square`, the rheology's root finder :mod:`service.core.roots`.
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

SPECIAL = "scipy.special"
OPTIMIZE = "scipy.optimize"


@functools.cache
def _function(module: str, name: str) -> Callable[..., Any]:
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function


def loaded(module: str) -> None:
    """Import ``module`` now (e.g. in a worker thread, ahead of its first use on the
    event loop)."""
    importlib.import_module(module)


@functools.cache
def preload(module: str) -> threading.Thread:
    """Import ``module`` in a worker thread, once per process (later calls return the
    same thread): ahead of its first use on the event loop, where it would stall it."""

    def load() -> None:
        try:
            loaded(module)
        except Exception:  # a thread's boundary: the first use imports it again, and fails there
            log.exception("loading %s ahead of its use failed", module)

    thread = threading.Thread(target=load, name=f"load-{module}", daemon=True)
    thread.start()
    return thread


# --- scipy.special -------------------------------------------------------------------


def stdtr(degrees_of_freedom: Any, t: Any) -> Any:
    """``scipy.special.stdtr``: the Student t distribution function."""
    return _function(SPECIAL, "stdtr")(degrees_of_freedom, t)


def stdtrit(degrees_of_freedom: Any, probability: Any) -> Any:
    """``scipy.special.stdtrit``: the Student t quantile."""
    return _function(SPECIAL, "stdtrit")(degrees_of_freedom, probability)


def nctdtr(degrees_of_freedom: Any, noncentrality: Any, t: Any) -> Any:
    """``scipy.special.nctdtr``: the noncentral t distribution function."""
    return _function(SPECIAL, "nctdtr")(degrees_of_freedom, noncentrality, t)


def nctdtrit(degrees_of_freedom: Any, noncentrality: Any, probability: Any) -> Any:
    """``scipy.special.nctdtrit``: the noncentral t quantile."""
    return _function(SPECIAL, "nctdtrit")(degrees_of_freedom, noncentrality, probability)


def ndtri(probability: Any) -> Any:
    """``scipy.special.ndtri``: the standard normal quantile."""
    return _function(SPECIAL, "ndtri")(probability)


def bdtr(successes: Any, trials: Any, probability: Any) -> Any:
    """``scipy.special.bdtr``: the binomial distribution function."""
    return _function(SPECIAL, "bdtr")(successes, trials, probability)


def betainc(a: Any, b: Any, x: Any) -> Any:
    """``scipy.special.betainc``: the regularised incomplete beta function."""
    return _function(SPECIAL, "betainc")(a, b, x)


def betaincinv(a: Any, b: Any, y: Any) -> Any:
    """``scipy.special.betaincinv``: the inverse of the regularised incomplete beta."""
    return _function(SPECIAL, "betaincinv")(a, b, y)


# --- scipy.optimize ------------------------------------------------------------------


def lsq_linear(a: Any, b: Any, **options: Any) -> Any:
    """``scipy.optimize.lsq_linear``: linear least squares with bounds."""
    return _function(OPTIMIZE, "lsq_linear")(a, b, **options)
