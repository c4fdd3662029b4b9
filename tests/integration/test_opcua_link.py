"""OpcUaPlantLink against a real asyncua server in-process (tests/integration/plc_server.py)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from asyncua import Client, ua

from service.errors import (
    InvalidInput,
    NotTheWriter,
    PlantLinkDown,
    SetpointRejected,
    SetpointUnconfirmed,
    TagMapError,
)
from service.plant.opcua import OpcUaPlantLink
from service.plant.port import PlantLink, Quality
from service.plant.tags import parse_tag_map
from tests.integration.plc_server import (
    TAGS,
    PlcServer,
    all_good,
    eventually,
    fast_settings,
    free_port,
)

# One server for the module (building an asyncua address space takes seconds).
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_plc() -> AsyncIterator[PlcServer]:
    server = PlcServer()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def plc(shared_plc: PlcServer) -> AsyncIterator[PlcServer]:
    """The shared server, reset to the PLC's initial values for each test."""
    shared_plc.auto_ack = True
    shared_plc.reject = set()
    for tag, (_, _, initial, writable) in TAGS.items():
        if not writable and tag != "setpoint_ack":
            await shared_plc.set(tag, initial)
    shared_plc.writes.clear()
    yield shared_plc
    shared_plc.auto_ack = True
    shared_plc.reject = set()


@pytest_asyncio.fixture(loop_scope="module")
async def link(plc: PlcServer) -> AsyncIterator[OpcUaPlantLink]:
    link = OpcUaPlantLink(fast_settings(plc.endpoint), plc.tag_map())
    await link.start()
    yield link
    await link.stop()


def setpoint_writes(plc: PlcServer) -> list[tuple[str, ua.DataValue]]:
    return [(t, dv) for t, dv in plc.writes if t != "heartbeat"]


async def test_is_a_plant_link_and_reports_measurements(
    plc: PlcServer, link: OpcUaPlantLink
) -> None:
    assert isinstance(link, PlantLink)
    await eventually(lambda: all_good(link), what="all measurements good")
    snap = link.snapshot()
    density = snap.measurements["paste_density_pv"]
    assert density.value == pytest.approx(1880.0)
    assert density.unit == "kg/m3"
    assert density.source_timestamp is not None
    assert snap.measurements["plant_mode"].value == 2
    assert snap.measurements["remote_enabled"].value is True
    assert snap.last_error is None


async def test_one_write_of_node_types_without_timestamps(
    plc: PlcServer, link: OpcUaPlantLink
) -> None:
    result = await link.write_setpoints(
        {"cement_rate_sp": 1.1, "run_request": True, "slag_rate_sp": 4}
    )
    assert result.acknowledged
    assert plc.get("setpoint_ack") == result.seq == plc.get("setpoint_seq")
    written = setpoint_writes(plc)
    assert [t for t, _ in written] == [
        "cement_rate_sp",
        "slag_rate_sp",
        "run_request",
        "setpoint_seq",
    ]
    types = {t: dv.Value.VariantType for t, dv in written}
    assert types == {
        "cement_rate_sp": ua.VariantType.Float,  # a REAL, never a Double
        "slag_rate_sp": ua.VariantType.Float,  # an int sent to a REAL is a Float too
        "run_request": ua.VariantType.Boolean,
        "setpoint_seq": ua.VariantType.Int32,
    }
    for _, dv in written:
        assert dv.SourceTimestamp is None and dv.ServerTimestamp is None
    assert plc.get("cement_rate_sp") == pytest.approx(1.1, rel=1e-6)
    snap = link.snapshot()
    assert snap.setpoints["cement_rate_sp"].value == pytest.approx(1.1)
    assert snap.setpoints["cement_rate_sp"].unit == "t/h"
    assert "setpoint_seq" not in snap.setpoints
    second = await link.write_setpoints({"water_flow_sp": 7.5})
    assert second.seq == result.seq + 1


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        ("cement_rate_sp", math.nan),
        ("cement_rate_sp", math.inf),
        ("cement_rate_sp", 1e39),  # beyond a Float
        ("cement_rate_sp", True),
        ("run_request", 1.0),
        ("paste_density_pv", 1.0),  # a measurement
        ("heartbeat", 5),  # owned by the link
        ("flyash_rate_sp", 1.0),  # not in this tag map
    ],
)
async def test_invalid_values_never_reach_the_plc(
    plc: PlcServer, link: OpcUaPlantLink, tag: str, value: float
) -> None:
    with pytest.raises(InvalidInput) as info:
        await link.write_setpoints({tag: value})
    assert info.value.field == tag
    assert setpoint_writes(plc) == []


async def test_rejected_items_are_named(plc: PlcServer, link: OpcUaPlantLink) -> None:
    plc.reject = {"slag_rate_sp"}
    with pytest.raises(SetpointRejected) as info:
        await link.write_setpoints({"cement_rate_sp": 1.0, "slag_rate_sp": 99.0})
    assert info.value.extra["tags"] == ["slag_rate_sp"]
    assert "BadOutOfRange" in info.value.detail


