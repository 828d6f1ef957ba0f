"""Configuration comes from the environment; production refuses unsafe settings."""

import pytest

from portal import sqlalchemy_url
from portal.config import ConfigError, load_config


def test_production_refuses_to_start_without_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"APP_ENV": "production"})


def test_production_with_secret_key_uses_secure_cookies():
    cfg = load_config({"APP_ENV": "production", "SECRET_KEY": "s3cret-value"})
    assert cfg["SECRET_KEY"] == "s3cret-value"
    assert cfg["SESSION_COOKIE_SECURE"] is True


def test_pool_settings_follow_the_guide_and_can_be_overridden():
    cfg = load_config({})
    assert cfg["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_size": 20, "pool_recycle": 3600, "pool_pre_ping": True}
    assert load_config({"DB_POOL_SIZE": "5"})["SQLALCHEMY_ENGINE_OPTIONS"]["pool_size"] == 5


def test_bad_values_are_reported_by_name():
    with pytest.raises(ConfigError, match="DB_POOL_SIZE"):
        load_config({"DB_POOL_SIZE": "lots"})
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_config({"APP_ENV": "staging"})


def test_database_urls_use_the_psycopg2_driver():
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sqlalchemy_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
