"""Runtime settings, read from the environment with the prefix ``AETHERCROWN_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".aethercrown")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AETHERCROWN_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATA_DIR / 'aethercrown.db'}",
        description="SQLAlchemy URL; SQLite file by default, postgresql+psycopg:// at scale.",
    )
    migration_database_url: str | None = Field(
        default=None,
        description=(
            "The URL migrations run with (the tables' owner) when the application's own "
            "database_url is a role that may only read and write rows (PostgreSQL row-level "
            "security, docs/operations.md); unset: database_url."
        ),
    )
    redis_url: str | None = Field(default=None, description="Redis for shared rate limits.")
    bootstrap_admin_key: str | None = Field(default=None, min_length=32)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = DEFAULT_DATA_DIR
    # Secret used to encrypt stored secrets (webhook signing secrets). Generated into data_dir
    # on first use when unset; every process of one installation must share it.
    secret_key: str | None = None
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_batch_rows: int = Field(default=10_000, ge=1)
    # Failed mapping attempts after which a Stripe event is set aside as dead (retried with
    # backoff until then: 30 s doubling, so 8 attempts span about two hours).
    stripe_mapping_max_attempts: int = Field(default=8, ge=1)
    log_level: str = "INFO"
    log_json: bool = True
    # FastAPI's native OpenTelemetry (spans, metrics and logs to the process's global OTel
    # providers). Off by default: the platform's own Prometheus metrics and JSON logs cover a
    # request, and with it on FastAPI asks the providers on every request (~3 % of a hot read).
    opentelemetry: bool = False
    # Seconds between flushes of per-tenant request counters to the database.
    usage_flush_seconds: float = Field(default=5.0, gt=0)
    usage_fold_seconds: float = Field(
        default=0.5, ge=0, description="How often the API folds new usage events; 0: never."
    )
    run_automation: bool = True
    # Build, before the first request, what FastAPI and SQLAlchemy otherwise build on it (see
    # app._warm_start); tests turn it off, their many short-lived apps never serve that long.
    warm_start: bool = True
    # Seconds between the in-process automation runner's ticks (`aethercrown serve`).
    automation_tick_seconds: float = Field(default=30.0, gt=0)
    # Onboarding's support webhooks must be public https; tests (and a local demo) may allow
    # loopback receivers.
    onboarding_allow_loopback_webhooks: bool = False
    # Alert channels (docs/modules/alerts.md). Their Slack webhooks must be public https like
    # onboarding's; tests may allow loopback receivers.
    alerts_allow_loopback_webhooks: bool = False
    # The console's address as people reach it, for links in alert messages; unset:
    # http://<host>:<port>.
    public_url: str | None = Field(default=None, max_length=500)
    # The SMTP server email alert channels send through (a local relay by default).
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the connection with STARTTLS before logging in."
    )
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = Field(default="AetherCrown <alerts@localhost>", max_length=300)
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("database_url", "migration_database_url")
    @classmethod
    def _normalise_postgres_driver(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Accept the usual postgres:// and postgresql:// forms; always drive them with psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @property
    def console_base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
