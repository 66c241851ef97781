"""The service's one settings class: the only place that reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.cluster.fair_share import TenantPolicy
from storage.engine import hidden_password, sqlite_file


class Settings(BaseSettings):
    """Configuration from `HPO_*` variables; built once at start-up and passed down."""

    model_config = SettingsConfigDict(env_prefix="HPO_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"), description="Where the SQLite file and uploads live."
    )
    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite in data_dir.")
    sqlite_durability: Literal["wal", "wal-full", "sqlite-default"] = Field(
        default="wal",
        description="SQLite only. `wal`: WAL, synchronous=NORMAL (a crash of the service "
        "loses nothing; a power cut may lose the last commits, never the file). `wal-full`: "
        "every commit synced. `sqlite-default`: SQLite's (and Optuna's) rollback journal "
        "with synchronous=FULL; readers wait while a trial's rows commit.",
    )
    ray_address: str | None = Field(
        default=None, description="'auto', host:port, or None for a local Ray."
    )
    ray_runtime_env: dict[str, Any] | None = Field(
        default=None,
        description="JSON runtime_env for Ray's workers, set by the operator (e.g. "
        '{"pip": ["my-tasks==1.2"]} to install plug-in tasks on every node).',
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    ray_num_cpus: int | None = Field(default=None, ge=1, description="CPUs of a local Ray.")
    warm_slots: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Idle slot actors kept between studies, so that a new study's first "
        "epoch does not wait for a process to start and import torch.",
    )
    prewarm_slots: bool = Field(
        default=True, description="Start warm_slots 1-CPU slots with the service."
    )
    api_tokens: str = Field(
        default="",
        description="Comma-separated tenant:token pairs, or @FILE with one tenant:token a line. "
        "When set, every API route (not /healthz, nor the dashboard's page and scripts) needs "
        "`Authorization: Bearer <token>`.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="The operator's bearer token for GET /metrics with every tenant's series. "
        "With HPO_API_TOKENS set, a tenant's token shows its own series and an `others` total.",
    )
    max_request_bytes: int = Field(
        default=1_000_000, ge=1_000, description="Larger bodies get 413."
    )
    max_upload_bytes: int = Field(
        default=100_000_000, ge=1_000, description="Largest data set upload (413 above)."
    )
    max_trials_limit: int = Field(default=100_000, ge=1, description="Largest budget.max_trials.")
    max_epochs_limit: int = Field(default=10_000, ge=1, description="Largest budget.max_epochs.")
    max_parallelism_limit: int = Field(default=64, ge=1, description="Largest budget.parallelism.")
    studies_per_minute: int = Field(
        default=60, ge=1, description="Study submissions a tenant may make per minute (429)."
    )
    max_active_studies_per_tenant: int = Field(
        default=20,
        ge=1,
        description="Queued, running and paused studies a tenant may hold at once (429 above).",
    )
    max_upload_bytes_per_tenant: int = Field(
        default=1_000_000_000,
        ge=1_000,
        description="Bytes of stored uploads a tenant may hold in all (413 for an upload that "
        "would pass it; deleting a data set gives its bytes back).",
    )
    max_event_streams_per_tenant: int = Field(
        default=20, ge=1, description="Event streams a tenant may hold open at once (429 above)."
    )
    event_heartbeat_s: float = Field(
        default=15.0,
        gt=0,
        allow_inf_nan=False,
        description="An event stream with nothing to send sends a `: heartbeat` comment this "
        "often, so that proxies keep it open and a vanished client is noticed.",
    )
    event_idle_s: float = Field(
        default=600.0,
        gt=0,
        allow_inf_nan=False,
        description="An event stream that has sent only heartbeats this long is closed, "
        "freeing its place under max_event_streams_per_tenant (clients resume with "
        "Last-Event-ID).",
    )
    data_roots: str = Field(
        default="",
        description="Comma-separated folders path data sets may come from (relative paths "
        "start in the first). Never the service's own folders: data_dir (uploads, artifacts), "
        "the SQLite file's folder and a local checkpoint_uri are refused even under a root.",
    )

    tenant_weights: str = Field(
        default="",
        description="Comma-separated tenant:weight pairs (default weight 1): when the cluster "
        "is contended, each tenant's share of it is its weight over the active tenants'.",
    )
    tenant_quotas: str = Field(
        default="",
        description="Caps on the CPUs and GPUs a tenant's slots hold at once, e.g. "
        "`team-a:cpus=8,gpus=2,team-b:cpus=4`.",
    )

    preempt_after_s: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Off when unset. A study that has waited this long for a slot may take "
        "one from a lower-priority study of its tenant, or from a tenant above its share: "
        "that trial stops at its next epoch boundary with a checkpoint and resumes later.",
    )
    reshape_cpu_slots: bool = Field(
        default=True,
        description="CPU-only slot processes reserve no CPUs in Ray; the service's scheduler "
        "counts each node's CPUs itself, and an idle slot serves a trial of any CPU-only "
        "shape without starting a new process. Turn off when other Ray jobs share the "
        "cluster's CPUs (then each slot reserves its trial's CPUs in Ray). Off by itself "
        "on a cluster with an autoscaler, which sizes the cluster by what Ray sees reserved.",
    )
    checkpoint_uri: str = Field(
        default="",
        description="Where trial checkpoints go: a folder, or any fsspec URL that every Ray "
        "node can reach (e.g. s3://bucket/hpo with s3fs installed, or a shared NFS path); "
        "default <data_dir>/checkpoints, which only a one-machine cluster shares.",
    )

    allow_cpu_for_gpus: bool = Field(
        default=False,
        description="Test clusters only: a slot given a GPU that CUDA cannot use (a node "
        "that declares GPUs it does not have) trains on the CPU, and its trials' `device` "
        "says `cpu`. Off, such a slot fails each trial with the reason and warns the study.",
    )

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'hpo.db'}"
        if not self.checkpoint_uri:
            self.checkpoint_uri = str(self.data_dir / "checkpoints")
        return self

    def tenant_policy(self) -> TenantPolicy:
        """Weights and quotas; ValueError names a malformed entry."""
        return TenantPolicy.parse(self.tenant_weights, self.tenant_quotas)

    def data_root_paths(self) -> tuple[Path, ...]:
        """HPO_DATA_ROOTS, the first where relative dataset paths start."""
        return tuple(
            Path(p.strip()).expanduser().resolve() for p in self.data_roots.split(",") if p.strip()
        )

    def own_paths(self) -> tuple[Path, ...]:
        """The service's own folders, which hold every tenant's files: no path source reads
        from them, whatever the data roots."""
        own = [self.data_dir]
        if (database := sqlite_file(self.database_url)) is not None:
            own.append(database.parent)
        if "://" not in self.checkpoint_uri or self.checkpoint_uri.startswith("file://"):
            own.append(Path(self.checkpoint_uri.removeprefix("file://")).expanduser().resolve())
        return tuple(own)

    def shown_database_url(self) -> str:
        """The database URL for start-up lines and logs: never with its password."""
        return hidden_password(self.database_url)

    def tenants_by_token(self) -> dict[str, str]:
        """token -> tenant from HPO_API_TOKENS; ValueError names a malformed entry."""
        raw = self.api_tokens.strip()
        if raw.startswith("@"):
            raw = Path(raw[1:]).expanduser().read_text().replace("\n", ",")
        tenants: dict[str, str] = {}
        for entry in (e.strip() for e in raw.split(",")):
            if not entry or entry.startswith("#"):
                continue
            tenant, sep, token = entry.partition(":")
            if not sep or not tenant.strip() or not token.strip():
                raise ValueError(f"HPO_API_TOKENS entries must be tenant:token, got {entry[:20]!r}")
            tenants[token.strip()] = tenant.strip()
        return tenants
