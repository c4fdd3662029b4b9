"""Building blocks of the request and response schemas: strict models, finite numbers,
text without control characters, and only Unicode text anywhere in a request."""

from __future__ import annotations

import re
import types
import typing
from datetime import datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic import Strict as StrictType
from pydantic_core import InitErrorDetails, PydanticCustomError

# C0 controls (NUL among them) and DEL/C1: never part of a name, a label or a note. A
# NUL is stored by SQLite but refused by PostgreSQL, so it must never reach a store.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Multi-line text (a CSV) keeps its tabs and line ends.
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


# A lone UTF-16 surrogate (JSON "\ud800" without its pair, or the bytes ED A0 80) is no
# Unicode character: neither SQLite nor PostgreSQL can store it (their drivers fail on
# encoding it as UTF-8), and no client should get it back.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SCALARS = (bool, int, float, type(None))


def _surrogate_in(text: str) -> str | None:
    """Where a lone surrogate sits in ``text`` (line and character for a text of several
    lines, such as a lab sheet), or None."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    at = found.start()
    where = f"U+{ord(found.group()):04X} at character {at + 1}"
    if "\n" in text:
        line = text.count("\n", 0, at) + 1
        column = at - (text.rfind("\n", 0, at) + 1) + 1
        where = f"U+{ord(found.group()):04X} at line {line}, character {column}"
    return where


def not_unicode(value: Any, path: str = "") -> str | None:
    """Why ``value`` (a text, or a list or mapping holding texts, keys included) is not
    Unicode text, naming the place inside it; None when it is. Models inside are
    checked by their own validators."""
    if isinstance(value, (_SCALARS, BaseModel)):
        return None
    if isinstance(value, str):
        where = _surrogate_in(value)
        return None if where is None else f"{path + ': ' if path else ''}a lone surrogate {where}"
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _surrogate_in(key) is not None:
                return f"{path + ': ' if path else ''}a lone surrogate in the key {key!a}"
            inner = not_unicode(item, f"{path}.{key}" if path else str(key))
            if inner is not None:
                return inner
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            inner = not_unicode(item, f"{path}[{index}]")
            if inner is not None:
                return inner
    return None


def _may_hold_text(annotation: Any) -> bool:
    """Whether a field of this type can hold client text: ``str`` or ``Any`` anywhere in
    it (``list[str]``, ``dict[str, float]``, ``str | None``, free JSON). A model inside
    checks its own fields; an enum or a literal holds only its own values."""
    if annotation is str or annotation is Any:
        return True
    if isinstance(annotation, type):
        return False  # a model, an enum, a number, a datetime
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return False
    if origin is Annotated:
        return _may_hold_text(typing.get_args(annotation)[0])
    if origin is None and not isinstance(annotation, types.UnionType):
        return False
    return any(_may_hold_text(arg) for arg in typing.get_args(annotation))


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

    # The fields of each request model that can hold text (found once per model).
    __text_fields__: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.__text_fields__ = tuple(
            name for name, info in cls.model_fields.items() if _may_hold_text(info.annotation)
        )

    @model_validator(mode="after")
    def _unicode_text(self) -> Self:
        """Every text of every request field (names, ids, notes, a lab sheet's cells,
        free JSON and its keys) is Unicode: a lone surrogate is a 422 naming the field,
        never a store error. One check for every request model, so a field added later
        is covered without being listed; only the fields that can hold text are read."""
        for name in self.__text_fields__:
            value = getattr(self, name)
            problem = not_unicode(value)
            if problem is not None:
                error = PydanticCustomError(
                    "text_not_unicode",
                    "the text is not valid Unicode ({problem})",
                    {"problem": problem},
                )
                raise ValidationError.from_exception_data(
                    type(self).__name__, [InitErrorDetails(type=error, loc=(name,), input=value)]
                )
        return self


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


APPROVER_DESCRIPTION = (
    "The approving person. With a key that names its person it may be left out (the "
    "key's person approves) and must otherwise be that name: another is a 403 "
    "approved_by_mismatch. With a key of a role alone it is recorded as given (a claim: "
    "the audit entry names the key), or as the role and the key's id when left out."
)
