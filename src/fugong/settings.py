"""One typed place for configuration: environment variables with the ``FUGONG_`` prefix.

Outside demo mode the platform refuses to start without a real secret key, so a deployment can
never run on a key that is printed in a README.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fugong.errors import ConfigError

_MIN_SECRET_LEN = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FUGONG_", extra="ignore")

    #: SQLAlchemy URL. SQLite (the embedded default) or ``postgresql+psycopg://...``.
    database_url: str = "sqlite:///var/fugong.db"
    #: Where uploads, keys and generated files live; never under the web root.
    data_dir: Path = Path("var")
    #: Signs session cookies and CSRF tokens. Required (≥ 32 characters) outside demo mode.
    secret_key: str = ""
    #: Demo mode: a generated secret is kept in data_dir, and demo logins are printed.
    demo: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    #: Seconds a login lasts without activity.
    session_max_age: int = 12 * 3600
    #: Send cookies only over HTTPS. Turn on behind TLS.
    cookie_secure: bool = False
    #: Failed logins per account (and per client address) before a lock-out.
    login_max_failures: int = 5
    login_lockout_s: int = 300
    #: Largest upload accepted for imports, in bytes.
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    #: Due times of needs per urgency, hours to acknowledge / to resolve, e.g.
    #: ``urgent=4/24,high=8/72,normal=24/168`` (unnamed urgencies keep the defaults).
    desk_due_hours: str = ""
    #: Outbound notification channel, ``module:attribute`` with ``send(user, text, link)``;
    #: empty writes each message to the ``fugong.outbound`` log.
    outbound: str = ""
    #: Location data (cells.parquet, records/, stays/) for the CDC's tracing pages.
    tracing_data_dir: Path = Path("var/tracing")
    #: HMAC key that pseudonymises phone numbers; must live outside tracing_data_dir.
    tracing_key_file: Path = Path("var/keys/tracing.key")
    #: duckdb (embedded, default) or spark.
    tracing_engine: str = "duckdb"
    #: Aggregates of people are suppressed below this count.
    min_group_size: int = 15
    #: Thermal screening: days non-alarm readings are kept before ``fugong screening purge``.
    screening_retention_days: int = Field(default=14, ge=1)
    #: The MQTT broker ``fugong screening listen`` subscribes to (and its login, if any).
    screening_mqtt_host: str = "127.0.0.1"
    screening_mqtt_port: int = 1883
    screening_mqtt_username: str = ""
    screening_mqtt_password: str = ""
    #: HMAC key for author handles of opinion posts (created on first use); keep it outside
    #: data_dir so a copy of the data cannot be re-identified.
    opinion_author_key_file: Path = Path("var/keys/opinion-author.key")
    #: EARS thresholds of the opinion volume alerts, e.g. ``C1=3,C2=3,C3=2,min_count=3``
    #: (unnamed ones keep CDC's published defaults).
    opinion_ears: str = ""
    #: One-sided z threshold of the negative-share alert (2.58 ≈ p 0.005).
    opinion_negative_z: float = 2.58

    def resolved_secret(self) -> str:
        """The secret key, or in demo mode one generated once and kept in data_dir."""
        if self.secret_key:
            if len(self.secret_key) < _MIN_SECRET_LEN:
                raise ConfigError(
                    f"FUGONG_SECRET_KEY is too short: need at least {_MIN_SECRET_LEN} characters"
                )
            return self.secret_key
        if not self.demo:
            raise ConfigError(
                "FUGONG_SECRET_KEY is not set. Set a random value of at least 32 characters, "
                "or FUGONG_DEMO=1 to run the demo with a generated key."
            )
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
