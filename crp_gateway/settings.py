"""Every environment variable the gateway reads, validated once at start-up.

The variable names are the deployment guide's (``SECRET_KEY``, ``DATABASE_URL``,
``REDIS_URL``, ``CLERK_*``, ``STRIPE_*``, ...) plus a few ``CRP_*`` knobs of our own.
Nothing else in the package reads ``os.environ``.

Two profiles follow from the variables:

* the *embedded default*: no ``DATABASE_URL``; SQLite under ``CRP_DATA_DIR`` and
  in-process shared state. A development ``SECRET_KEY`` is generated once and kept in
  the data folder, with a loud warning.
* *production*: ``DATABASE_URL`` points at PostgreSQL, or ``CRP_ENV=production``.
  ``SECRET_KEY`` must then be set, at least 32 characters long, and not one of the
  placeholders of ``.env.example``.

Invalid configuration raises :class:`ConfigError` with one line that names the
variable; the CLI and ``main.py`` print that line and exit without a traceback.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_KEY_LENGTH = 32

#: Values shipped in ``.env.example`` and the deployment guide. They are refused
#: in production so that a copy-pasted example never becomes a live secret.
PLACEHOLDER_SECRETS = frozenset({"replace-with-32-char-random-string"})


class ConfigError(Exception):
    """The environment does not describe a configuration the gateway can run."""


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class SignupMode(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


def _is_placeholder(value: str) -> bool:
    return value in PLACEHOLDER_SECRETS or value.endswith("...")


def normalise_database_url(url: str) -> str:
    """Return a SQLAlchemy async URL for what a platform hands us.

    Railway and Heroku give ``postgres://`` or ``postgresql://``; we pick asyncpg.
    asyncpg spells libpq's ``sslmode`` as ``ssl``, so that query parameter is
    renamed. SQLite URLs get the aiosqlite driver.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in {"postgres", "postgresql", "postgresql+asyncpg"}:
        query = [
            ("ssl" if key == "sslmode" else key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return urlunsplit(
            ("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), "")
        )
    if scheme in {"sqlite", "sqlite+aiosqlite"}:
        return "sqlite+aiosqlite" + url[len(parts.scheme) :]
    raise ValueError("must be a postgres://, postgresql:// or sqlite:// URL")


class Settings(BaseSettings):
    """The gateway's configuration, read from the environment (and ``.env``)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    # --- core -------------------------------------------------------------------
    crp_env: Environment = Environment.DEVELOPMENT
    secret_key: SecretStr | None = None
    secret_key_previous: SecretStr | None = None
    crp_gateway_url: str = "http://localhost:8100"
    app_base_url: str = "http://localhost:8100"
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: LogLevel = LogLevel.INFO
    host: str = "0.0.0.0"  # noqa: S104 - a server binds every interface by default
    port: int = Field(default=8100, ge=1, le=65535)
    forwarded_allow_ips: str = "127.0.0.1"

    # --- state ------------------------------------------------------------------
    database_url: str | None = Field(default=None, repr=False)  # carries a password
    redis_url: SecretStr | None = None
    #: Prefix of every Redis key, for gateways that share one Redis.
    crp_redis_prefix: str = Field(default="crp", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    crp_data_dir: Path = Path(".crp-gateway")
    crp_migrate_on_start: bool = True

    # --- edge and sign-up -------------------------------------------------------
    crp_max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    crp_signup: SignupMode = SignupMode.OPEN
    crp_signup_rate_per_hour: int = Field(default=10, ge=1)
    crp_key_cache_seconds: float = Field(default=1.0, ge=0.0, le=1.0)
    crp_last_used_flush_seconds: float = Field(default=30.0, gt=0.0)

    # --- upstream providers -----------------------------------------------------
    crp_upstream_connect_timeout: float = Field(default=10.0, gt=0)
    crp_upstream_read_timeout: float = Field(default=600.0, gt=0)
    crp_upstream_stream_idle_timeout: float = Field(default=120.0, gt=0)
    crp_default_max_tokens: int = Field(default=4096, ge=1)
    crp_provider_cache_seconds: float = Field(default=1.0, ge=0.0, le=5.0)
    #: CRP governance of every call. Off only to measure its cost (bench/).
    crp_governance: bool = True
    #: The durable audit record of every governed call. Off only to measure its
    #: cost apart from the rest of governance (bench/); never in production.
    crp_audit: bool = True

    # --- Clerk ------------------------------------------------------------------
    clerk_issuer: str | None = None
    clerk_secret_key: SecretStr | None = None
    clerk_publishable_key: str | None = None

    # --- Stripe -----------------------------------------------------------------
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_gateway_developer_price_id: str | None = None
    stripe_gateway_team_price_id: str | None = None
    stripe_gateway_developer_annual_price_id: str | None = None
    stripe_gateway_team_annual_price_id: str | None = None

    # --- compliance webhook -----------------------------------------------------
    crp_comply_webhook_url: str | None = None

    # --- violation reports and the outbox (G26, 016§7.1) ------------------------
    #: Reports one tenant may enqueue per UTC day; over it, reports are dropped.
    crp_reports_per_day_free: int = Field(default=100, ge=0)
    crp_reports_per_day_paid: int = Field(default=10_000, ge=0)
    #: Deliver to private, loopback, link-local or reserved addresses. Off, the
    #: SSRF guard refuses them; on only for tests and closed networks.
    crp_reports_allow_private: bool = False
    crp_reports_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    crp_outbox_poll_seconds: float = Field(default=5.0, gt=0)
    crp_outbox_max_attempts: int = Field(default=10, ge=1, le=50)
    #: Retry n waits base * 4**(n-1) seconds (capped, with jitter): 1 s to 6 h.
    crp_outbox_retry_base_seconds: float = Field(default=1.0, ge=0)
    crp_outbox_retry_max_seconds: float = Field(default=6 * 3600.0, ge=0)

    _generated_secret_path: Path | None = PrivateAttr(default=None)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip().rstrip("/") for item in value.split(",") if item]
        return value

    @field_validator("log_level", "crp_env", "crp_signup", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return normalise_database_url(value) if value else None

    @field_validator(
        "database_url",
        "redis_url",
        "clerk_issuer",
        "clerk_publishable_key",
        "crp_comply_webhook_url",
        "stripe_gateway_developer_price_id",
        "stripe_gateway_team_price_id",
        "stripe_gateway_developer_annual_price_id",
        "stripe_gateway_team_annual_price_id",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        if not self.is_production:
            return self
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if not key:
            raise ValueError("SECRET_KEY is required in production")
        if _is_placeholder(key):
            raise ValueError("SECRET_KEY is the placeholder from .env.example")
        if len(key) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters"
            )
        for name in ("stripe_secret_key", "stripe_webhook_secret", "clerk_secret_key"):
            secret: SecretStr | None = getattr(self, name)
            if secret is not None and _is_placeholder(secret.get_secret_value()):
                raise ValueError(f"{name.upper()} is a placeholder from .env.example")
        return self

    @property
    def is_production(self) -> bool:
        return self.crp_env is Environment.PRODUCTION or self.uses_postgres

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url and self.database_url.startswith("postgresql"))

    @property
    def store_url(self) -> str:
        """The database URL in use: ``DATABASE_URL`` or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.crp_data_dir / 'gateway.db'}"

    @property
    def generated_secret_path(self) -> Path | None:
        """Where the development ``SECRET_KEY`` lives, when one was generated."""
        return self._generated_secret_path

    def secret_key_value(self) -> str:
        """The active ``SECRET_KEY``; :func:`load_settings` guarantees one exists."""
        if self.secret_key is None:
            raise ConfigError("SECRET_KEY is not set")
        return self.secret_key.get_secret_value()


def _first_error_line(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]).upper()
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


def _development_secret(data_dir: Path) -> str:
    """Read, or create once, the development ``SECRET_KEY`` in the data folder."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(value, encoding="utf-8")
    return value


def load_settings(**overrides: Any) -> Settings:
    """Build validated settings from the environment, or raise :class:`ConfigError`.

    On the embedded default without a ``SECRET_KEY`` this generates a development
    key into ``CRP_DATA_DIR/secret_key`` (see ``Settings.generated_secret_path``),
    which the app's start-up log warns about.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_first_error_line(exc)) from None
    if settings.secret_key is None:
        secret = _development_secret(settings.crp_data_dir)
        settings = settings.model_copy(update={"secret_key": SecretStr(secret)})
        settings._generated_secret_path = settings.crp_data_dir / "secret_key"
    return settings
