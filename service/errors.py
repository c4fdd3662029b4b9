"""One error tree for the whole service.

Every error carries a stable snake_case ``code`` that clients may branch on and a
human ``detail``. Lower-layer errors (asyncua, SQLAlchemy) are mapped into this
tree at the boundary with ``raise ... from err``; the HTTP layer maps the tree to
status codes once, in ``service.api.errors``.
"""

from __future__ import annotations

from typing import Any


class BackfillError(Exception):
    """Base of every error the service raises on purpose."""

    code: str = "internal_error"
    # Seconds a client should wait before trying again (Retry-After), where that helps.
    retry_after_s: int | None = None

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra: dict[str, Any] = extra

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.extra}


# --- input and domain errors (HTTP 422) -------------------------------------------------


class InvalidInput(BackfillError):
    """A value that is well-formed but violates a domain rule; names the field."""

    code = "invalid_input"

    def __init__(self, field: str, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail, code=code, field=field, **extra)
        self.field = field


class RecipeInfeasible(BackfillError):
    """No recipe inside the given limits reaches the required strength."""

    code = "recipe_infeasible"


class OutsideCalibrationRange(BackfillError):
    """A strength prediction was asked for far outside the data a model was fitted on."""

    code = "outside_calibration_range"


class CalibrationRejected(BackfillError):
    """Laboratory data that cannot give a usable strength model."""

    code = "calibration_rejected"


# --- who may (HTTP 403) -----------------------------------------------------------------


class Forbidden(BackfillError):
    """The caller's credential may not do this as asked (e.g. approve under another
    person's name)."""

    code = "forbidden"


# --- resources (HTTP 404 / 409) ---------------------------------------------------------


class NotFound(BackfillError):
    code = "not_found"


class Conflict(BackfillError):
    code = "conflict"


# --- plant link (HTTP 503 unless stated) ------------------------------------------------


class PlantLinkError(BackfillError):
    """Anything that went wrong talking to the PLC."""

    code = "plant_link_error"


class PlantLinkDown(PlantLinkError):
    code = "plant_link_down"


class TagMapError(PlantLinkError):
    """The tag map does not match the server: missing node, unwritable type, bad file."""

    code = "tag_map_invalid"


class SetpointRejected(PlantLinkError):
    """The PLC refused one or more values of a setpoint set."""

    code = "setpoint_rejected"


class SetpointUnconfirmed(PlantLinkError):
    """The PLC did not acknowledge a setpoint set in time or read back other values."""

    code = "setpoint_unconfirmed"


class NotTheWriter(PlantLinkError):
    """This instance is a standby: another instance holds the writer lease."""

    code = "not_the_writer"


class PlantNotReady(PlantLinkError):
    """The PLC is connected but not in a mode that accepts setpoints from the service."""

    code = "plant_not_ready"


# --- the service itself (HTTP 429 / 503) ------------------------------------------------


class TooManyStreams(BackfillError):
    """A caller (or the service) has as many event streams open as it may."""

    code = "too_many_streams"


class TooManyExports(BackfillError):
    """A caller (or the service) has as many bulk exports running as it may."""

    code = "too_many_exports"
    retry_after_s = 10


class ServiceStopping(BackfillError):
    """The service is shutting down: it has put the plant in its safe state and takes
    no further pour action."""

    code = "service_stopping"


# --- store (HTTP 503) -------------------------------------------------------------------


class StoreUnavailable(BackfillError):
    """The database could not be read or written. ``cause`` is what the driver said
    (SQLite's or asyncpg's own words): it goes into ``detail`` for the log, never into
    an answer, which says only what could not be done (``to_dict``)."""

    code = "store_unavailable"

    def __init__(self, detail: str, *, cause: str | None = None, **extra: Any) -> None:
        super().__init__(detail if cause is None else f"{detail}: {cause}", **extra)
        self.public_detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.public_detail, **self.extra}
