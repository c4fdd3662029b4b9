"""A full plant-link cycle against the same work done by hand with a raw asyncua client.

One run, one built-in simulator (``SimulatorServer``, in-process, free loopback port),
two clients on it, cycles alternating between them:

* ours: ``OpcUaPlantLink.snapshot()`` (all measurements, from the subscription) plus
  ``await link.write_setpoints({...})`` of five setpoints of the interface, which writes them
  and ``setpoint_seq`` in one request, waits for ``setpoint_ack == seq`` (subscription,
  with a polling read as fallback) and reads the setpoints back.
* raw: an asyncua ``Client`` doing the same protocol by hand: one ``read_values`` of
  every measurement node, one ``write_values`` of the setpoints as explicit Float
  variants plus the seq as Int32, polling reads of ``setpoint_ack`` back to back until
  it equals the seq, and one read-back of the setpoints. Its phases are timed, so the
  figure without the read-back (read + write + ack only) is printed too.

The raw client numbers its sets from 1,000,000 so that its seq never equals one the
link is about to write (a stale ack would then confirm the link's set for free).

The ack wait includes the simulated PLC's scan (it copies ``setpoint_seq`` into
``setpoint_ack`` once per tick) for both clients alike; ``--tick-s`` sets that scan
(the service runs its simulator at 0.1 s; the default here is 0.01 s so that the
figure reflects the link rather than the PLC). ``--speed`` only scales plant time.
The link's ack detection also depends on its subscription's publishing interval
(``--publishing-interval-ms``, default 50 ms here; the service's default is 500 ms).

Target: our cycle at most 1.5x the raw cycle (mean).
Run: ``.venv/bin/python bench/bench_link_cycle.py [--cycles 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field

from asyncua import ua
from asyncua.client.client import Client

from service.plant.opcua import OpcUaPlantLink
from service.plant.port import Quality
from service.plant.tags import TagMap, load_tag_map
from service.settings import PlcSettings
from service.simulator import TAG_MAP_PATH
from service.simulator.server import SimulatorServer

TARGET_RATIO = 1.5
SETPOINT_TAGS = (
    "tailings_flow_sp",
    "cement_rate_sp",
    "slag_rate_sp",
    "water_flow_sp",
    "paste_density_sp",
)
RAW_SEQ_BASE = 1_000_000
ACK_TIMEOUT_S = 5.0
MAX_ACK_POLLS = 20_000
READY_TIMEOUT_S = 20.0
READY_POLL_S = 0.05
WARMUP_CYCLES = 10


def setpoint_set(i: int) -> dict[str, float]:
    """A set that changes from cycle to cycle, inside the simulator's limits."""
    step = float(i % 8)
    return {
        "tailings_flow_sp": 100.0 + step,
        "cement_rate_sp": 2.0 + 0.125 * step,
        "slag_rate_sp": 8.0 + 0.25 * step,
        "water_flow_sp": 20.0 + 0.5 * step,
        "paste_density_sp": 1880.0 + step,
    }


@dataclass
class Samples:
    total_s: list[float] = field(default_factory=list)
    phases_s: dict[str, list[float]] = field(default_factory=dict)

    def add(self, total_s: float, **phases: float) -> None:
        self.total_s.append(total_s)
        for name, value in phases.items():
            self.phases_s.setdefault(name, []).append(value)


class RawCycle:
    """The link's protocol by hand with asyncua's batched calls."""

    def __init__(self, client: Client, tag_map: TagMap) -> None:
        node = client.get_node
        self.client = client
        self.measurements = [node(tag_map.node_id(t)) for t in tag_map.measurements]
        self.setpoints = [node(tag_map.node_id(t)) for t in SETPOINT_TAGS]
        self.seq_node = node(tag_map.node_id("setpoint_seq"))
        self.ack_node = node(tag_map.node_id("setpoint_ack"))
        self.seq = RAW_SEQ_BASE

    async def run(self, values: dict[str, float], samples: Samples | None) -> None:
        t0 = time.perf_counter()
        measured = await self.client.read_values(self.measurements)
        t1 = time.perf_counter()
        self.seq += 1
        seq = self.seq
        datavalues = [
            ua.DataValue(Value=ua.Variant(values[t], ua.VariantType.Float), StatusCode=None)
            for t in SETPOINT_TAGS
        ]
        datavalues.append(
            ua.DataValue(Value=ua.Variant(seq, ua.VariantType.Int32), StatusCode=None)
        )
        await self.client.write_values([*self.setpoints, self.seq_node], datavalues)
        t2 = time.perf_counter()
        deadline = t2 + ACK_TIMEOUT_S
        for _ in range(MAX_ACK_POLLS):
            (ack,) = await self.client.read_values([self.ack_node])
            if ack == seq or time.perf_counter() > deadline:
                break
        if ack != seq:
            raise RuntimeError(f"raw: no ack for seq {seq} (ack {ack})")
        t3 = time.perf_counter()
        back = await self.client.read_values(self.setpoints)
        t4 = time.perf_counter()
        want = [ua.Float(values[t]) for t in SETPOINT_TAGS]
        if len(measured) != len(self.measurements) or any(
            abs(b - w) > 1e-3 * abs(w) for b, w in zip(back, want, strict=True)
        ):
            raise RuntimeError(f"raw: read-back {back} differs from {want}")
        if samples is not None:
            samples.add(t4 - t0, read=t1 - t0, write=t2 - t1, ack=t3 - t2, read_back=t4 - t3)


