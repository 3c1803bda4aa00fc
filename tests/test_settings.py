"""Settings: the guide's variables, URL normalisation, production refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crp_gateway.settings import ConfigError, load_settings, normalise_database_url

STRONG = "s" * 40


def _load(tmp_path: Path, **values: Any) -> Any:
    return load_settings(_env_file=None, crp_data_dir=tmp_path, **values)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        (
            "postgresql://u@db/app?sslmode=require",
            "postgresql+asyncpg://u@db/app?ssl=require",
        ),
        ("sqlite:///data/gw.db", "sqlite+aiosqlite:///data/gw.db"),
    ],
)
def test_database_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_other_database_schemes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        _load(tmp_path, database_url="mysql://u@db/app")


def test_the_guides_variables_are_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = {
        "SECRET_KEY": STRONG,
        "CRP_GATEWAY_URL": "https://gateway.example.com",
        "APP_BASE_URL": "https://app.example.com",
        "ALLOWED_ORIGINS": "https://a.example.com, https://b.example.com/",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": "postgres://u:p@db:5432/app",
        "REDIS_URL": "redis://cache:6379",
        "CLERK_ISSUER": "https://clerk.example.com",
        "CLERK_SECRET_KEY": "sk_test_clerk",
        "CLERK_PUBLISHABLE_KEY": "pk_test_clerk",
        "STRIPE_SECRET_KEY": "sk_test_stripe",
        "STRIPE_WEBHOOK_SECRET": "whsec_test",
        "STRIPE_GATEWAY_DEVELOPER_PRICE_ID": "price_dev",
        "STRIPE_GATEWAY_TEAM_PRICE_ID": "price_team",
        "STRIPE_GATEWAY_DEVELOPER_ANNUAL_PRICE_ID": "price_dev_y",
        "STRIPE_GATEWAY_TEAM_ANNUAL_PRICE_ID": "price_team_y",
        "CRP_COMPLY_WEBHOOK_URL": "https://comply.example.com/hook",
        "PORT": "9000",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = _load(tmp_path)
    assert settings.allowed_origins == [
        "https://a.example.com",
        "https://b.example.com",
    ]
    assert settings.log_level.value == "warning"
    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/app"
    assert settings.is_production
    assert settings.port == 9000
    assert settings.stripe_gateway_team_annual_price_id == "price_team_y"
    assert settings.crp_comply_webhook_url == "https://comply.example.com/hook"
    assert settings.redis_url is not None
    assert "u:p@" not in repr(settings)  # URLs with passwords stay out of reprs
    assert "redis://cache" not in repr(settings)
    assert "sk_test_stripe" not in repr(settings)


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "required"),
        ("short-secret", "at least 32"),
        ("replace-with-32-char-random-string", "placeholder"),
    ],
)
def test_production_refuses_a_missing_or_weak_secret_key(
    tmp_path: Path, secret: str | None, reason: str
) -> None:
    values: dict[str, Any] = {"crp_env": "production"}
    if secret is not None:
        values["secret_key"] = secret
    with pytest.raises(ConfigError, match=reason) as raised:
        _load(tmp_path, **values)
    assert "SECRET_KEY" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_postgres_implies_production(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        _load(tmp_path, database_url="postgresql://u@db/app")


def test_production_refuses_placeholder_stripe_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="STRIPE_SECRET_KEY"):
        _load(
            tmp_path,
            crp_env="production",
            secret_key=STRONG,
            stripe_secret_key="sk_live_...",
        )


def test_development_generates_one_secret_and_keeps_it(tmp_path: Path) -> None:
    first = _load(tmp_path)
    second = _load(tmp_path)
    assert first.generated_secret_path == tmp_path / "secret_key"
    assert first.secret_key_value() == second.secret_key_value()
    assert len(first.secret_key_value()) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_an_explicit_secret_is_not_written_anywhere(tmp_path: Path) -> None:
    settings = _load(tmp_path, secret_key=STRONG)
    assert settings.generated_secret_path is None
    assert not (tmp_path / "secret_key").exists()
