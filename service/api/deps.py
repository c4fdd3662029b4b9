"""Dependencies published as ``Annotated`` aliases, so routes stay one-liners.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread,
which costs two thread hops per request for work that never blocks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Path, Request

from service.api.auth import Principal, parse_bearer
from service.api.schemas.common import ID_PATTERN
from service.settings import Role
from service.store.repository import Store

if TYPE_CHECKING:
    from service.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated["Runtime", Depends(get_runtime)]


async def get_store(runtime: RuntimeDep) -> Store:
    return runtime.store


StoreDep = Annotated[Store, Depends(get_store)]

PathId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
"""The id of a stored resource in a path: ids are UUIDs, so nothing else (a NUL, a
quote) ever reaches a query."""

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def authenticate(request: Request, runtime: RuntimeDep) -> Principal:
    token = parse_bearer(request.headers.get("authorization", ""))
    if token is None:
        raise HTTPException(401, "an API key is required: Authorization: Bearer <key>", _CHALLENGE)
    principal = runtime.keys.authenticate(token)
    if principal is None:
        raise HTTPException(401, "the API key is not valid", _CHALLENGE)
    request.state.principal = principal
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
