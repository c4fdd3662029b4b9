"""The audit entries of people's acts: what each records, and whose it is.

Every act of a person (an approval, a pour command, an alarm acknowledgement,
laboratory results, a stage's hold released, a stope closed) is an entry of the
hash-chained audit log with its kind, the role it was done in and the person
(:class:`service.core.people.Actor`); an approval's entry is stored in the same
transaction as the approval. These functions give the entry (the arguments of
``Store.append_audit``) and nothing else: values in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from service.core.people import Actor

#: The reasons of a ``pour_command`` entry.
POUR_ACTIONS = ("create", "start", "pause", "resume", "stop", "samples")


def pour_command(
    actor: Actor,
    action: str,
    pour_id: str,
    new: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """A pour command (kind ``pour_command``, the action its reason: one of
    :data:`POUR_ACTIONS`), naming the person who gave it."""
    if action not in POUR_ACTIONS:
        raise ValueError(f"no pour command {action!r}")
    return {
        "kind": "pour_command",
        "reason": action,
        "role": actor.role,
        "person": actor.person,
        "pour_id": pour_id,
        "new": dict(new or {}),
        "at": at,
    }


def alarm_acknowledgement(
    actor: Actor, code: str, severity: str, state: str, pour_id: str | None, at: datetime
) -> dict[str, Any]:
    """An alarm acknowledged (kind ``alarm_acknowledgement``, the alarm's code its
    reason), with the alarm's state after it and the pour running then."""
    return {
        "kind": "alarm_acknowledgement",
        "reason": code,
        "role": actor.role,
        "person": actor.person,
        "pour_id": pour_id,
        "new": {"code": code, "severity": severity, "state": state},
        "at": at,
    }


def lab_results(actor: Actor, source: str, values: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Laboratory results entered at once (kind ``lab_result``; reason ``api`` for one
    entry, ``sheet`` for a lab sheet's): which entries of which samples, with what
    strength, and who entered them."""
    return {
        "kind": "lab_result",
        "reason": source,
        "role": actor.role,
        "person": actor.person,
        "new": {
            "sheet_id": values[0].get("sheet_id") if values else None,
            "entries": [
                {
                    "id": v["id"],
                    "sample_id": v["sample_id"],
                    "corrects": v.get("corrects"),
                    "curing_days": v.get("curing_days"),
                    "ucs_kpa": v.get("ucs_kpa"),
                }
                for v in values
            ],
        },
    }


def recipe_approval(
    recipe: Mapping[str, Any], actor: Actor, detail: str | None = None
) -> dict[str, Any]:
    """The audit entry of a recipe version's approval (kind ``recipe_approval``);
    ``detail``: what the approving engineer stated (why a recipe the plant cannot make
    from its feed is approved all the same: reason ``approved_unmakeable``)."""
    return {
        "kind": "recipe_approval",
        "reason": "approved" if detail is None else "approved_unmakeable",
        "detail": detail,
        "role": actor.role,
        "person": actor.person,
        "new": {
            "recipe_id": recipe["id"],
            "name": recipe["name"],
            "version": recipe["version"],
            "approved_by": recipe["approved_by"],
            "mix": recipe["mix"],
        },
        "at": recipe["approved_at"],
    }


def calibration_approval(
    calibration: Mapping[str, Any], actor: Actor, *, reason: str = "approved"
) -> dict[str, Any]:
    """The audit entry of a calibration version's approval (kind
    ``calibration_approval``): ``approved`` a proposed version approved, ``stored`` one
    approved by being stored."""
    proposal = calibration.get("proposal") or {}
    return {
        "kind": "calibration_approval",
        "reason": reason,
        "role": actor.role,
        "person": actor.person,
        "new": {
            "calibration_id": calibration["id"],
            "name": calibration["name"],
            "version": calibration["version"],
            "approved_by": calibration["approved_by"],
            "proposed_from": calibration.get("proposed_from"),
            "coefficients": dict(calibration["model"].get("coefficients", {})),
            "n_rows": len(calibration["rows"]),
            "n_new_rows": proposal.get("n_new"),
        },
        "at": calibration["approved_at"],
    }
