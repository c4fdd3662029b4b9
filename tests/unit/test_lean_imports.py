"""What a process of the service carries: scipy and pyarrow serve rarely used routes
and are loaded when first used (``service.core.lazy_scipy``, ``service.core.tabular``),
not by importing the service, building its application or running a control cycle.
A module-level ``import scipy...`` or ``import pyarrow`` anywhere on those paths fails
here (the memory it costs is measured by ``bench/bench_memory.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("scipy", "pyarrow")

_PROBE = """
import json, sys
import service.app
from service.app import create_app
from service.settings import Settings
from service.core import flow_balance, reconcile, compliance, reliability, rheology
from service.core import optimizer, tabular
from service.core.chi_square import chdtri
from service.core.roots import brentq
from service.core.rheology import yield_stress_from_slump

create_app(Settings(api_keys="hmi:hmi-key-0123456789abcdef"))
# What a control cycle and a seeded store use: the balance check's thresholds, the
# rheology's roots (the example rheology is fitted when a fresh store is seeded).
flow_balance.DisagreementConfig().threshold(2)
yield_stress_from_slump(200.0, 2000.0)
tabular.writer("csv", [tabular.Column("a", tabular.Kind.TEXT)]).rows([{"a": "x"}])
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _loaded_top_level_modules(probe: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_service_and_its_control_path_load_no_scipy_or_pyarrow() -> None:
    loaded = _loaded_top_level_modules(_PROBE)
    assert "numpy" in loaded  # the probe ran what it says
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_what_uses_them_loads_them() -> None:
    probe = """
import json, sys
from service.core import reliability, tabular
reliability.t_quantile(0.9, 5)
tabular.writer("parquet", [tabular.Column("a", tabular.Kind.TEXT)]).close()
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""
    assert set(HEAVY) <= _loaded_top_level_modules(probe)
