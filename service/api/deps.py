"""Dependencies published as ``Annotated`` aliases, so routes stay one-liners.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread,
which costs two thread hops per request for work that never blocks."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from pydantic import BeforeValidator

from service.api.auth import Principal
from service.api.edge import PRINCIPAL
from service.api.schemas.common import ID_PATTERN
from service.errors import InvalidInput
from service.settings import Role
from service.store.repository import Store

if TYPE_CHECKING:
    from service.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    """The application's runtime (for a route that takes the ``Request`` itself)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


RuntimeDep = Annotated["Runtime", Depends(get_runtime)]


async def get_store(runtime: RuntimeDep) -> Store:
    return runtime.store


StoreDep = Annotated[Store, Depends(get_store)]

PathId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
"""The id of a stored resource in a path: ids are UUIDs, so nothing else (a NUL, a
quote) ever reaches a query."""


async def authenticate(request: Request) -> Principal:
    """The caller's key and role, as the edge (``service.api.edge``) authenticated it for
    every ``/api/`` request; a route asks for it only to check the role or to record who
    acted. Without it (a route outside ``/api/``, or an application built without the
    edge) the request is refused: never let through."""
    principal = request.scope.get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise HTTPException(401, "an API key is required", {"WWW-Authenticate": "Bearer"})
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that admits the given roles (admin is always admitted)."""
    names = ", ".join(r.value for r in (*roles, Role.ADMIN))

    async def _check(principal: PrincipalDep) -> Principal:
        if not principal.may(*roles):
            raise HTTPException(403, f"role {principal.role.value} may not do this; needs {names}")
        return principal

    return _check


EngineerDep = Annotated[Principal, Depends(require(Role.ENGINEER))]
ScadaDep = Annotated[Principal, Depends(require(Role.SCADA))]
# Acknowledging an alarm is an operator action on the plant: scada (and admin) only; an
# hmi key is read-only (issue 5 supersedes issue 4's "hmi/scada").
OperatorDep = Annotated[Principal, Depends(require(Role.SCADA))]
# The laboratory enters its results and nothing else (it reads like hmi).
LabDep = Annotated[Principal, Depends(require(Role.LAB))]
AdminDep = Annotated[Principal, Depends(require())]


_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


_ISO_DATE = re.compile(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_text(value: object) -> object:
    """A query's instant must be written as a date and time: pydantic would also take
    a bare number (``to=0.5``) as seconds since 1970, which no client means."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date-time with a zone, e.g. 2026-01-01T00:00:00Z")
    return value


QueryInstant = Annotated[datetime, BeforeValidator(_iso_text)]
"""A datetime query parameter: ISO 8601 text only (a 422 naming it otherwise)."""


def utc_instant(value: datetime, field: str) -> datetime:
    """A query's instant in UTC; one without a zone, or out of range, names ``field``."""
    if value.tzinfo is None:
        raise InvalidInput(field, f"{field} needs a time zone (e.g. 2026-01-01T00:00:00Z)")
    try:
        utc = value.astimezone(UTC)
        utc.timestamp()
    except (OverflowError, ValueError) as err:
        # 0001-01-01T00:00:00+23:59 is a valid date-time but no instant in range.
        raise InvalidInput(field, f"{field} is out of range ({err})") from err
    if not _EARLIEST <= utc <= _LATEST:
        raise InvalidInput(field, f"{field} must be between 1970-01-01 and 9000-01-01 (UTC)")
    return utc
