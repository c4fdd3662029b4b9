"""Who the presented key is: the page learns its role here to choose what it offers."""

from __future__ import annotations

from service.api.deps import PrincipalDep
from service.api.routes import api_router

router = api_router("auth")


@router.get("/whoami")
async def whoami(who: PrincipalDep) -> dict[str, str]:
    """The role of the key (any valid key); never the key itself."""
    return {"role": who.role.value}