async def test_unacknowledged_set_is_an_error(plc: PlcServer, link: OpcUaPlantLink) -> None:
    plc.auto_ack = False
    with pytest.raises(SetpointUnconfirmed, match="acknowledge"):
        await link.write_setpoints({"cement_rate_sp": 1.0})


async def test_seq_continues_from_the_plc(plc: PlcServer) -> None:
    before = plc.get("setpoint_seq")
    assert isinstance(before, int)
    await plc.set("setpoint_seq", before + 40)
    await eventually(lambda: plc.get("setpoint_ack") == before + 40)
    link = OpcUaPlantLink(fast_settings(plc.endpoint), plc.tag_map())
    await link.start()
    try:
        result = await link.write_setpoints({"paste_density_sp": 1900.0})
        assert result.seq == before + 41  # never a seq the PLC already acknowledged
    finally:
        await link.stop()


async def test_heartbeat_counts_while_connected(plc: PlcServer, link: OpcUaPlantLink) -> None:
    await eventually(lambda: isinstance(plc.get("heartbeat"), int) and plc.get("heartbeat") >= 1)  # type: ignore[operator]
    first = plc.get("heartbeat")
    await eventually(lambda: plc.get("heartbeat") != first, within=2)
    assert all(
        dv.Value.VariantType is ua.VariantType.Int32 for t, dv in plc.writes if t == "heartbeat"
    )


async def test_an_elected_writer_whose_lease_lapsed_sends_nothing(
    plc: PlcServer, link: OpcUaPlantLink
) -> None:
    await eventually(lambda: all_good(link))
    lease_held = True
    await link.set_writer(3, may_write=lambda: lease_held)
    result = await link.write_setpoints({"cement_rate_sp": 2.0})
    assert result.seq >> 20 == 3  # the fencing epoch rides in setpoint_seq
    await eventually(lambda: any(t == "heartbeat" for t, _ in plc.writes), within=2)

    lease_held = False  # frozen past the lease, by the writer's own clock
    await asyncio.sleep(0.3)  # a heartbeat in flight may land
    plc.writes.clear()
    with pytest.raises(NotTheWriter, match="lapsed"):
        await link.write_setpoints({"cement_rate_sp": 3.0})
    await asyncio.sleep(1.0)  # several heartbeat intervals
    assert plc.writes == []
    assert plc.get("cement_rate_sp") == pytest.approx(2.0)

    lease_held = True  # renewed
    await link.write_setpoints({"cement_rate_sp": 3.0})
    await eventually(lambda: any(t == "heartbeat" for t, _ in plc.writes), within=2)
    await link.set_writer(0)  # back to the sole writer for the next tests


async def test_bad_status_is_reported_bad_never_good(plc: PlcServer, link: OpcUaPlantLink) -> None:
    await eventually(lambda: all_good(link))
    await plc.set("paste_density_pv", 1890.0, status=ua.StatusCodes.BadSensorFailure)
    await eventually(
        lambda: link.snapshot().measurements["paste_density_pv"].quality is Quality.BAD
    )
    for _ in range(20):  # stays bad while the PLC says bad (keep-alives do not heal it)
        assert link.snapshot().measurements["paste_density_pv"].quality is Quality.BAD
        await eventually(lambda: True)
    await plc.set("mixer_level_pv", 50.0, status=ua.StatusCodes.UncertainLastUsableValue)
    await eventually(
        lambda: link.snapshot().measurements["mixer_level_pv"].quality is Quality.UNCERTAIN
    )
    await plc.set("paste_density_pv", 1885.0)
    await eventually(
        lambda: link.snapshot().measurements["paste_density_pv"].quality is Quality.GOOD
    )
    assert link.snapshot().measurements["paste_density_pv"].value == pytest.approx(1885.0)


async def test_unchanged_values_stay_good_on_keepalives(
    plc: PlcServer, link: OpcUaPlantLink
) -> None:
    """Nothing changes on the server for 4 stale windows: keep-alives keep them good."""
    await eventually(lambda: all_good(link))
    loop = asyncio.get_running_loop()
    end = loop.time() + 4 * 0.4  # four stale windows
    checks = 0
    while loop.time() < end:
        assert all_good(link), link.snapshot()
        checks += 1
        await asyncio.sleep(0.02)
    assert checks > 20


