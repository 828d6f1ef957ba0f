"""gunicorn settings, read by the Procfile's web line and the container (deploy/entrypoint.sh).

Command-line flags win over this file, so `gunicorn --bind ... --workers ...` (the Procfile) still
decides those. Set SSL_CERT_FILE and SSL_KEY_FILE and gunicorn serves HTTPS itself; leave both unset
for plain HTTP (behind a TLS-terminating proxy, or in development). SSL_KEY_FILE without
SSL_CERT_FILE, or a path that is not a readable file, is refused at start. SSL_CERT_FILE alone is
OpenSSL's own variable (the CA bundle for outgoing connections, set on many machines), so it
alone leaves plain HTTP.

OpenSSL reads SSL_CERT_FILE as that CA bundle in every process: once gunicorn has taken both
variables for serving, they are removed from the environment the application is loaded in, so its
outgoing TLS (Sentry, SMTP) keeps verifying against the system's CAs, not against our own certificate.
"""

from __future__ import annotations

import os


def _tls_files(env: dict[str, str]) -> tuple[str, str] | None:
    """(certfile, keyfile) when both are set; None without SSL_KEY_FILE; SystemExit for a key alone or no file."""
    cert, key = env.get("SSL_CERT_FILE", "").strip(), env.get("SSL_KEY_FILE", "").strip()
    if not key:
        return None  # nothing, or only OpenSSL's CA-bundle variable: plain HTTP
    if not cert:
        raise SystemExit("gunicorn.conf.py: SSL_CERT_FILE must be set too (TLS needs both the certificate and its key)")
    for name, path in (("SSL_CERT_FILE", cert), ("SSL_KEY_FILE", key)):
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise SystemExit(f"gunicorn.conf.py: {name}={path} is not a readable file")
    return cert, key


bind = [f"{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT') or '5000'}"]
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
# gunicorn 27's control socket would be a file under $HOME or $XDG_RUNTIME_DIR; nothing uses it, and
# the container's home is read-only.
control_socket_disable = True

_tls = _tls_files(dict(os.environ))
if _tls:
    certfile, keyfile = _tls
    os.environ.pop("SSL_CERT_FILE", None)
    os.environ.pop("SSL_KEY_FILE", None)
