"""Building blocks of the request and response schemas: strict models, finite numbers."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Requests: unknown fields, NaN and infinity are refused (422 naming the field)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


SpecificGravity = Annotated[
    float, Field(gt=1.0, le=8.0, description="Specific gravity of the solid (water = 1).")
]
Percent = Annotated[float, Field(ge=0.0, le=100.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
ComponentName = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$", examples=["slag"])
]