async def test_silent_subscription_is_recreated(plc: PlcServer, link: OpcUaPlantLink) -> None:
    await eventually(lambda: all_good(link))
    assert await plc.drop_subscriptions() == 1
    await plc.set("pump_pressure_pv", 4200.0)
    took = await eventually(
        lambda: link.snapshot().measurements["pump_pressure_pv"].value == pytest.approx(4200.0),
        within=4,
    )
    assert link.connected
    await plc.set("pump_pressure_pv", 4300.0)  # and the new subscription delivers changes
    await eventually(
        lambda: link.snapshot().measurements["pump_pressure_pv"].value == pytest.approx(4300.0),
        within=1,
    )
    assert took < 4


async def test_a_subscription_recreated_while_alive_leaves_no_publish_without_one(
    plc: PlcServer, link: OpcUaPlantLink, caplog: pytest.LogCaptureFixture
) -> None:
    """The watchdog recreates a subscription it took for silent while the server still
    publishes on it (an event loop stalled longer than the silence window: the built-in
    simulator shares the service's loop). Deleting it before making the new one left
    the session a moment without any, and a publish request of the client arriving then
    met the server's BadNoSubscription, which the server logs as an error. The session
    must never be left without a subscription."""
    await eventually(lambda: all_good(link))
    conn = link._conn  # what the watchdog acts on
    assert conn is not None
    assert plc._server is not None
    service = plc._server.iserver.subscription_service
    delete = service.delete_subscriptions
    left_after_delete: list[int] = []

    async def counting_delete(ids: list[int]) -> list[ua.StatusCode]:
        results = await delete(ids)
        left_after_delete.append(len(service.subscriptions))
        return results

    service.delete_subscriptions = counting_delete  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.WARNING, logger="asyncua"):
            for i in range(20):
                await link._recreate_subscription(conn)
                await asyncio.sleep((i % 5) * 0.03)
            await plc.set("pump_pressure_pv", 4400.0)
            await eventually(
                lambda: (
                    link.snapshot().measurements["pump_pressure_pv"].value == pytest.approx(4400.0)
                ),
                within=2,
            )
    finally:
        service.delete_subscriptions = delete  # type: ignore[method-assign]
    assert len(left_after_delete) == 20 and min(left_after_delete) >= 1, left_after_delete
    faults = [r.getMessage() for r in caplog.records if "BadNoSubscription" in r.getMessage()]
    assert faults == []
    assert link.connected and all_good(link)


async def test_wait_changed_wakes_on_a_change(plc: PlcServer, link: OpcUaPlantLink) -> None:
    await eventually(lambda: all_good(link))
    version = link.snapshot().version
    await plc.set("mixer_level_pv", 61.0)
    snap = await link.wait_changed(version, timeout=2)
    assert snap.version != version
    await eventually(lambda: link.snapshot().measurements["mixer_level_pv"].value == 61.0)


async def test_missing_node_is_a_startup_error_naming_the_tag(plc: PlcServer) -> None:
    nodes = dict(plc.tag_map().node_ids)
    nodes["paste_density_pv"] = f"ns={plc.ns};s=Backfill.NoSuchNode"
    link = OpcUaPlantLink(fast_settings(plc.endpoint), parse_tag_map({"tags": nodes}))
    with pytest.raises(TagMapError, match="paste_density_pv") as info:
        await link.start()
    assert "BadNodeIdUnknown" in info.value.detail
    assert not link.connected


async def test_unusable_types_are_startup_errors(plc: PlcServer) -> None:
    tags = plc.tag_map(run_request="Test.FloatRW", cement_rate_sp="Test.FloatRO")
    link = OpcUaPlantLink(fast_settings(plc.endpoint), tags)
    with pytest.raises(TagMapError) as info:
        await link.start()
    assert "run_request" in info.value.detail and "Float" in info.value.detail
    assert "cement_rate_sp" in info.value.detail and "not writable" in info.value.detail


async def test_no_server_reports_down_and_writes_nothing() -> None:
    server = PlcServer(free_port())  # never started
    link = OpcUaPlantLink(fast_settings(server.endpoint), server.tag_map())
    await link.start()  # an unreachable PLC is not a start-up error
    try:
        snap = link.snapshot()
        assert not snap.connected
        assert snap.last_error
        assert all(m.quality is Quality.BAD for m in snap.measurements.values())
        with pytest.raises(PlantLinkDown):
            await link.write_setpoints({"cement_rate_sp": 1.0})
    finally:
        await link.stop()


async def test_the_test_plc_is_strict(plc: PlcServer) -> None:
    """Timestamped or Double writes to this PLC fail, so the write tests above prove something."""
    stamped = ua.DataValue(ua.Variant(1.0, ua.VariantType.Float), SourceTimestamp=datetime.now(UTC))
    double = ua.DataValue(ua.Variant(1.0, ua.VariantType.Double), StatusCode=None)
    async with Client(plc.endpoint, timeout=2) as client:
        node = client.get_node(plc.node_id("cement_rate_sp"))
        statuses = await client.write_values([node, node], [stamped, double], False)
    assert [s.name for s in statuses] == ["BadWriteNotSupported", "BadTypeMismatch"]
