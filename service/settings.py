"""Settings, read from the environment with the prefix ``BACKFILL_`` (nested with ``__``).

Nothing here is evaluated at import time: ``Settings()`` is built by the entry point
(``python -m service``) or by a test, and handed to ``create_app``.
"""

from __future__ import annotations

import hashlib
import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Role(StrEnum):
    HMI = "hmi"
    SCADA = "scada"
    ENGINEER = "engineer"
    ADMIN = "admin"


# Keys that look like examples copied from documentation are refused.
_PLACEHOLDER_KEYS = {"changeme", "change-me", "secret", "password", "key", "test", "example"}
_MIN_KEY_LENGTH = 16
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


class ApiKey(BaseModel):
    """One client's key: the key itself, or (``hashed``) only its SHA-256 digest in
    hex, so that the configuration at rest (an env file, a Kubernetes Secret) does not
    hold the key. ``python -m service.keys`` makes a key and its digest entry."""

    role: Role
    key: SecretStr
    hashed: bool = False

    def digest(self) -> bytes:
        value = self.key.get_secret_value()
        return bytes.fromhex(value) if self.hashed else hashlib.sha256(value.encode()).digest()


class SecurityMode(StrEnum):
    NONE = "None"
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class PlcSettings(BaseModel):
    """The OPC UA link to the PLC (CONTRACT "PLC interface")."""

    endpoint: str | None = Field(
        default=None,
        description="opc.tcp:// URL of the PLC; unset starts the built-in simulator.",
    )
    tag_map: Path | None = Field(
        default=None, description="TOML tag map; unset uses the simulator's own map."
    )
    publishing_interval_ms: float = Field(default=500.0, gt=0, le=60_000)
    stale_after_intervals: float = Field(
        default=4.0, gt=1, description="A value older than this many intervals is bad."
    )
    heartbeat_interval_s: float = Field(default=1.0, gt=0, le=60)
    request_timeout_s: float = Field(default=4.0, gt=0, le=120)
    ack_timeout_s: float = Field(default=5.0, gt=0, le=120)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=10.0, gt=0)
    security_mode: SecurityMode = SecurityMode.NONE
    security_policy: str = Field(default="Basic256Sha256")
    certificate: Path | None = None
    private_key: Path | None = None
    server_certificate: Path | None = Field(
        default=None, description="Trusted server certificate (trust list of one)."
    )
    trust_dir: Path | None = Field(
        default=None, description="Folder of trusted server certificates (DER or PEM)."
    )
    allow_untrusted_server: bool = Field(
        default=False, description="Skip server certificate validation; never in production."
    )
    allow_insecure: bool = Field(
        default=False,
        description="Allow security_mode None with an endpoint: for a simulator or a test "
        "PLC, never in production. (The built-in simulator needs nothing.)",
    )
    username: str | None = None
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _security_complete(self) -> PlcSettings:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        if self.security_mode is not SecurityMode.NONE:
            if self.certificate is None or self.private_key is None:
                raise ValueError(
                    "security_mode Sign/SignAndEncrypt needs certificate and private_key"
                )
            if (
                self.server_certificate is None
                and self.trust_dir is None
                and not self.allow_untrusted_server
            ):
                raise ValueError(
                    "a secured link needs server_certificate or trust_dir "
                    "(or allow_untrusted_server explicitly)"
                )
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if (
            self.endpoint is not None
            and self.security_mode is SecurityMode.NONE
            and not self.allow_insecure
        ):
            raise ValueError(
                "an unsecured link to a PLC: set security_mode SignAndEncrypt (with "
                "certificate, private_key and a trust list), or allow_insecure for a "
                "simulator or a test PLC"
            )
        return self


class SimSettings(BaseModel):
    """The built-in plant simulator (CONTRACT "Running")."""

    speed: float = Field(default=1.0, gt=0, le=1000, description="Process time / wall time.")
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port.")
    seed: int | None = Field(default=None, description="Random seed for disturbances.")
    heartbeat_timeout_s: float = Field(
        default=5.0, gt=0, description="Wall seconds without a heartbeat change before safe state."
    )

    @field_validator("speed")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be finite")
        return v


