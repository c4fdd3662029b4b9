"""Who the presented key is: the page learns its role here to choose what it offers,
and the person it acts as to show who is signed in."""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.api.deps import PrincipalDep
from service.api.routes import api_router

router = api_router("auth")


class WhoAmIPublic(BaseModel):
    role: str = Field(description="The role the key grants.")
    person: str = Field(
        description="Who acts with this key: the person the key names, or for a key of a "
        "role alone the role and the key's id (e.g. engineer:1c530c3f). Every act is "
        "recorded under it."
    )
    named: bool = Field(description="The key names its person (false: a key of a role alone).")
    key_id: str = Field(description="The first 8 hex digits of the key's SHA-256.")


@router.get("/whoami", response_model=WhoAmIPublic)
async def whoami(who: PrincipalDep) -> WhoAmIPublic:
    """The role and person of the key (any valid key); never the key itself."""
    return WhoAmIPublic(role=who.role.value, person=who.person, named=who.named, key_id=who.key_id)
