"""The in-process proportioning call, and the per-request path around it minus HTTP.

Measures, side by side in one run, µs per call (timeit, best of ``--repeat``):

* ``proportion()``: ``service.core.proportioning.proportion`` with the contract's
  two-component blend (20 % cement, 80 % slag); target under 5 µs.
* the stages ``ComputationRoute`` (``service/api/computation_route.py``) runs for
  ``POST /api/v1/recipes/proportion`` apart from HTTP, the edge and routing: JSON
  decoding of the body (pydantic's parser, as the route class does), validation into
  ``ProportionRequest``, and the route function itself (the site's limits, inputs ->
  ``proportion`` -> the JSON response, encoded once);
* the whole of that path as one call, and its ratio to the core call.

Run: ``.venv/bin/python bench/bench_proportion_call.py [--repeat 7]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import timeit
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI
from pydantic_core import from_json
from starlette.requests import Request

from service.api.routes.recipes import proportion as proportion_route
from service.api.schemas.recipes import ProportionPublic, ProportionRequest
from service.core import proportioning as prop
from service.runtime import Runtime
from service.settings import Settings

TARGET_CORE_US = 5.0

# docs/INTEGRATION.md "POST /recipes/proportion", the example request.
CONTRACT_BODY: dict[str, Any] = {
    "tailings": {"specific_gravity": 3.05, "moisture_pct": 31.58},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 4.5,
    "solids_pct": 70.0,
    "volume_m3": 1.0,
}


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends (the route awaits nothing) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("the route suspended; it cannot be timed without an event loop")


def per_call_us(fn: Callable[[], object], repeat: int) -> tuple[float, int]:
    """Best µs per call over ``repeat`` runs of ``number`` calls (``number`` from autorange)."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()  # at least 0.2 s per run
    best = min(timer.repeat(repeat=repeat, number=number))
    return best / number * 1e6, number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=7, help="timeit repeats (best is kept)")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 100:
        parser.error("--repeat must be 1-100")

    tailings = prop.Tailings(specific_gravity=3.05, moisture_ratio=0.3158)
    binder = (
        prop.BinderComponent("cement", 3.15, 0.20),
        prop.BinderComponent("slag", 2.90, 0.80),
    )
    body = json.dumps(CONTRACT_BODY).encode()
    request = ProportionRequest.model_validate(CONTRACT_BODY)
    # The route reads the site's recipe limits from the application's runtime: one
    # built (not started) from default settings with a key given, so that nothing is
    # written to disk, on an application the request points to.
    app = FastAPI()
    app.state.runtime = Runtime(Settings(api_keys="hmi:" + "b" * 32))
    http_request = Request({"type": "http", "app": app, "headers": []})
    public = ProportionPublic.model_validate_json(
        run_coroutine(proportion_route(request, http_request)).body
    )

    # Sanity before timing: the HTTP path and the core agree, and mass closes.
    mix = prop.proportion(tailings, binder, 0.045, 0.70)
    per_m3 = mix.per_m3
    closure = per_m3.dry_tailings_kg + per_m3.binder_kg + per_m3.water_kg - per_m3.wet_paste_kg
    if abs(closure) > 1e-9 * per_m3.wet_paste_kg or public.per_m3.wet_paste_kg != (
        per_m3.wet_paste_kg
    ):
        print("proportioning result is inconsistent; not timing it", file=sys.stderr)
        return 2

    def core() -> object:
        return prop.proportion(tailings, binder, 0.045, 0.70)

    def decode() -> object:
        return from_json(body)

    def validate() -> object:
        return ProportionRequest.model_validate(CONTRACT_BODY)

    def route() -> object:
        # The route returns the encoded JSON response itself (no response-model pass).
        return run_coroutine(proportion_route(request, http_request))

    def full_path() -> object:
        req = ProportionRequest.model_validate(from_json(body))
        return run_coroutine(proportion_route(req, http_request))

    stages: list[tuple[str, Callable[[], object]]] = [
        ("proportion() core, 2-component blend", core),
        ("JSON decoding (pydantic_core.from_json)", decode),
        ("ProportionRequest.model_validate", validate),
        ("route function (inputs + core + JSON encoding)", route),
        ("full path minus HTTP (the three above)", full_path),
    ]
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"timeit best of {args.repeat}"
    )
    results: dict[str, float] = {}
    width = max(len(name) for name, _ in stages)
    for name, fn in stages:
        us, number = per_call_us(fn, args.repeat)
        results[name] = us
        print(f"  {name:<{width}}  {us:8.2f} µs/call  ({number} calls per run)")

    core_us = results[stages[0][0]]
    full_us = results[stages[-1][0]]
    print()
    print(f"core call: {core_us:.2f} µs (target < {TARGET_CORE_US:g} µs): ", end="")
    print("meets target" if core_us < TARGET_CORE_US else "MISSES target")
    print(
        f"full path minus HTTP / core call = {full_us / core_us:.1f}x "
        f"({full_us:.2f} µs vs {core_us:.2f} µs; the core is "
        f"{100.0 * core_us / full_us:.0f} % of the path)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
