"""The store's tables (SQLAlchemy Core). The schema itself is owned by the Alembic
migrations in ``migrations/``; these definitions must match them (a test checks)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

calibrations = Table(
    "calibrations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("example", Integer, nullable=False, default=0),
    Column("model", JSON, nullable=False),
    Column("rows", JSON, nullable=False),
    # approved (designs may use it) or proposed (a refit from lab results, waiting for
    # an engineer's approval). No Python-side default: the store always says which.
    Column("status", String(20), nullable=False, server_default="approved"),
    Column("approved_by", String(200), nullable=True),
    Column("approved_at", DateTime(timezone=True), nullable=True),
    Column("proposed_from", String(36), nullable=True),
    Column("proposal", JSON, nullable=True),
    UniqueConstraint("name", "version", name="uq_calibrations_name_version"),
)

rheology_calibrations = Table(
    "rheology_calibrations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("example", Integer, nullable=False, default=0),
    Column("model", JSON, nullable=False),
    Column("rows", JSON, nullable=False),
    # In force once stored: who stored it approved it (revision 0010_people).
    Column("approved_by", String(200), nullable=True),
    Column("approved_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("name", "version", name="uq_rheology_calibrations_name_version"),
)

recipes = Table(
    "recipes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("approved_by", String(200), nullable=True),
    Column("approved_at", DateTime(timezone=True), nullable=True),
    Column("calibration_id", String(36), ForeignKey("calibrations.id"), nullable=True),
    Column("mix", JSON, nullable=False),
    Column("design", JSON, nullable=True),
    UniqueConstraint("name", "version", name="uq_recipes_name_version"),
)

pours = Table(
    "pours",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("stope_id", String(100), nullable=False),
    Column("recipe_id", String(36), ForeignKey("recipes.id"), nullable=False),
    Column("state", String(20), nullable=False),
    Column("target_volume_m3", Float, nullable=False),
    Column("paste_flow_m3_h", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("totals", JSON, nullable=False),
    Column("interruptions", JSON, nullable=False),
    Column("sample_ids", JSON, nullable=False),
    Column("checkpoint_seq", BigInteger, nullable=False, default=0),
    Column("plan_id", String(36), nullable=True),
    Column("stage", Integer, nullable=True),
    # The Cw correction (tailings Gs or paste density gauge bias) in force when the pour
    # started, as control is to use it (revision 0009); None: the recipe's Gs, the gauge
    # as read.
    Column("correction", JSON, nullable=True),
    Index("ix_pours_state", "state"),
    Index("ix_pours_stope", "stope_id"),
)

audit = Table(
    "audit",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("role", String(40), nullable=False),
    # The person who acted (revision 0010_people); None for the service's own acts and
    # for entries stored before, which named the role only.
    Column("person", String(200), nullable=True),
    Column("pour_id", String(36), nullable=True),
    Column("seq", BigInteger, nullable=True),
    Column("acknowledged", Integer, nullable=True),
    Column("old", JSON, nullable=True),
    Column("new", JSON, nullable=False),
    Column("detail", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_pour", "pour_id"),
    Index("ix_audit_person", "person"),
)

stopes = Table(
    "stopes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("definition", JSON, nullable=False),
)

fill_plans = Table(
    "fill_plans",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("stope_id", String(36), ForeignKey("stopes.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("plan", JSON, nullable=False),
    UniqueConstraint("stope_id", "version", name="uq_fill_plans_stope_version"),
)

plan_progress = Table(
    "plan_progress",
    metadata,
    Column("stope_id", String(36), ForeignKey("stopes.id"), primary_key=True),
    Column("plan_id", String(36), ForeignKey("fill_plans.id"), nullable=False),
    Column("progress", JSON, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

samples = Table(
    "samples",
    metadata,
    Column("id", String(64), primary_key=True),  # the cylinder's own id: unique on site
    Column("pour_id", String(36), ForeignKey("pours.id"), nullable=False),
    Column("cast_at", DateTime(timezone=True), nullable=False),
    Column("placed_m3", Float, nullable=True),  # the pour's placed volume at casting
    Column("test_ages_days", JSON, nullable=False),
    Column("source", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(40), nullable=False),
    Index("ix_samples_pour", "pour_id"),
)

lab_results = Table(
    "lab_results",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("sample_id", String(64), ForeignKey("samples.id"), nullable=False),
    # A correction names the entry it corrects; an entry is corrected at most once.
    Column("corrects", String(36), ForeignKey("lab_results.id"), nullable=True, unique=True),
    Column("cast_at", DateTime(timezone=True), nullable=True),  # as the lab recorded it
    Column("tested_at", DateTime(timezone=True), nullable=True),
    Column("curing_days", Float, nullable=True),
    Column("wet_mass_g", Float, nullable=True),
    Column("dry_mass_g", Float, nullable=True),
    Column("volume_cm3", Float, nullable=True),
    Column("bulk_density_kg_m3", Float, nullable=True),
    Column("ucs_kpa", Float, nullable=True),
    Column("note", Text, nullable=True),
    Column("source", String(20), nullable=False),
    Column("sheet_id", String(36), nullable=True),
    Column("entered_at", DateTime(timezone=True), nullable=False),
    Column("entered_by", String(40), nullable=False),
    Index("ix_lab_results_sample", "sample_id"),
)

cw_corrections = Table(
    "cw_corrections",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(40), nullable=False),
    # proposed (waiting for an engineer), approved (control uses the newest approved
    # one), or none (the lab Cw showed no error, or too few samples: nothing to approve)
    Column("status", String(20), nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("kind", String(20), nullable=True),  # tailings_gs or density_gauge
    Column("tailings_sg", Float, nullable=True),
    Column("density_bias_kg_m3", Float, nullable=True),
    Column("assumed_tailings_sg", Float, nullable=False),
    Column("reconciliation", JSON, nullable=False),  # the estimate, samples, explanation
    Column("sample_ids", JSON, nullable=False),
    Column("approved_by", String(200), nullable=True),
    Column("approved_at", DateTime(timezone=True), nullable=True),
    Index("ix_cw_corrections_status", "status"),
)