async def link_cycle(
    link: OpcUaPlantLink, values: dict[str, float], samples: Samples | None
) -> None:
    t0 = time.perf_counter()
    snapshot = link.snapshot()
    t1 = time.perf_counter()
    result = await link.write_setpoints(values)
    t2 = time.perf_counter()
    if not (snapshot.connected and result.acknowledged):
        raise RuntimeError("link: disconnected or set not acknowledged")
    if samples is not None:
        samples.add(t2 - t0, snapshot=t1 - t0, write_setpoints=t2 - t1)


async def wait_ready(link: OpcUaPlantLink, tags: tuple[str, ...]) -> None:
    """Bounded wait until the link is connected and every measurement is good."""
    for _ in range(int(READY_TIMEOUT_S / READY_POLL_S)):
        snap = link.snapshot()
        if snap.connected and all(snap.measurements[t].quality is Quality.GOOD for t in tags):
            return
        await asyncio.sleep(READY_POLL_S)
    raise RuntimeError(f"the link did not become ready within {READY_TIMEOUT_S:g} s")


def ms(seconds: float) -> float:
    return seconds * 1000.0


def describe(samples: list[float]) -> tuple[float, float, float]:
    """Mean, p50, p99 in ms."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return ms(statistics.fmean(samples)), ms(statistics.median(samples)), ms(cuts[98])


async def bench(args: argparse.Namespace) -> int:
    tag_map = load_tag_map(TAG_MAP_PATH)
    sim = SimulatorServer(port=0, speed=args.speed, tick_s=args.tick_s, seed=11)
    await sim.start()
    link: OpcUaPlantLink | None = None
    client: Client | None = None
    try:
        settings = PlcSettings(publishing_interval_ms=args.publishing_interval_ms)
        link = OpcUaPlantLink(settings=settings, tag_map=tag_map, endpoint=sim.endpoint)
        await link.start()
        await wait_ready(link, tag_map.measurements)
        client = Client(sim.endpoint, timeout=settings.request_timeout_s)
        await client.connect()
        raw = RawCycle(client, tag_map)

        for i in range(WARMUP_CYCLES):
            await link_cycle(link, setpoint_set(i), None)
            await raw.run(setpoint_set(i), None)

        ours, theirs = Samples(), Samples()
        deadline = time.monotonic() + args.max_seconds
        done = 0
        for i in range(args.cycles):
            if time.monotonic() > deadline:
                print(f"stopped after {done} cycles: --max-seconds {args.max_seconds} reached")
                break
            values = setpoint_set(i)
            if i % 2 == 0:
                await link_cycle(link, values, ours)
                await raw.run(values, theirs)
            else:
                await raw.run(values, theirs)
                await link_cycle(link, values, ours)
            done += 1
    finally:
        if client is not None:
            await client.disconnect()
        if link is not None:
            await link.stop()
        await sim.stop()

    if done < 2:
        print("too few cycles to report", file=sys.stderr)
        return 2
    print(
        f"simulator in-process: scan (tick) {args.tick_s:g} s wall, speed {args.speed:g}x; "
        f"link publishing interval {args.publishing_interval_ms:g} ms; "
        f"{len(tag_map.measurements)} measurements, {len(SETPOINT_TAGS)} setpoints + seq; "
        f"{done} cycles each, alternating"
    )
    print()
    print(f"{'':<44}{'mean ms':>9}{'p50 ms':>9}{'p99 ms':>9}")

    def row(name: str, values: list[float]) -> None:
        mean, p50, p99 = describe(values)
        print(f"{name:<44}{mean:9.3f}{p50:9.3f}{p99:9.3f}")

    row("ours: snapshot + write_setpoints", ours.total_s)
    row("  snapshot()", ours.phases_s["snapshot"])
    row("  write_setpoints (write, ack, read-back)", ours.phases_s["write_setpoints"])
    row("raw: read + write + ack + read-back", theirs.total_s)
    for name in ("read", "write", "ack", "read_back"):
        row(f"  {name}", theirs.phases_s[name])
    no_read_back = [
        t - r for t, r in zip(theirs.total_s, theirs.phases_s["read_back"], strict=True)
    ]
    row("raw without read-back (read + write + ack)", no_read_back)

    ours_mean = statistics.fmean(ours.total_s)
    ours_p50 = statistics.median(ours.total_s)
    ratio = ours_mean / statistics.fmean(theirs.total_s)
    ratio_p50 = ours_p50 / statistics.median(theirs.total_s)
    ratio_short = ours_mean / statistics.fmean(no_read_back)
    verdict = "meets target" if ratio <= TARGET_RATIO else "MISSES target"
    print()
    print(
        f"ours / raw (same work) = {ratio:.2f}x mean, {ratio_p50:.2f}x p50 "
        f"(target <= {TARGET_RATIO}x mean): {verdict}"
    )
    print(f"ours / raw without read-back = {ratio_short:.2f}x mean")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cycles", type=int, default=200, help="measured cycles per client")
    parser.add_argument("--speed", type=float, default=20.0, help="simulator plant speed")
    parser.add_argument("--tick-s", type=float, default=0.01, help="simulated PLC scan, wall s")
    parser.add_argument("--publishing-interval-ms", type=float, default=50.0)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="wall-time bound")
    args = parser.parse_args(argv)
    if not 2 <= args.cycles <= 10_000:
        parser.error("--cycles must be 2-10000")
    if not (0.001 <= args.tick_s <= 1.0 and 0 < args.speed <= 1000):
        parser.error("--tick-s 0.001-1, --speed 0-1000")
    if not 1.0 <= args.max_seconds <= 3600.0:
        parser.error("--max-seconds must be 1-3600")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
