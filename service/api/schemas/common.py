"""Building blocks of the request and response schemas: strict models, finite numbers,
text without control characters."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic import Strict as StrictType

# C0 controls (NUL among them) and DEL/C1: never part of a name, a label or a note. A
# NUL is stored by SQLite but refused by PostgreSQL, so it must never reach a store.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Multi-line text (a CSV) keeps its tabs and line ends.
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _control_character(text: str, pattern: re.Pattern[str]) -> str | None:
    found = pattern.search(text)
    return None if found is None else f"U+{ord(found.group()):04X} at character {found.start()}"


def no_control_characters(text: str) -> str:
    where = _control_character(text, _CONTROL)
    if where is not None:
        raise ValueError(f"control characters are not allowed ({where})")
    return text


def no_control_characters_multiline(text: str) -> str:
    where = _control_character(text, _CONTROL_MULTILINE)
    if where is not None:
        raise ValueError(f"control characters other than tab and line ends ({where})")
    return text


def free_json_without_controls(value: Any, path: str = "") -> Any:
    """A free JSON document (a design record): every key and string value is checked,
    the message names the place inside it."""
    if isinstance(value, str):
        if _control_character(value, _CONTROL_MULTILINE) is not None:
            raise ValueError(f"{path or 'value'}: control characters are not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            if _control_character(str(key), _CONTROL) is not None:
                raise ValueError(f"{path}.{key!r}: control characters in a key")
            free_json_without_controls(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            free_json_without_controls(item, f"{path}[{index}]")
    return value


class Strict(BaseModel):
    """Requests: unknown fields, NaN and infinity are refused, and types are strict: a
    number is a JSON number (not ``true``, not ``"5"``), a flag is ``true``/``false``
    (422 naming the field). A request field that is a date-time or an enum must say
    ``Field(strict=False)``: JSON carries them as strings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


Text = Annotated[str, AfterValidator(no_control_characters)]
"""One line of text from a client: a name, a label, an id."""
MultilineText = Annotated[str, AfterValidator(no_control_characters_multiline)]
"""Text that may span lines (a CSV document)."""
JsonDateTime = Annotated[datetime, StrictType(False)]
"""A date-time in a request body (an ISO 8601 string)."""

SpecificGravity = Annotated[
    float, Field(gt=1.0, le=8.0, description="Specific gravity of the solid (water = 1).")
]
Percent = Annotated[float, Field(ge=0.0, le=100.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
ComponentName = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$", examples=["slag"])
]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
ResourceId = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
"""The id of a stored resource (a recipe, a calibration, a pour)."""
