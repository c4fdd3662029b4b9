"""Every setting as an operator reads it: environment variable, kind and range, default
and meaning, generated from the settings model (``service.settings.Settings``) so that
``python -m service --settings`` and the group list in ``--help`` cannot drift from
what the service actually reads.

Only defaults are shown, never a value from the environment (it may be a key or a
password); a variable that is set is marked as such.
"""

from __future__ import annotations

import os
import re
import textwrap
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from service.settings import NESTING, PREFIX, Settings

#: The name of the group of top-level settings (BACKFILL_<NAME>, not nested).
GENERAL = "general"
WIDTH = 88


@dataclass(frozen=True)
class SettingDoc:
    env: str
    kind: str
    default: str
    description: str


@dataclass(frozen=True)
class GroupDoc:
    name: str
    env_pattern: str
    summary: str
    settings: tuple[SettingDoc, ...]


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _summary(model: type[BaseModel]) -> str:
    """The first sentence of a model's docstring, on one line; a long one up to its
    first colon."""
    text = " ".join((model.__doc__ or "").split())
    match = re.search(r"(?<=\.)\s", text)
    sentence = text[: match.start()] if match else text
    if len(sentence) > 90 and ":" in sentence:
        sentence = sentence.split(":", 1)[0] + "."
    return sentence


def _number(value: Any) -> str:
    if isinstance(value, float) and float(f"{value:g}") == value:
        return f"{value:g}"
    return str(value)


def _constraints(info: FieldInfo) -> list[str]:
    parts = []
    for item in info.metadata:
        if isinstance(item, annotated_types.Gt):
            parts.append(f"> {_number(item.gt)}")
        elif isinstance(item, annotated_types.Ge):
            parts.append(f">= {_number(item.ge)}")
        elif isinstance(item, annotated_types.Lt):
            parts.append(f"< {_number(item.lt)}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"<= {_number(item.le)}")
        elif isinstance(item, annotated_types.MinLen):
            parts.append(f"at least {item.min_length} characters")
        elif isinstance(item, annotated_types.MaxLen):
            parts.append(f"at most {item.max_length} characters")
    return parts


def _kind(info: FieldInfo) -> str:
    """The kind of value with its range: "number > 0 and <= 300", "text, optional"."""
    annotation = info.annotation
    optional = False
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        optional = len(members) < len(get_args(annotation))
        annotation = members[0] if len(members) == 1 else annotation
        origin = get_origin(annotation)
    if origin is Literal:
        kind = "one of " + ", ".join(str(arg) for arg in get_args(annotation))
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        kind = "one of " + ", ".join(str(member.value) for member in annotation)
    elif origin is list:
        kind = "comma-separated list"
    elif annotation is bool:
        kind = "true or false"
    elif annotation is int:
        kind = "integer"
    elif annotation is float:
        kind = "number"
    elif annotation is SecretStr:
        kind = "secret text"
    elif annotation is Path:
        kind = "file path"
    elif annotation is str:
        kind = "text"
    else:
        kind = getattr(annotation, "__name__", str(annotation))
    constraints = _constraints(info)
    if constraints:
        kind = f"{kind} " + " and ".join(constraints)
    return f"{kind}, optional" if optional else kind


def _default(info: FieldInfo) -> str:
    value = info.get_default(call_default_factory=True)
    if value is None or value == []:
        return "unset"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _leaves(model: type[BaseModel], prefix: str) -> Iterable[tuple[str, FieldInfo]]:
    for name, info in model.model_fields.items():
        nested = _nested_model(info.annotation)
        if nested is None:
            yield f"{prefix}{name.upper()}", info
        else:
            yield from _leaves(nested, f"{prefix}{name.upper()}{NESTING}")


def _docs(fields: Iterable[tuple[str, FieldInfo]]) -> tuple[SettingDoc, ...]:
    return tuple(
        SettingDoc(
            env=env,
            kind=_kind(info),
            default=_default(info),
            description=" ".join((info.description or "").split()),
        )
        for env, info in fields
    )


def groups() -> list[GroupDoc]:
    """The general (top-level) settings first, then each group in the model's order."""
    general = [
        (f"{PREFIX}{name.upper()}", info)
        for name, info in Settings.model_fields.items()
        if _nested_model(info.annotation) is None
    ]
    found = [
        GroupDoc(
            name=GENERAL,
            env_pattern=f"{PREFIX}<NAME>",
            summary="Store, API keys, timing of the service itself, logging.",
            settings=_docs(general),
        )
    ]
    for name, info in Settings.model_fields.items():
        nested = _nested_model(info.annotation)
        if nested is None:
            continue
        prefix = f"{PREFIX}{name.upper()}{NESTING}"
        found.append(
            GroupDoc(
                name=name,
                env_pattern=f"{prefix}<NAME>",
                summary=_summary(nested),
                settings=_docs(_leaves(nested, prefix)),
            )
        )
    return found


def group_names() -> list[str]:
    return [group.name for group in groups()]


def group_table() -> str:
    """One line (wrapped) per group, for ``--help``."""
    lines = []
    for group in groups():
        head = f"  {group.name:<12} {group.env_pattern}"
        lines.append(head)
        lines.extend(
            textwrap.wrap(group.summary, WIDTH, initial_indent=" " * 17, subsequent_indent=" " * 17)
        )
    return "\n".join(lines)


def listing(only: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Every setting (or one group's), with its kind and range, default and meaning."""
    environ = os.environ if environ is None else environ
    present = {name.upper() for name in environ}
    out = [
        "Settings of python -m service: environment variables with the prefix "
        f"{PREFIX}, a group's nested with {NESTING} ({PREFIX}PLC{NESTING}ENDPOINT). "
        "Defaults are shown; [set] marks a variable set in this environment (its value "
        "is not shown). deploy/backfill.env.example documents the same settings as an "
        "env file.",
    ]
    out = textwrap.wrap(out[0], WIDTH)
    for group in groups():
        if only is not None and group.name != only:
            continue
        out.append("")
        out.extend(textwrap.wrap(f"[{group.name}] {group.summary}", WIDTH))
        for setting in group.settings:
            mark = "  [set]" if setting.env in present else ""
            out.append(f"  {setting.env}{mark}")
            out.extend(
                textwrap.wrap(
                    f"{setting.kind}; default: {setting.default}",
                    WIDTH,
                    initial_indent=" " * 6,
                    subsequent_indent=" " * 8,
                )
            )
            if setting.description:
                out.extend(
                    textwrap.wrap(
                        setting.description,
                        WIDTH,
                        initial_indent=" " * 6,
                        subsequent_indent=" " * 6,
                    )
                )
    return "\n".join(out) + "\n"
