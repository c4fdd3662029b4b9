"""Who holds a connection to the OPC UA server under a flood (service.core.admission),
and how a client's text is bounded for a log line (service.core.untrusted)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core.admission import YIELDING, Connection, Limits, Stage, admit
from service.core.untrusted import clip

LIMITS = Limits(max_connections=6, max_per_peer=3, max_unactivated=4)


def conn(i: int, peer: str = "a", stage: Stage = Stage.CONNECTED, since: float = 0.0) -> Connection:
    return Connection(i, peer, stage, since if since else float(i))


def test_room_left_admits_without_evicting() -> None:
    assert admit([conn(1), conn(2, "b")], "c", LIMITS).admit
    assert admit([conn(1), conn(2, "b")], "c", LIMITS).evict == ()


def test_a_peer_at_its_limit_gives_up_its_oldest_idle_connection() -> None:
    held = [conn(1, since=5), conn(2, since=1), conn(3, since=3), conn(4, "b", since=0.5)]
    decision = admit(held, "a", LIMITS)
    assert decision.admit and decision.evict == (2,)  # a's oldest, not b's older one


def test_a_bare_connection_gives_way_before_a_discovery_channel() -> None:
    held = [conn(1, stage=Stage.DISCOVERY, since=1), conn(2, since=9), conn(3, since=5)]
    assert admit(held, "a", LIMITS).evict == (3,)


def test_secured_channels_and_sessions_keep_their_place() -> None:
    held = [conn(1, stage=Stage.CHANNEL), conn(2, stage=Stage.SESSION), conn(3, stage=Stage.ACTIVE)]
    decision = admit(held, "a", LIMITS)
    assert not decision.admit and decision.evict == ()
    assert "none idle" in decision.reason


def test_unactivated_limit_keeps_room_for_sessions_that_logged_in() -> None:
    held = [conn(i, f"p{i}", Stage.SESSION) for i in range(1, 5)]  # 4 awaiting login
    assert not admit(held, "new", LIMITS).admit
    held[0] = conn(1, "p1", Stage.CONNECTED)
    decision = admit(held, "new", LIMITS)
    assert decision.admit and decision.evict == (1,)


def test_a_server_cap_takes_from_the_peer_that_holds_the_most() -> None:
    """The whole server's unactivated cap reached: the newcomer's place comes from the
    peer with the most idle connections, even when another peer's is older."""
    held = [conn(1, "scada", since=0.1), conn(2, "x", since=1), conn(3, "x", since=2),
            conn(4, "y", since=0.5)]  # fmt: skip
    decision = admit(held, "z", LIMITS)
    assert decision.admit and decision.evict == (2,)


def test_a_flood_from_one_address_never_pushes_out_another_address_client() -> None:
    """A Hello flood from x at the server's defaults (32 per peer, 32 awaiting login, 64
    in all): a client of another address that connected during it, and has not opened
    its channel yet, keeps its place through 10,000 more of the flood's connections."""
    limits = Limits(max_connections=64, max_per_peer=32, max_unactivated=32)
    held: list[Connection] = []
    next_id = 0

    def arrive(peer: str, at: float) -> bool:
        nonlocal held, next_id
        decision = admit(held, peer, limits)
        held = [c for c in held if c.id not in decision.evict]
        if decision.admit:
            next_id += 1
            held.append(Connection(next_id, peer, Stage.CONNECTED, at))
        return decision.admit

    for i in range(100):
        arrive("x", i / 400)
    assert arrive("scada", 0.25)
    scada = held[-1].id
    for i in range(10_000):
        assert arrive("x", 0.25 + (i + 1) / 400)
        assert any(c.id == scada for c in held)
    assert sum(c.peer == "x" for c in held) == 31


def test_activated_sessions_fill_the_server_only_up_to_its_limit() -> None:
    held = [conn(i, f"p{i}", Stage.ACTIVE) for i in range(1, 7)]
    assert not admit(held, "new", LIMITS).admit


def test_limits_are_consistent() -> None:
    with pytest.raises(ValueError):
        Limits(max_connections=2, max_per_peer=1, max_unactivated=3)
    with pytest.raises(ValueError):
        Limits(max_connections=2, max_per_peer=0, max_unactivated=1)


connections = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(list(Stage)),
        st.floats(0, 100, allow_nan=False),
    ),
    max_size=12,
)


@given(connections, st.sampled_from(["a", "b", "z"]))
def test_a_decision_never_breaks_a_limit_nor_evicts_a_connection_that_showed_more(
    raw: list[tuple[str, Stage, float]], peer: str
) -> None:
    held = [Connection(i, p, s, t) for i, (p, s, t) in enumerate(raw)]
    decision = admit(held, peer, LIMITS)
    by_id = {c.id: c for c in held}
    assert all(by_id[i].stage in YIELDING for i in decision.evict)
    if not decision.admit:
        assert decision.evict == ()
        return
    after = [c for c in held if c.id not in decision.evict] + [
        Connection(-1, peer, Stage.CONNECTED, 1e9)
    ]
    before_ok = (
        len(held) <= LIMITS.max_connections
        and sum(c.stage is not Stage.ACTIVE for c in held) <= LIMITS.max_unactivated
        and all(sum(c.peer == p for c in held) <= LIMITS.max_per_peer for p in "abcz")
    )
    if before_ok:  # a state within the limits stays within them
        assert len(after) <= LIMITS.max_connections
        assert sum(c.stage is not Stage.ACTIVE for c in after) <= LIMITS.max_unactivated
        assert sum(c.peer == peer for c in after) <= LIMITS.max_per_peer


def test_clip_bounds_a_clients_text() -> None:
    assert clip("scada") == "'scada'"
    long = clip("x" * 4_000_000)
    assert len(long) < 100 and long.endswith("(4000000 chars)")
    assert clip(b"\xff" * 10, limit=4).endswith("(10 chars)")
    assert clip(None) == "'None'"
