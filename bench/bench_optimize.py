"""The cheapest-recipe optimiser: milliseconds per call in-process (the core) and
per request through the application (validation, model cache, core, response),
side by side, against the issue's aim of well under 50 ms per request.

Three core cases, side by side: today's single requirement at the median (300 kPa at
28 days), and a stope designed at a 90 % pass fraction for two requirements (a plug of
150 kPa at 7 days and a body of 700 kPa at 28 days) with the example rheology and a
pump pressure limit of 7,000 kPa on a 1,200 m, 200 mm line lifting 30 m at 100 m3/h,
once on the expected basis (the prediction interval, closed form) and once on the
tolerance basis at 95 % confidence (the site's default: the noncentral-t factor by
bracketing and bisection).
The plug is taken at 7 days, not 3: the example calibration was tested at 7-56 days
(accepted from 5.7 days on the ln t scale), so a 3-day requirement is refused unless
extrapolation is allowed. The request timing is taken for both API bodies, side by side:
today's single requirement, and the plug and body with the line and its pressure limit
(``requirements``, ``pipeline``, ``max_pump_pressure_kpa``; the site's 90 % with 95 %
confidence by default).

Run: ``.venv/bin/python bench/bench_optimize.py [--runs 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from service.app import create_app
from service.core import optimizer as opt
from service.core import proportioning as prop
from service.core.rheology import PipeLine, load_example_rheology
from service.core.strength_model import load_example_model
from service.settings import Settings

TARGET_MS = 50.0
KEY = "bench-hmi-key-0123456789"
BODY: dict[str, Any] = {
    "stope": {
        "method": "mitchell",
        "fill_height_m": 30,
        "exposed_length_m": 15,
        "unit_weight_kn_m3": 20,
        "safety_factor": 1.5,
    },
    "curing_days": 28,
    "binders": [
        {"name": "cement", "specific_gravity": 3.15, "price_per_t": 180},
        {"name": "slag", "specific_gravity": 2.90, "price_per_t": 90, "max_fraction_pct": 80},
    ],
    "tailings": {"specific_gravity": 3.05, "moisture_pct": 31.58},
    "solids_pct_min": 70,
    "solids_pct_max": 78,
    "binder_pct_min": 3,
    "binder_pct_max": 8,
    "stope_volume_m3": 20000,
}
STAGED_BODY: dict[str, Any] = {
    **{k: v for k, v in BODY.items() if k not in ("stope", "curing_days", "solids_pct_max")},
    "requirements": [
        {"name": "plug", "required_ucs_kpa": 150, "curing_days": 7},
        {"name": "body", "required_ucs_kpa": 700, "curing_days": 28},
    ],
    "pass_fraction_pct": 90,
    "pipeline": {"length_m": 1200, "inner_diameter_m": 0.2, "static_head_m": 30, "flow_m3_h": 100},
    "max_pump_pressure_kpa": 7000,
}


BINDERS = [
    opt.BinderOption("cement", 3.15, 180.0),
    opt.BinderOption("slag", 2.90, 90.0, max_fraction=0.8),
]
TAILINGS = prop.Tailings(3.05, 0.3158)
LINE = PipeLine(length_m=1200.0, inner_diameter_m=0.2, static_head_m=30.0, flow_m3_h=100.0)


def core_ms(runs: int) -> list[float]:
    model = load_example_model()
    limits = opt.RecipeLimits(0.70, 0.78, 0.03, 0.08)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        opt.optimize_recipe(
            required_ucs_kpa=300.0,
            curing_days=28,
            binders=BINDERS,
            tailings=TAILINGS,
            limits=limits,
            model=model,
            stope_volume_m3=20000,
        )
        out.append((time.perf_counter() - t0) * 1000)
    return out


def staged_ms(
    runs: int, confidence: float | None = None
) -> tuple[list[float], opt.OptimizedRecipe]:
    """Plug and body at a 90 % pass fraction (expected, or with ``confidence``), the pump
    pressure limit in place of a fixed upper Cw (the site window goes to 80 %)."""
    model = load_example_model()
    rheology = load_example_rheology()
    limits = opt.RecipeLimits(0.70, 0.80, 0.03, 0.08)
    requirements = [opt.Requirement(150.0, 7.0, "plug"), opt.Requirement(700.0, 28.0, "body")]
    out = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = opt.optimize_recipe(
            requirements=requirements,
            pass_fraction=0.9,
            confidence=confidence,
            binders=BINDERS,
            tailings=TAILINGS,
            limits=limits,
            model=model,
            stope_volume_m3=20000,
            rheology=rheology,
            pipeline=LINE,
            max_pump_pressure_kpa=7000.0,
        )
        out.append((time.perf_counter() - t0) * 1000)
    assert result is not None
    return out, result


async def route_ms(runs: int) -> tuple[list[float], list[float]]:
    """Request times of the single-requirement body and of the staged body, alternating."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}",
            api_keys=f"hmi:{KEY}",
            api={"compute_rate_per_s": 100_000.0, "compute_burst": 100_000},
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
                headers = {"Authorization": f"Bearer {KEY}"}
                times: tuple[list[float], list[float]] = ([], [])
                for body in (BODY, STAGED_BODY):  # warm: each model loaded once, then cached
                    r = await client.post("/api/v1/recipes/optimize", json=body, headers=headers)
                    r.raise_for_status()
                for _ in range(runs):
                    for body, out in zip((BODY, STAGED_BODY), times, strict=True):
                        t0 = time.perf_counter()
                        r = await client.post(
                            "/api/v1/recipes/optimize", json=body, headers=headers
                        )
                        out.append((time.perf_counter() - t0) * 1000)
                        r.raise_for_status()
                return times


def summary(name: str, ms: list[float]) -> float:
    med = statistics.median(ms)
    p95 = sorted(ms)[int(0.95 * (len(ms) - 1))]
    print(f"  {name:<38} median {med:7.2f} ms   p95 {p95:7.2f} ms")
    return med


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args(argv)
    if not 5 <= args.runs <= 1000:
        parser.error("--runs must be 5-1000")
    print(f"{args.runs} runs each (2 binders, example calibration)")
    core = summary("optimize_recipe() in-process", core_ms(args.runs))
    for label, confidence in (("90 % expected", None), ("90 %/95 % tolerance", 0.95)):
        staged_times, staged = staged_ms(args.runs, confidence)
        staged_median = summary(f"optimize_recipe() plug+body, {label}", staged_times)
        recipe = staged.recipe
        print(
            f"    / single = {staged_median / core:.1f}x; binds: "
            f"{', '.join(staged.binding_constraints)}; Bw {recipe.binder_ratio * 100:.2f} % "
            f"at Cw {recipe.solids_fraction * 100:.2f} %, pump "
            f"{recipe.pump_pressure_kpa:.0f} kPa"
        )
    single_times, staged_request_times = asyncio.run(route_ms(args.runs))
    route = summary("POST /recipes/optimize, single", single_times)
    staged_route = summary("POST /recipes/optimize, plug+body+pump", staged_request_times)
    for name, med in (("single", route), ("plug+body+pump", staged_route)):
        verdict = "meets target" if med < TARGET_MS else "MISSES target"
        print(f"request {name}: median {med:.2f} ms against {TARGET_MS:g} ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
