"""Settings, read from the environment (prefix ``SETIA_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SETIA_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./setia.db",
        description="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db",
    )
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, description="Requests with a larger body get 413."
    )
    batch_max_events: int = 1000
    sqlite_busy_timeout_ms: int = 30_000
    # Seconds between the API server's background checkpoints of a SQLite database's
    # write-ahead log (0: none; commits then checkpoint inline, as SQLite does by default).
    sqlite_checkpoint_seconds: float = Field(default=1.0, ge=0)
    echo_sql: bool = False
    cookie_secure: bool | None = Field(
        default=None,
        description="Mark console/portal cookies Secure; unset: only when the request is HTTPS "
        "(set true behind a TLS-terminating proxy that forwards plain HTTP).",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
