"""gunicorn.conf.py: HTTPS from SSL_CERT_FILE/SSL_KEY_FILE on real gunicorn, plain HTTP without them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.deploy.helpers import ROOT, free_port, healthcheck, stop
from tests.jobs.test_worker import _env
from tests.polling import wait_for


def _self_signed(directory) -> tuple[str, str]:
    """A certificate for 127.0.0.1/localhost and its key, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return str(cert_path), str(key_path)


def _gunicorn(env: dict[str, str]) -> subprocess.Popen:
    """gunicorn as the container starts it: settings from gunicorn.conf.py and the environment only."""
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_until_serving(proc: subprocess.Popen, fetch) -> None:
    def up():
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited: {proc.stderr.read()}")
        try:
            return fetch()
        except (OSError, ssl.SSLError):
            return False
    wait_for(up, timeout=60, what="gunicorn to answer")


@pytest.fixture()
def web_env(app, tmp_path):
    port = free_port()
    env = {**_env(app), "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1", "LOG_DIR": "",
           "LOG_STDOUT": "false", "DB_POOL_SIZE": "2"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("SSL_CERT_FILE", None)
    env.pop("SSL_KEY_FILE", None)
    return env, port


def test_gunicorn_serves_https_with_the_certificate_from_the_environment(web_env, tmp_path):
    env, port = web_env
    cert, key = _self_signed(tmp_path)
    # As the container runs it: APP_ENV=production (secure cookies), TLS from the two variables.
    env.update(SSL_CERT_FILE=cert, SSL_KEY_FILE=key, APP_ENV="production")
    context = ssl.create_default_context(cafile=cert)  # verifies the chain and the host name
    proc = _gunicorn(env)
    try:
        def live():
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/health/live", context=context,  # noqa: S310
                                        timeout=5) as response:
                return response.status == 200 and b"alive" in response.read()
        _wait_until_serving(proc, live)

        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP on the TLS port: no answer
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=5)  # noqa: S310

        # Session cookies over TLS carry Secure (APP_ENV=production; see README "Deployment").
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/login", context=context, timeout=10) as response:  # noqa: S310
            cookies = response.headers.get_all("Set-Cookie") or []
        session = [c for c in cookies if c.startswith("session=")]
        assert session and all("Secure" in c and "HttpOnly" in c for c in session), cookies

        # The container's health check speaks HTTPS when the two variables are set.
        check = healthcheck(env, "web", "/health/live")
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        stop(proc)


def test_gunicorn_serves_plain_http_without_the_certificate_variables(web_env):
    env, port = web_env
    proc = _gunicorn(env)
    try:
        def live():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=5) as response:  # noqa: S310
                return response.status == 200
        _wait_until_serving(proc, live)
        check = healthcheck(env, "web", "/health/live")
        assert check.returncode == 0 and check.stdout.startswith("healthy: http://"), check.stdout
    finally:
        stop(proc)
    # Once it stopped, the health check says so.
    assert healthcheck(env, "web", "/health/live").returncode == 1


def test_gunicorn_refuses_a_key_without_its_certificate(web_env, tmp_path):
    env, _ = web_env
    _, key = _self_signed(tmp_path)
    env.update(SSL_KEY_FILE=key)
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--check-config",
                             "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SSL_CERT_FILE must be set too" in result.stdout + result.stderr


def test_a_ca_bundle_in_ssl_cert_file_alone_leaves_plain_http(web_env, tmp_path):
    """SSL_CERT_FILE is also OpenSSL's CA-bundle variable, set on many machines: alone it turns nothing on."""
    env, port = web_env
    cert, _ = _self_signed(tmp_path)
    env["SSL_CERT_FILE"] = cert
    proc = _gunicorn(env)
    try:
        def live():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=5) as response:  # noqa: S310
                return response.status == 200
        _wait_until_serving(proc, live)
    finally:
        stop(proc)


def test_gunicorn_refuses_a_certificate_path_that_is_not_a_file(web_env, tmp_path):
    env, _ = web_env
    env.update(SSL_CERT_FILE=str(tmp_path / "missing.pem"), SSL_KEY_FILE=str(tmp_path / "missing.key"))
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--check-config",
                             "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "is not a readable file" in result.stdout + result.stderr


def test_procfile_web_line_reads_gunicorn_conf_and_keeps_its_flags():
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    for flag in ("--config gunicorn.conf.py", "--no-control-socket", "--bind ${HOST:-127.0.0.1}:${PORT:-5000}",
                 "--workers ${WEB_CONCURRENCY:-2}", "wsgi:app"):
        assert flag in web
