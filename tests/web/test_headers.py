"""Security headers on every kind of response: page, partial, API, static file, error page, /health."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from tests.web.helpers import HX, text_of

ANONYMOUS_URLS = ["/login", "/no/such/page", "/api/v1/openapi.json", "/api/v1/service-requests",
                  "/static/css/portal.css", "/static/js/portal.js", "/health", "/"]
SIGNED_IN_URLS = ["/requests", "/requests/{id}", "/requests/{id}/timeline", "/account", "/no/such/page"]
# Pages with a form or personal data; nothing of them may be kept by a browser or a shared cache.
NEVER_STORED = ["/login", "/no/such/page", "/api/v1/openapi.json", "/api/v1/service-requests", "/health", "/"]


def _assert_security_headers(response, url: str) -> None:
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    scripts = directives.get("script-src", directives["default-src"])
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, (url, csp)
    assert "'unsafe-inline'" not in directives.get("style-src", []), (url, csp)
    assert headers["X-Frame-Options"] == "DENY" or directives.get("frame-ancestors") == ["'none'"], url
    assert directives.get("frame-ancestors") == ["'none'"], url
    assert headers["X-Content-Type-Options"] == "nosniff", url
    assert headers["Referrer-Policy"] == "same-origin", url
    policy = {item.strip() for item in headers["Permissions-Policy"].split(",")}
    assert {"camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"} <= policy, (url, policy)
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin", url
    assert headers["Cross-Origin-Resource-Policy"] == "same-origin", url
    for name in ("Content-Type", "Content-Security-Policy", "X-Frame-Options", "Permissions-Policy"):
        assert len(headers.getlist(name)) <= 1, (url, name, headers.getlist(name))


@pytest.mark.parametrize("url", ANONYMOUS_URLS)
def test_headers_anonymous(client, url):
    response = client.get(url)

    assert response.status_code < 500, url
    _assert_security_headers(response, url)


def test_headers_signed_in_pages_partials_and_errors(login_client, make):
    alice = make.user("requester")
    req = make.request(alice)
    client = login_client(alice)
    for template in SIGNED_IN_URLS:
        url = template.format(id=req.id)
        for headers in ({}, HX):
            response = client.get(url, headers=headers)
            assert response.status_code < 500, url
            _assert_security_headers(response, url)
            assert response.headers["Cache-Control"] == "no-store", url


def test_headers_api_with_a_token(client, make):
    agent = make.user("agent")
    response = client.get("/api/v1/service-requests", headers={"Authorization": f"Bearer {make.token(agent)}"})

    assert response.status_code == 200
    _assert_security_headers(response, "api")
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("url", NEVER_STORED)
def test_headers_sign_in_and_anonymous_pages_are_not_stored(client, url):
    response = client.get(url)

    directives = {d.strip() for d in response.headers["Cache-Control"].split(",")}
    assert "no-store" in directives, (url, response.headers["Cache-Control"])


def test_headers_failed_sign_in_is_not_stored(client, make):
    user = make.user("requester")
    response = client.post("/login", data={"email": user.email, "password": "not-the-password"})

    assert "no-store" in response.headers["Cache-Control"]
    _assert_security_headers(response, "/login POST")


def test_headers_static_files_stay_cacheable(client):
    response = client.get("/static/css/portal.css")

    assert response.status_code == 200
    assert "no-store" not in (response.headers.get("Cache-Control") or "")


@pytest.mark.parametrize("url", ["/login", "/static/css/portal.css", "/api/v1/openapi.json", "/health",
                                 "/no/such/page"])
def test_headers_hsts_over_tls(app, url):
    response = app.test_client().get(url, base_url="https://portal.example.com")

    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains", url


def test_headers_hsts_when_a_trusted_proxy_says_https(app):
    """portal/proxy.py turns X-Forwarded-Proto from a trusted proxy into the https scheme: the same WSGI environ."""
    response = app.test_client().get("/login", environ_overrides={"wsgi.url_scheme": "https"})

    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_headers_no_hsts_over_plain_http_outside_production(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_headers_hsts_always_in_production(app, monkeypatch):
    monkeypatch.setitem(app.config, "APP_ENV", "production")

    response = app.test_client().get("/login")

    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_headers_htmx_config_allows_no_eval_and_only_own_origin(client):
    html = text_of(client.get("/login"))
    raw = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html).group(1)
    config = json.loads(unescape(raw))

    assert config["selfRequestsOnly"] is True
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script on the page"
    assert not re.search(r"\son[a-z]+=|hx-on", html), "inline event handler on the page"


def test_headers_every_plain_get_route_anonymously(app, client):
    """Every GET route without URL arguments (sign-in, registration, password pages...), signed out."""
    urls = sorted({rule.rule for rule in app.url_map.iter_rules()
                   if "GET" in rule.methods and not rule.arguments and rule.endpoint != "static"})
    assert "/login" in urls
    for url in urls:
        response = client.get(url)
        assert response.status_code < 500, url
        _assert_security_headers(response, url)
        assert "no-store" in response.headers["Cache-Control"], url