class HistorySettings(BaseModel):
    """The measurement history behind the trends (stored in the same store)."""

    sample_interval_s: float = Field(default=1.0, ge=0.1, le=60, description="Wall seconds.")
    flush_interval_s: float = Field(default=5.0, gt=0, le=300)
    raw_retention_days: float = Field(default=7.0, gt=0, le=366)
    minute_retention_days: float = Field(default=400.0, gt=0, le=3660)
    buffer_limit_rows: int = Field(
        default=86_400, ge=60, description="Rows kept in memory while the store is down."
    )


class FailoverSettings(BaseModel):
    """Two instances on one PostgreSQL and one PLC: one writer, elected by a lease."""

    enabled: bool = Field(
        default=False,
        description="Elect the writer through a PostgreSQL lease; needs PostgreSQL.",
    )
    lease_ttl_s: float = Field(default=6.0, ge=1, le=60)
    renew_interval_s: float = Field(default=2.0, gt=0, le=20)
    instance_id: str | None = Field(
        default=None, max_length=200, description="Default: host name and process id."
    )

    @model_validator(mode="after")
    def _renew_inside_ttl(self) -> FailoverSettings:
        if self.renew_interval_s * 2 > self.lease_ttl_s:
            raise ValueError("renew_interval_s must be at most half of lease_ttl_s")
        return self


class ApiSettings(BaseModel):
    """Limits of the HTTP API."""

    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    write_rate_per_s: float = Field(
        default=20.0, gt=0, le=10_000, description="Sustained writes per second per caller."
    )
    write_burst: int = Field(default=40, ge=1, le=100_000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BACKFILL_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    database_url: str = Field(
        default="sqlite+aiosqlite:///./backfill.db",
        description="SQLAlchemy async URL; postgresql+asyncpg://... for PostgreSQL.",
    )
    api_keys: Annotated[list[ApiKey], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated role:key or role:sha256:<hex digest of the key> "
        "entries; roles hmi, scada, engineer, admin.",
    )
    plc: PlcSettings = Field(default_factory=PlcSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    failover: FailoverSettings = Field(default_factory=FailoverSettings)
    checkpoint_interval_s: float = Field(default=5.0, gt=0, le=300)
    start_timeout_s: float = Field(
        default=300.0,
        ge=30,
        le=3600,
        description="Plant seconds after a start or resume for the PLC to report running "
        "(its flush included); then the pour pauses as plc_did_not_start.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line, with pour_id."
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, raw: object) -> object:
        if not isinstance(raw, str):
            return raw
        keys: list[dict[str, str | bool]] = []
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            role, sep, key = item.partition(":")
            if not sep or not key.strip():
                raise ValueError("each entry must be role:key or role:sha256:<hex digest>")
            scheme, sep, digest = key.strip().partition(":")
            if sep and scheme == "sha256":
                keys.append({"role": role.strip(), "key": digest.strip(), "hashed": True})
            else:
                keys.append({"role": role.strip(), "key": key.strip()})
        return keys

    @field_validator("api_keys")
    @classmethod
    def _refuse_weak_keys(cls, keys: list[ApiKey]) -> list[ApiKey]:
        seen: set[bytes] = set()
        for k in keys:
            value = k.key.get_secret_value()
            if k.hashed:
                if not _SHA256_HEX.fullmatch(value):
                    raise ValueError(
                        f"the {k.role.value} key's sha256 digest must be 64 hex digits"
                    )
            elif value.lower() in _PLACEHOLDER_KEYS or len(value) < _MIN_KEY_LENGTH:
                raise ValueError(
                    f"the {k.role.value} key is a placeholder or shorter than "
                    f"{_MIN_KEY_LENGTH} characters"
                )
            digest = k.digest()
            if digest in seen:
                raise ValueError("the same key is given twice")
            seen.add(digest)
        return keys

    @model_validator(mode="after")
    def _failover_needs_postgresql(self) -> Settings:
        if self.failover.enabled and not self.database_url.startswith("postgresql"):
            raise ValueError("failover.enabled needs a PostgreSQL database_url")
        return self

    @property
    def embedded_simulator(self) -> bool:
        return self.plc.endpoint is None
