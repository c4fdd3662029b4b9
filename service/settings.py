"""Settings, read from the environment with the prefix ``BACKFILL_`` (nested with ``__``).

Nothing here is evaluated at import time: ``Settings()`` is built by the entry point
(``python -m service``) or by a test, and handed to ``create_app``.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from service.core.people import Credential, check_person, parse_key_entries
from service.core.people import Role as Role  # where the rest of the service finds it
from service.errors import InvalidInput

PREFIX = "BACKFILL_"
NESTING = "__"
#: Reserved for the project's own test suite (e.g. BACKFILL_TEST_STRICT); never settings.
TEST_PREFIX = "BACKFILL_TEST_"


# Keys that look like examples copied from documentation are refused.
_PLACEHOLDER_KEYS = {"changeme", "change-me", "secret", "password", "key", "test", "example"}
_MIN_KEY_LENGTH = 16
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


class ApiKey(BaseModel):
    """One client's key: the key itself, or (``hashed``) only its SHA-256 digest in
    hex, so that the configuration at rest (an env file, a Kubernetes Secret) does not
    hold the key; ``person`` the person who holds it (None: a key of the role alone,
    whose acts are recorded as the role and the key's id). ``python -m service.keys``
    makes a key and its digest entry."""

    role: Role
    key: SecretStr
    hashed: bool = False
    person: str | None = None

    @field_validator("person")
    @classmethod
    def _person(cls, person: str | None) -> str | None:
        if person is None:
            return None
        try:
            return check_person(person)
        except InvalidInput as err:
            raise ValueError(err.detail) from err

    def digest(self) -> bytes:
        value = self.key.get_secret_value()
        return bytes.fromhex(value) if self.hashed else hashlib.sha256(value.encode()).digest()

    def credential(self) -> Credential:
        return Credential(self.role, self.digest(), self.person)


class SecurityMode(StrEnum):
    NONE = "None"
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class PlcSettings(BaseModel):
    """The OPC UA link to the PLC (docs/INTEGRATION.md "PLC interface")."""

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


class OpcUaServerSettings(BaseModel):
    """The service's own OPC UA server, for a SCADA to browse (off by default): the
    plant, the active pour, the recipe in force and the alarms as variables, the pour
    actions and alarm acknowledgement as methods. A client logs in with a user name
    (any) and an API key as its password; the key's role decides what it may call,
    as on the API. Anonymous clients are refused."""

    enabled: bool = False
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=4841, ge=1, le=65535)
    application_uri: str | None = Field(
        default=None,
        min_length=5,
        max_length=200,
        pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$",
        description="This instance's application URI, carried by its certificate (python "
        "-m service.scada.cert makes one); unset: urn:<host name>:backfill:service.",
    )
    security_mode: SecurityMode = Field(
        default=SecurityMode.SIGN_AND_ENCRYPT,
        description="Basic256Sha256 with this mode; None only with allow_insecure.",
    )
    certificate: Path | None = Field(default=None, description="The server's certificate.")
    private_key: Path | None = Field(default=None, description="Its private key (PEM).")
    trust_dir: Path | None = Field(
        default=None,
        description="Client certificates trusted (files pinned, or CAs they chain to); "
        "unset: any client certificate (the API key still decides).",
    )
    allow_insecure: bool = Field(
        default=False,
        description="Allow security_mode None (API keys then cross the network in clear): "
        "for a test or a loopback-only SCADA, never in production.",
    )
    max_connections: int = Field(
        default=64, ge=2, le=1000, description="Connections held at once, logged in or not."
    )
    max_connections_per_peer: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Connections one address may hold; a newcomer beyond it takes the place "
        "of that address's oldest connection that has not opened a secured channel.",
    )
    max_unactivated: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Connections not yet logged in, in all (the rest of max_connections is "
        "kept for sessions that did); a newcomer beyond it takes the place of one that has "
        "not opened a secured channel, from the address holding the most, or is refused.",
    )
    activation_timeout_s: float = Field(
        default=10.0,
        ge=1,
        le=120,
        description="Seconds a connection has to log in before it is closed.",
    )

    @model_validator(mode="after")
    def _secured(self) -> OpcUaServerSettings:
        if self.max_unactivated > self.max_connections:
            raise ValueError("max_unactivated cannot exceed max_connections")
        if self.security_mode is SecurityMode.NONE:
            if self.enabled and not self.allow_insecure:
                raise ValueError(
                    "an unsecured OPC UA server sends API keys in clear: set security_mode "
                    "SignAndEncrypt with certificate and private_key, or allow_insecure"
                )
        elif self.enabled and (self.certificate is None or self.private_key is None):
            raise ValueError("security_mode Sign/SignAndEncrypt needs certificate and private_key")
        return self


class SparkplugSettings(BaseModel):
    """The service as a Sparkplug B edge node (off by default): NBIRTH/DBIRTH with the
    model of the OPC UA face (the plant, the pour, the recipe, the alarms; units and
    quality as metric properties, aliases, the commands as writable metrics), DDATA on
    change past a deadband at a bounded rate, DDEATH while the PLC link is down, NDEATH as
    the broker's will and on shutdown, rebirth on request, a primary host's STATE
    awaited. Pour commands (DCMD) only with commands_enabled."""

    enabled: bool = False
    host: str = Field(default="127.0.0.1", description="MQTT broker host.")
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    group_id: str = Field(default="Backfill", pattern=r"^[^/#+]+$")
    edge_node_id: str = Field(default="PastePlant", pattern=r"^[^/#+]+$")
    device_id: str = Field(default="Plant", pattern=r"^[^/#+]+$")
    keepalive_s: int = Field(
        default=30,
        ge=5,
        le=3600,
        description="MQTT keep-alive: the broker sends the will "
        "(NDEATH) about 1.5 times this after the service stops answering.",
    )
    commands_enabled: bool = Field(
        default=False,
        description="Accept DCMD Pour/Start, Pause, Resume, Stop and Alarms/Acknowledge from "
        "anyone the broker lets publish to this node's DCMD topic.",
    )
    command_role: Role = Field(
        default=Role.SCADA,
        description="The role the service records for a DCMD action that names no person.",
    )
    require_person: bool = Field(
        default=False,
        description="Refuse a DCMD that names no person (the value '<pour id or alarm code> "
        "by <person>'); false: such a command is recorded as the host's, "
        "sparkplug:<primary_host_id>.",
    )
    tls: bool = Field(default=False, description="Connect to the broker over TLS.")
    ca_certificate: Path | None = Field(
        default=None,
        description="CA certificate (PEM) the broker's certificate must chain to; unset "
        "with tls: the system's CAs.",
    )
    client_certificate: Path | None = Field(
        default=None, description="Client certificate (PEM) for a broker that asks for one."
    )
    client_key: Path | None = Field(default=None, description="Its private key (PEM).")
    primary_host_id: str | None = Field(
        default=None,
        pattern=r"^[^/#+]+$",
        max_length=200,
        description="The primary host application's id: the node waits for its STATE "
        "online before its birth, and leaves (NDEATH) while it is offline; unset: no wait.",
    )
    bd_seq_file: Path = Field(
        default=Path("sparkplug-bdseq"),
        description="File that keeps the last bdSeq, so that it goes on across restarts.",
    )
    max_ddata_per_s: float = Field(
        default=2.0,
        gt=0,
        le=50,
        description="Most DDATA messages a second; changes in between wait and merge.",
    )
    deadband_pct: float = Field(
        default=0.1,
        ge=0,
        le=10,
        description="A measurement or setpoint is sent again when it moved more than this "
        "% of its engineering range (the tag map's [ranges]) since last sent.",
    )
    deadbands: dict[str, float] = Field(
        default_factory=dict,
        description="Per metric deadband, absolute, in the metric's unit, as JSON "
        '({"Plant/Measurements/paste_density_pv": 2.0}); 0: every change.',
    )

    @field_validator("deadbands")
    @classmethod
    def _deadbands_valid(cls, value: dict[str, float]) -> dict[str, float]:
        for name, band in value.items():
            if not math.isfinite(band) or band < 0:
                raise ValueError(f"deadband of {name} must be finite and >= 0")
        return value

    @model_validator(mode="after")
    def _tls_complete(self) -> SparkplugSettings:
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("client_certificate and client_key go together")
        if not self.tls and (self.ca_certificate or self.client_certificate):
            raise ValueError("ca_certificate and client_certificate need tls")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self


class SimSettings(BaseModel):
    """The built-in plant simulator (docs/INTEGRATION.md "Running")."""

    speed: float = Field(default=1.0, gt=0, le=1000, description="Process time / wall time.")
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port.")
    seed: int | None = Field(default=None, description="Random seed for disturbances.")
    heartbeat_timeout_s: float = Field(
        default=5.0, gt=0, description="Wall seconds without a heartbeat change before safe state."
    )
    profile: Path | None = Field(
        default=None,
        description="TOML plant profile the simulator runs (feed, instruments, dead times, "
        "pump, pipe); unset: the shipped default, service/simulator/profile.toml.",
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
    """Limits of the HTTP API. A caller is the API key it presents (or, without a valid
    key, its address)."""

    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    write_rate_per_s: float = Field(
        default=20.0, gt=0, le=10_000, description="Sustained writes per second per caller."
    )
    write_burst: int = Field(default=40, ge=1, le=100_000)
    compute_rate_per_s: float = Field(
        default=500.0,
        gt=0,
        le=100_000,
        description="Sustained pure computations (proportion, strength, optimise, predict) "
        "per second per caller: they write nothing, so their limit is much higher.",
    )
    compute_burst: int = Field(default=1000, ge=1, le=1_000_000)
    max_streams_per_key: int = Field(
        default=8, ge=1, le=1000, description="Open /plant/stream connections per caller."
    )
    max_streams: int = Field(
        default=64, ge=1, le=10_000, description="Open /plant/stream connections in all."
    )
    idle_timeout_s: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="A connection that sends no complete request head for this long is closed "
        "(idle keep-alive, half-open or trickled headers); so is a request body that stops.",
    )
    stream_send_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="An event stream whose client takes no data for this long is closed.",
    )
    max_exports_per_key: int = Field(
        default=2,
        ge=1,
        le=100,
        description="Bulk exports (/export/...) a caller may have running at once; beyond: "
        "429 with Retry-After.",
    )
    max_exports: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Bulk exports running at once in all: each reads the store and encodes "
        "on the event loop the control cycle runs on.",
    )
    max_errors_listed: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Errors listed in one 422 (a lab sheet's bad rows, a body's bad fields); "
        "errors_omitted says how many more there are.",
    )


class DesignSettings(BaseModel):
    """How recipes are designed on this site: the pass fraction every design and
    prediction is stated at, on which basis (a tolerance bound with its confidence, or
    the expected pass fraction), the acceptance rules the lab's tests are judged by, and
    the strength floors that apply by default."""

    pass_fraction_pct: float = Field(
        default=90.0,
        ge=50.0,
        le=99.99,
        description="Designs are made so that this % of cylinders passes each requirement; "
        "a request may ask for another.",
    )
    basis: Literal["tolerance", "expected"] = Field(
        default="tolerance",
        description="tolerance: the pass fraction holds with CONFIDENCE_PCT confidence for "
        "the calibration at hand (a one-sided tolerance bound); expected: it holds on "
        "average over calibrations (the prediction interval), which one calibration of "
        "few cylinders can fall well short of. A request may ask for the other.",
    )
    confidence_pct: float = Field(
        default=95.0,
        ge=50.0,
        le=99.9,
        description="The confidence of a tolerance design: PASS_FRACTION_PCT % of the "
        "cylinders pass with this confidence; a request may ask for another.",
    )
    consecutive_tests: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Acceptance (ACI 318 adapted): every average of this many consecutive "
        "strength tests of a stope (a test: the mean of the cylinders of a pour cast together, "
        "at the requirement's age) must reach the requirement.",
    )
    gross_low_margin_pct: float = Field(
        default=25.0,
        ge=0.0,
        le=90.0,
        description="Acceptance: a strength test more than this % below the requirement is "
        "grossly low (a high notice); ACI 318's 500 psi means nothing at backfill strengths.",
    )
    liquefaction_floor_kpa: float = Field(
        default=100.0,
        ge=0.0,
        le=10_000.0,
        description="Minimum UCS against liquefaction, applied to every required strength "
        "unless a request sets its own (0: none).",
    )
    plant_spread_days: float = Field(
        default=90.0,
        gt=0,
        le=3660,
        description="Days of completed pours the plant's own Cw and Bw spread is pooled over.",
    )
    plant_spread_min_pours: int = Field(
        default=5, ge=1, le=10_000, description="Pours needed before their spread is used."
    )
    default_solids_sd_pct: float = Field(
        default=0.5,
        ge=0,
        le=10,
        description="The plant's Cw spread (points) a design assumes until it has the pours.",
    )
    default_binder_sd_rel_pct: float = Field(
        default=3.0,
        ge=0,
        le=50,
        description="The plant's Bw spread (% of the target) a design assumes until then.",
    )


class DiverterSettings(BaseModel):
    """The dump diverter, used when the tag map has divert_to_dump_sp and
    diverted_to_dump_pv (docs/INTEGRATION.md "PLC interface")."""

    settle_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Plant seconds Cw and Bw must both stay in band before a start's paste "
        "goes to the stope instead of the dump.",
    )
    travel_timeout_s: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="Plant seconds the valve has to prove a commanded position; then an "
        "alarm and a pause.",
    )


class PlantSettings(BaseModel):
    """What the site states of its plant: the feed (its tailings Gs and the solids range
    it delivers), the Cw window the plant holds, its pump's pressure limit. Each is
    optional: unstated, the checks use what the history shows (the feed), or nothing.
    Every recipe stored, approved, planned or poured, and every design, is checked
    against what the plant can make with it."""

    tailings_sg: float | None = Field(
        default=None, gt=1.5, le=6.0, description="Specific gravity of the plant's tailings."
    )
    feed_solids_min_pct: float | None = Field(
        default=None,
        gt=10,
        lt=100,
        description="The wettest feed the plant receives: its solids % (slurry or cake).",
    )
    feed_solids_max_pct: float | None = Field(
        default=None, gt=10, lt=100, description="The driest feed: its solids %."
    )
    cw_min_pct: float | None = Field(
        default=None, gt=30, lt=100, description="The lowest paste Cw the plant holds (%)."
    )
    cw_max_pct: float | None = Field(
        default=None, gt=30, lt=100, description="The highest paste Cw the plant holds (%)."
    )
    pump_pressure_max_kpa: float | None = Field(
        default=None, gt=0, le=30_000, description="The pump's discharge pressure limit (kPa)."
    )
    history_days: float = Field(
        default=14.0, gt=0, le=366, description="Days of history the plant's feed is learned from."
    )
    min_history_hours: float = Field(
        default=4.0,
        ge=0,
        le=10_000,
        description="Running hours of history before what it shows of the feed is used.",
    )

    @model_validator(mode="after")
    def _pairs(self) -> PlantSettings:
        pairs = (("feed_solids_min_pct", "feed_solids_max_pct"), ("cw_min_pct", "cw_max_pct"))
        for low, high in pairs:
            a, b = getattr(self, low), getattr(self, high)
            if (a is None) != (b is None):
                raise ValueError(f"{low} and {high} are stated together")
            if a is not None and b is not None and a >= b:
                raise ValueError(f"{low} must be below {high}")
        return self


class DumpSettings(BaseModel):
    """What a pour may send to the dump (start-up paste, paste out of spec) since its
    last start or resume before it pauses with a high alarm naming the cause; 0 turns a
    limit off."""

    max_volume_m3: float = Field(
        default=10.0, ge=0, le=10_000, description="Paste volume to the dump (m3)."
    )
    max_minutes: float = Field(
        default=15.0, ge=0, le=1440, description="Plant minutes of paste to the dump."
    )
    unreachable_pause_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="Plant seconds the recipe may stay out of the feed's reach (too wet to "
        "reach its Cw by adding water) before the pour pauses.",
    )


class EstimateSettings(BaseModel):
    """The estimate of the paste placed (its Cw and Bw from the 1 s readings, filtered as
    the mixer mixes), on which every pour record judges the paste."""

    mixer_volume_m3: float = Field(
        default=2.5,
        gt=0,
        le=200,
        description="Paste the mixer and its hopper hold at 100 % of mixer_level_pv (m3); "
        "the residence time is the hold-up over the paste flow.",
    )
    residence_s: float = Field(
        default=45.0,
        ge=1,
        le=3600,
        description="Plant seconds of residence used while the level or the paste flow is "
        "not read.",
    )
    feed_delay_s: float = Field(
        default=0.0,
        ge=0,
        le=600,
        description="Plant seconds from the feed flow meter and density gauge to the mixer.",
    )


class FallbackSettings(BaseModel):
    """What the binder follows when a feed gauge (tailings flow or density) goes bad."""

    hold_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Plant seconds the last good binder correction stands in for a dead "
        "feed gauge; then the binder is ratioed on the paste flow meter, or the pour pauses.",
    )
    recover_s: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="Plant seconds the feed gauges must be good again before the binder "
        "returns from the paste flow to the feed.",
    )


class InstrumentSettings(BaseModel):
    """The mass and volume balance across the mixer: feed flow x density + binder + water
    in, paste flow x density out. Each gauge's random error (sd) and the systematic error
    its calibration allows (tolerance). Offsets within tolerance, all at once and each at
    its worst, are not an alarm: the tolerances are the calibrated accuracies (magnetic
    flow meters and density gauges after calibration against samples, loss-in-weight
    feeders), not the catalogue's widest."""

    check: bool = Field(
        default=True, description="Reconcile the flows every cycle and alarm when they disagree."
    )
    time_constant_s: float = Field(
        default=120.0, ge=5, le=3600, description="Plant seconds the residuals are averaged."
    )
    false_alarms_per_8h: float = Field(
        default=0.001,
        gt=0,
        lt=1,
        description="Allowed probability of a false alarm in 8 plant hours of clean noise.",
    )
    flow_sd_pct: float = Field(default=1.0, gt=0, le=20, description="% of reading.")
    flow_tolerance_pct: float = Field(default=0.5, ge=0, le=20, description="% of reading.")
    density_sd_kg_m3: float = Field(default=5.0, gt=0, le=200)
    density_tolerance_kg_m3: float = Field(default=5.0, ge=0, le=200)
    binder_sd_pct: float = Field(default=2.0, gt=0, le=50, description="% of reading.")
    binder_tolerance_pct: float = Field(default=1.0, ge=0, le=50, description="% of reading.")
    water_sd_pct: float = Field(default=2.0, gt=0, le=50, description="% of reading.")
    water_tolerance_pct: float = Field(default=0.5, ge=0, le=50, description="% of reading.")


class RecipeSettings(BaseModel):
    """What a recipe must be for this plant to run it: inside the site's plausible
    ranges (checked wherever a recipe enters: an inline recipe, a stored version, a
    proportioning request, an optimiser design) and, unless allowed, approved by an
    engineer (ISA-88: a control recipe comes from an approved master recipe)."""

    allow_unapproved: bool = Field(
        default=False,
        description="Let a pour run a recipe version no engineer has approved (an inline "
        "recipe from SCADA, say).",
    )
    binder_pct_min: float = Field(default=1.0, gt=0, le=50, description="Bw, % of dry tailings.")
    binder_pct_max: float = Field(default=20.0, gt=0, le=50)
    solids_pct_min: float = Field(default=55.0, gt=0, lt=100, description="Cw, % of paste.")
    solids_pct_max: float = Field(default=88.0, gt=0, lt=100)
    tailings_gs_min: float = Field(default=2.2, gt=1, le=8, description="Also aggregate Gs.")
    tailings_gs_max: float = Field(default=5.0, gt=1, le=8)
    binder_gs_min: float = Field(default=2.0, gt=1, le=8)
    binder_gs_max: float = Field(default=3.6, gt=1, le=8)
    moisture_pct_max: float = Field(
        default=150.0, ge=0, le=1000, description="w0, % of dry tailings (50 % solids: 100)."
    )
    blend_component_pct_min: float = Field(
        default=2.0,
        ge=0,
        lt=100,
        description="A binder component below this share of the blend cannot be metered.",
    )
    aggregate_pct_max: float = Field(default=80.0, ge=0, lt=100)

    @model_validator(mode="after")
    def _ordered(self) -> RecipeSettings:
        for name in ("binder_pct", "solids_pct", "tailings_gs", "binder_gs"):
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if low > high:
                raise ValueError(f"{name}_min ({low:g}) is above {name}_max ({high:g})")
        return self


class LabSettings(BaseModel):
    """What a laboratory result must be on this site (checked wherever a result enters:
    one by one or in a lab sheet); outside: a 422 naming the field (the row and column
    of a sheet) and the setting."""

    curing_days_min: float = Field(
        default=0.5, gt=0, le=3650, description="Youngest test age, days (nominal or actual)."
    )
    curing_days_max: float = Field(default=730.0, gt=0, le=3650, description="Oldest, days.")
    cast_at_tolerance_h: float = Field(
        default=12.0,
        gt=0,
        le=24 * 365,
        description="A lab's cast_at may differ from the cast the service recorded for the "
        "sample by at most this many hours.",
    )
    early_result_tolerance_h: float = Field(
        default=24.0,
        ge=0,
        le=24 * 365,
        description="A result given by its nominal age (curing_days, no tested_at) may be "
        "entered at most this many hours before cast_at + curing_days (tested_at itself "
        "may never lie ahead of now).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> LabSettings:
        if self.curing_days_min > self.curing_days_max:
            raise ValueError(
                f"curing_days_min ({self.curing_days_min:g}) is above curing_days_max "
                f"({self.curing_days_max:g})"
            )
        return self


class StopeSettings(BaseModel):
    """What a stope and its fill plan must be on this site (checked where they enter:
    POST /stopes and POST /stopes/{id}/plans); outside: 422 stope_implausible or
    plan_implausible naming the field and the setting."""

    plan_area_m2_min: float = Field(default=1.0, gt=0, le=1e8, description="Stope plan area.")
    plan_area_m2_max: float = Field(default=1.0e5, gt=0, le=1e8)
    height_m_min: float = Field(default=1.0, gt=0, le=1e4, description="Stope height.")
    height_m_max: float = Field(default=1000.0, gt=0, le=1e4)
    stage_height_m_min: float = Field(
        default=0.05,
        gt=0,
        le=1e4,
        description="A stage's own rise (its top above the stage before's); below it a "
        "stage is full before it starts.",
    )
    stage_volume_m3_max: float = Field(
        default=1.0e6,
        gt=0,
        le=1e6,
        description="A stage's own volume, the target of its pour (POST /pours caps a "
        "pour's target at 1e6 m3).",
    )
    rise_rate_m_h_min: float = Field(default=0.01, gt=0, le=1000, description="m/h.")
    rise_rate_m_h_max: float = Field(default=100.0, gt=0, le=1000)
    cure_hold_h_max: float = Field(default=720.0, ge=0, le=1e5, description="Hours.")
    release_barricade_pct: float = Field(
        default=50.0,
        gt=0,
        le=100,
        description="A stage on hold is released on evidence once each of its stope's "
        "barricades reads below this % of its rating (and its strength is shown).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> StopeSettings:
        for name in ("plan_area_m2", "height_m", "rise_rate_m_h"):
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if low > high:
                raise ValueError(f"{name}_min ({low:g}) is above {name}_max ({high:g})")
        return self


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
        description="Comma-separated role:person:key or role:person:sha256:<hex digest of "
        "the key> entries (a person's key), or role:key / role:sha256:<hex> (a key of the "
        "role alone, recorded as the role and the key's id); roles hmi, scada, engineer, "
        "lab, admin.",
    )
    key_file: Path | None = Field(
        default=None,
        description="TOML file of people: a [[person]] table per key with name, role and "
        "sha256 (the key's digest). Read at start and again within seconds of a change, "
        "so removing a person's table revokes their key without a restart.",
    )
    plc: PlcSettings = Field(default_factory=PlcSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    failover: FailoverSettings = Field(default_factory=FailoverSettings)
    recipes: RecipeSettings = Field(default_factory=RecipeSettings)
    lab: LabSettings = Field(default_factory=LabSettings)
    stopes: StopeSettings = Field(default_factory=StopeSettings)
    design: DesignSettings = Field(default_factory=DesignSettings)
    diverter: DiverterSettings = Field(default_factory=DiverterSettings)
    plant: PlantSettings = Field(default_factory=PlantSettings)
    dump: DumpSettings = Field(default_factory=DumpSettings)
    estimate: EstimateSettings = Field(default_factory=EstimateSettings)
    fallback: FallbackSettings = Field(default_factory=FallbackSettings)
    instruments: InstrumentSettings = Field(default_factory=InstrumentSettings)
    opcua_server: OpcUaServerSettings = Field(default_factory=OpcUaServerSettings)
    sparkplug: SparkplugSettings = Field(default_factory=SparkplugSettings)
    checkpoint_interval_s: float = Field(default=5.0, gt=0, le=300)
    start_timeout_s: float = Field(
        default=300.0,
        ge=30,
        le=3600,
        description="Plant seconds after a start or resume for the PLC to report running "
        "(its flush included); then the pour pauses as plc_did_not_start.",
    )
    shutdown_grace_s: float = Field(
        default=20.0,
        ge=2,
        le=300,
        description="Wall seconds from SIGTERM to exit: pause the pour, stop the plant, store "
        "the record, close streams (under the 30 s the deployment files allow).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    opcua_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="WARNING", description="Level of the OPC UA library's own log (asyncua)."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line, with pour_id."
    )
    access_log: Literal["off", "errors", "all"] = Field(
        default="errors",
        description="Which HTTP requests get an access log line (with the request id): "
        "errors (answers of 400 and above), all, or off.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, raw: object) -> object:
        if not isinstance(raw, str):
            return raw
        return parse_key_entries(raw)

    @field_validator("api_keys")
    @classmethod
    def _refuse_weak_keys(cls, keys: list[ApiKey]) -> list[ApiKey]:
        seen: set[bytes] = set()
        for k in keys:
            value = k.key.get_secret_value()
            whose = f"the {k.role.value} key" + (f" of {k.person}" if k.person else "")
            if k.hashed:
                if not _SHA256_HEX.fullmatch(value):
                    raise ValueError(f"{whose}: its sha256 digest must be 64 hex digits")
            elif value.lower() in _PLACEHOLDER_KEYS or len(value) < _MIN_KEY_LENGTH:
                raise ValueError(
                    f"{whose} is a placeholder or shorter than {_MIN_KEY_LENGTH} characters"
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

    @model_validator(mode="after")
    def _endpoint_needs_tag_map(self) -> Settings:
        if self.plc.endpoint is not None and self.plc.tag_map is None:
            raise ValueError(
                "plc.tag_map is required with plc.endpoint: the tag map names the PLC's "
                "node for every logical tag"
            )
        return self

    @property
    def embedded_simulator(self) -> bool:
        return self.plc.endpoint is None


# --- the environment: every BACKFILL_ variable must be a setting -----------------------


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _env_paths(model: type[BaseModel], prefix: str) -> dict[str, tuple[str, ...]]:
    """Environment variable name -> field path, for every field and nested field
    (a nested model may also be given whole, as JSON, under its own name)."""
    paths: dict[str, tuple[str, ...]] = {}
    for name, info in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        paths[env] = (name,)
        nested = _nested_model(info.annotation)
        if nested is not None:
            for sub, path in _env_paths(nested, f"{env}{NESTING}").items():
                paths[sub] = (name, *path)
    return paths


def setting_names() -> dict[str, tuple[str, ...]]:
    """Every environment variable the service reads, with the field it sets."""
    return _env_paths(Settings, PREFIX)


class ConfigurationError(Exception):
    """Settings that cannot be used; ``lines`` says why, one line per problem, naming
    the environment variable."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A line for every ``BACKFILL_`` variable that is no setting (a typo such as
    BACKFILL_PLC_ENDPOINT would otherwise be ignored: the service would start its
    built-in simulator instead of talking to the PLC), with the closest real name."""
    known = setting_names()
    suffixes = {name.removeprefix(PREFIX): name for name in known}
    lines = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper.startswith(TEST_PREFIX) or upper in known:
            continue
        # Compared without the prefix every name shares, or everything looks alike.
        close = difflib.get_close_matches(upper.removeprefix(PREFIX), suffixes, n=1, cutoff=0.7)
        hint = f"; did you mean {suffixes[close[0]]}?" if close else ""
        lines.append(f"{name} is not a setting of this service{hint}")
    return lines


_IDENTIFIER = re.compile(r"\b[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*\b")


def _model_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    """The settings model at ``path`` (None when it is a leaf or no setting)."""
    model: type[BaseModel] | None = Settings
    for part in path:
        if model is None or part not in model.model_fields:
            return None
        model = _nested_model(model.model_fields[part].annotation)
    return model


def _validation_lines(err: ValidationError) -> list[str]:
    """One line per error, naming the environment variable; a rule about several
    settings names each of them as a variable too. Input values are not repeated
    (they may be keys or passwords)."""
    by_path = {path: env for env, path in setting_names().items()}
    lines = []
    for item in err.errors():
        loc = tuple(str(p) for p in item.get("loc", ()) if isinstance(p, str))
        while loc and loc not in by_path:  # a list index or a key below a setting
            loc = loc[:-1]

        def rename(match: re.Match[str], base: tuple[str, ...] = loc) -> str:
            words = tuple(match.group(0).split("."))
            for candidate in (base + words, words):
                if candidate in by_path and _model_at(candidate) is None:
                    return by_path[candidate]
            return match.group(0)

        message = _IDENTIFIER.sub(rename, str(item.get("msg", "invalid")))
        message = message.removeprefix("Value error, ")
        if not loc:
            where = "settings"
        elif _model_at(loc) is not None:
            where = f"{by_path[loc]}{NESTING}*"
        else:
            where = by_path[loc]
        lines.append(f"{where}: {message}")
    return lines


def load_settings() -> Settings:
    """The settings of ``python -m service`` from the environment: refused with a
    ConfigurationError (one line per problem, naming the environment variable) when a
    ``BACKFILL_`` variable is no setting or a value is invalid."""
    problems = unknown_variables(os.environ)
    if problems:
        raise ConfigurationError(problems)
    try:
        settings = Settings()
    except ValidationError as err:
        raise ConfigurationError(_validation_lines(err)) from err
    except SettingsError as err:  # a nested setting given as JSON that does not parse
        cause = f" ({err.__cause__})" if err.__cause__ else ""
        raise ConfigurationError([f"settings: {err}{cause}"]) from err
    _check_simulator_profile(settings)
    return settings


def _check_simulator_profile(settings: Settings) -> None:
    """The simulator's plant profile, read now so that a bad file stops the start (one
    line naming the file and the key), not the simulator later. Checked whenever it is
    named, and whenever the built-in simulator runs."""
    if settings.sim.profile is None and not settings.embedded_simulator:
        return
    # Imported here: the simulator is loaded only when its profile matters.
    from service.simulator import DEFAULT_PROFILE_PATH
    from service.simulator.profile import ProfileError, load_profile

    try:
        load_profile(settings.sim.profile or DEFAULT_PROFILE_PATH)
    except ProfileError as err:
        raise ConfigurationError([f"{PREFIX}SIM{NESTING}PROFILE: {err}"]) from err
