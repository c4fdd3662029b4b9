"""A month of stopes on the twin: binder saved at compliance, measured against a truth.

Two recipe policies on the same month and the same truth (``mine_month.month``): (a) a
fixed recipe list sized for the worst stope of each class, as mines keep one today; (b)
the service's per-stope design at the site's pass fraction with the plant's spread,
recalibrated weekly from the lab's results. The truth is the lab twin's
(``service/simulator/lab_twin.py``): a strength model the service never sees; cylinders
cast from the simulated mixer's true paste break at it, and the service learns it only
through the lab's results, entered in daily lab sheets through its API.

Where each part runs, and why:

* The pours: the service's pure pour machine (``service.core.pour_machine``, the code the
  supervisor runs) drives the simulated plant (``service.simulator.dynamics``, the harder
  plant profile) in-process on a fake clock at a 2 s plant step
  (``mine_month.plant_run``): the OPC UA link would add only wall time.
* The service: ``create_app`` with its lifespan in the same process, over HTTP through
  ``httpx.ASGITransport``, its clock moved to plant time (``time_machine``; cylinders
  cure for weeks and the lab loop checks their ages). Designs (``/recipes/optimize``),
  recipes, stopes, pours, casts (``/pours/{id}/samples``), lab sheets, proposals and
  approvals and the stopes' compliance all go through the API. The pour records are
  stored with the supervisor's own function, since the pours do not run through its
  PLC link.
* The policies run side by side, one worker process each, each with its own store.

The month: 10 stopes (6 to be exposed: Li & Aubertin 2012 or Mitchell et al. 1982 as the
geometry calls for; 4 not: the liquefaction floor), each a plug (150 kPa at 7 days and the
body's requirement at 28) cured 7 days before its body; about 30,000 m3 in pours of at
most 18 h; the feed's solids and its tailings' true Gs drifting day by day (solids
73.5-77 %, Gs 2.77-2.85 about the recipes' 2.80); a start calibration of 24 trial
cylinders; two samples cast every 200 m3, each crushed at 7 and 28 days.

Run: ``.venv/bin/python bench/bench_mine_month.py [--seed 7] [--short] [--jobs 2]
[--save FILE | --load FILE]`` (``--short``: the suite's two small stopes, a few seconds;
``--save`` keeps both policies' results, ``--load`` prints the table from them again).
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from mine_month.month import MonthConfig, MonthResult, run_month_sync, short_month
from mine_month.report import ceiling_lines, legend, table, verdict


def run_policies(config: MonthConfig, jobs: int) -> tuple[MonthResult, MonthResult]:
    """(fixed, designed), each in its own worker process when ``jobs`` > 1."""
    configs = [replace(config, policy="fixed"), replace(config, policy="designed")]
    if jobs <= 1:
        fixed, designed = (run_month_sync(c) for c in configs)
        return fixed, designed
    with ProcessPoolExecutor(max_workers=min(jobs, 2)) as pool:
        fixed, designed = pool.map(run_month_sync, configs)
    return fixed, designed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7, help="seed of the month (feed, plant, lab)")
    parser.add_argument("--short", action="store_true", help="the suite's two small stopes")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (1 or 2)")
    parser.add_argument("--step-s", type=float, default=2.0, help="plant and control step, s")
    parser.add_argument(
        "--basis",
        choices=["tolerance", "expected"],
        default=None,
        help="the design basis both policies ask for (default: the site's, tolerance)",
    )
    parser.add_argument(
        "--save",
        metavar="FILE",
        help="keep both policies' results in FILE (pickle) to print the table again later",
    )
    parser.add_argument(
        "--load",
        metavar="FILE",
        help="print the table from results kept with --save instead of running the month",
    )
    parser.add_argument(
        "--designs",
        action="store_true",
        help="print each of (b)'s designs: its requirements, binding limits and its spread",
    )
    args = parser.parse_args(argv)
    if args.short:
        config = short_month("fixed", seed=args.seed, step_s=args.step_s, design_basis=args.basis)
    else:
        config = MonthConfig(
            policy="fixed", seed=args.seed, step_s=args.step_s, design_basis=args.basis
        )
    stopes = config.stopes
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {load:.1f} "
        f"at the start; seed {args.seed}; {len(stopes)} stopes; plant step {args.step_s:g} s; "
        f"design basis {args.basis or 'the site default (tolerance, 95 % confidence)'}"
    )
    started = time.perf_counter()
    if args.load:
        with open(args.load, "rb") as handle:
            config, fixed, designed = pickle.load(handle)
        print(f"results of the month from {args.load} (its configuration, not the flags')")
    else:
        fixed, designed = run_policies(config, args.jobs)
        if args.save:
            with open(args.save, "wb") as handle:
                pickle.dump((config, fixed, designed), handle)
    wall = time.perf_counter() - started
    print("fixed list: " + "; ".join(fixed.design_notes))
    if args.designs:
        for note in designed.design_notes:
            print("(b) " + note)
    for line in table(fixed, designed):
        print(line)
    for line in ceiling_lines(config, fixed, designed):
        print(line)
    for line in legend():
        print(line)
    v = verdict(fixed, designed)
    print(f"wall time of the month, both policies: {wall:.0f} s")
    return 0 if v.met or args.short else 1


if __name__ == "__main__":
    sys.exit(main())
