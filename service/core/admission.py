"""Who may hold a connection to the OPC UA server for SCADA, when more ask than it holds.

A connection costs the server a socket and a slot from the moment it is accepted, long
before the client has proved anything; one that never logs in would otherwise keep its
slot until the activation deadline, and a flood of them (TCP connections that only say
Hello) would lock every SCADA out. The rules:

* a connection climbs through stages (:class:`Stage`); only an activated session has
  authenticated;
* the connections of one peer address are capped (``max_per_peer``), unactivated ones
  in all (``max_unactivated``) and every connection (``max_connections``), so a peer
  cannot take the whole server and activated sessions always keep room;
* a newcomer that finds a cap reached takes the place of an unactivated connection
  that has shown nothing (a bare TCP connection, or a channel that can carry no
  session): from its own peer when the peer's cap is the one reached; when a cap of the
  whole server is, from the peer that holds the most such connections (a flood gives
  way before anyone else does: a fair share by peer, as a router's fair queueing drops
  from its longest queue); within a peer the least advanced (a bare connection before
  a discovery channel), oldest first. Such a connection has spent nothing: a client
  that means to log in opens its secure channel within milliseconds of its Hello. A
  connection with a secured channel or a session waiting for activation keeps its place
  until the activation deadline (asyncua closes it then); when only such connections
  stand in the way, the newcomer is refused.

So a flood from one address cannot push out a client of another address that has not
yet opened its channel; a client that shares the flood's address has until ``max_per_peer``
newer connections of that address arrive (32 at 400 a second: 80 ms) and, like an OPC
UA host, tries again when it loses that race.

Pure: the connections as values in, the decision out. Times are seconds of a monotonic
clock, passed in.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class Stage(enum.IntEnum):
    CONNECTED = 0  # accepted; perhaps a Hello, nothing more
    DISCOVERY = 1  # a secure channel no endpoint offers (None): GetEndpoints only
    CHANNEL = 2  # a secure channel of an offered endpoint
    SESSION = 3  # a session created on it, not activated
    ACTIVE = 4  # an activated (authenticated) session


#: Stages a newcomer may take the place of.
YIELDING = frozenset({Stage.CONNECTED, Stage.DISCOVERY})


@dataclass(frozen=True, slots=True)
class Limits:
    max_connections: int
    max_per_peer: int
    max_unactivated: int

    def __post_init__(self) -> None:
        if min(self.max_connections, self.max_per_peer, self.max_unactivated) < 1:
            raise ValueError("connection limits must be at least 1")
        if self.max_unactivated > self.max_connections:
            raise ValueError("max_unactivated cannot exceed max_connections")


@dataclass(frozen=True, slots=True)
class Connection:
    id: int
    peer: str
    stage: Stage
    since: float


@dataclass(frozen=True, slots=True)
class Decision:
    admit: bool
    evict: tuple[int, ...] = ()
    reason: str = ""


def _yielding(conns: Iterable[Connection], taken: set[int]) -> list[Connection]:
    """Unactivated connections that may give way: the peer holding the most of them
    first, then the least advanced and oldest."""
    pool = [c for c in conns if c.stage in YIELDING and c.id not in taken]
    held = Counter(c.peer for c in pool)
    return sorted(pool, key=lambda c: (-held[c.peer], c.stage, c.since, c.id))


def admit(conns: Sequence[Connection], peer: str, limits: Limits) -> Decision:
    """Whether a new connection from ``peer`` is taken, and which connections give way."""
    evicted: set[int] = set()
    order: list[int] = []

    def make_room(pool: Sequence[Connection]) -> bool:
        candidates = _yielding(pool, evicted)
        if not candidates:
            return False
        evicted.add(candidates[0].id)
        order.append(candidates[0].id)
        return True

    def alive(pool: Iterable[Connection]) -> list[Connection]:
        return [c for c in pool if c.id not in evicted]

    own = [c for c in conns if c.peer == peer]
    if len(own) >= limits.max_per_peer and not make_room(own):
        return Decision(False, reason=f"peer {peer} holds {len(own)} connections, none idle")
    unactivated = [c for c in alive(conns) if c.stage is not Stage.ACTIVE]
    if len(unactivated) >= limits.max_unactivated and not make_room(unactivated):
        return Decision(False, reason=f"{len(unactivated)} connections await login, none idle")
    if len(alive(conns)) >= limits.max_connections and not make_room(alive(conns)):
        return Decision(False, reason=f"{len(alive(conns))} connections, none idle")
    return Decision(True, tuple(order))
