"""Error pages and JSON errors, upload size limit, correlation ids and security headers."""

from __future__ import annotations

import io
import re
import uuid
from html import unescape

import pytest

from tests.web.helpers import text_of


def test_error_404_page_is_friendly_html(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = text_of(response)
    assert "<title>Page not found · Service Portal</title>" in html
    assert "<h1>Page not found</h1>" in html
    assert 'href="/"' in html
    assert "Traceback" not in html


def test_error_404_page_signed_in_keeps_navigation(login_client, make):
    response = login_client(make.user("agent")).get("/no/such/page")
    assert response.status_code == 404
    html = text_of(response)
    assert "Page not found" in html and 'class="topbar"' in html


def test_error_405_page(client):
    response = client.get("/api/v1/auth/token")
    assert response.status_code == 405
    assert response.is_json
    html = text_of(client.delete("/login"))
    assert "That action is not allowed here" in html


def test_error_api_unknown_path_is_json_404(client):
    response = client.get("/api/v1/nonexistent")
    assert response.status_code == 404
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "not_found"
    assert body["error"]["message"]


def test_error_api_unauthenticated_is_json_401(client):
    response = client.get("/api/v1/service-requests")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_error_oversized_upload_413_page(app, login_client, make):
    client = login_client(make.user("requester"))
    old = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1024
    try:
        response = client.post("/requests/new", content_type="multipart/form-data", data={
            "title": "Big file", "category": "software", "priority": "medium", "description": "x",
            "attachments": (io.BytesIO(b"x" * 20_000), "big.log"),
        })
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    html = text_of(response)
    assert "<h1>That upload is too large</h1>" in html
    assert "Uploads are limited to" in html
    assert make.count("ServiceRequest") == 0


def test_error_oversized_comment_upload_413(app, login_client, make):
    alice = make.user("requester")
    req = make.request(alice)
    client = login_client(alice)
    old = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1024
    try:
        response = client.post(f"/requests/{req.id}/comments", content_type="multipart/form-data",
                               headers={"HX-Request": "true"},
                               data={"body": "big", "attachments": (io.BytesIO(b"x" * 20_000), "big.log")})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old
    assert response.status_code == 413
    assert "That upload is too large" in text_of(response)
    assert make.comments(req.id) == []


def test_error_attachment_over_per_file_limit_is_form_error(app, login_client, make):
    client = login_client(make.user("requester"))
    old = app.config["MAX_ATTACHMENT_BYTES"]
    app.config["MAX_ATTACHMENT_BYTES"] = 1024 * 1024
    try:
        response = client.post("/requests/new", content_type="multipart/form-data", data={
            "title": "Big file", "category": "software", "priority": "medium", "description": "x",
            "attachments": (io.BytesIO(b"x" * (1024 * 1024 + 1)), "big.log"),
        })
    finally:
        app.config["MAX_ATTACHMENT_BYTES"] = old
    assert response.status_code == 422
    assert "'big.log' is larger than 1 MB." in unescape(text_of(response))
    assert make.count("ServiceRequest") == 0


@pytest.mark.parametrize("url", ["/login", "/no/such/page", "/api/v1/openapi.json", "/api/v1/nonexistent"])
def test_correlation_id_echoed(client, url):
    response = client.get(url, headers={"X-Correlation-ID": "abc-123.XYZ_9"})
    assert response.headers["X-Correlation-ID"] == "abc-123.XYZ_9"


@pytest.mark.parametrize("incoming", [None, "", "has spaces", "x" * 65, "semi;colon", "co:lon", "<script>"])
def test_correlation_id_generated_when_missing_or_unsafe(client, incoming):
    headers = {} if incoming is None else {"X-Correlation-ID": incoming}
    response = client.get("/login", headers=headers)
    cid = response.headers["X-Correlation-ID"]
    assert cid != incoming
    uuid.UUID(cid)


def test_error_pages_and_json_errors_quote_the_correlation_id(client):
    page = client.get("/no/such/page", headers={"X-Correlation-ID": "ticket-4711"})
    assert "Reference: <code>ticket-4711</code>" in text_of(page)
    api = client.get("/api/v1/nonexistent", headers={"X-Correlation-ID": "ticket-4712"})
    assert api.get_json()["error"]["correlation_id"] == "ticket-4712"
    generated = client.get("/api/v1/service-requests")
    assert generated.get_json()["error"]["correlation_id"] == generated.headers["X-Correlation-ID"]


def test_correlation_id_differs_per_request(client):
    assert client.get("/login").headers["X-Correlation-ID"] != client.get("/login").headers["X-Correlation-ID"]


def _assert_security_headers(response):
    csp = response.headers["Content-Security-Policy"]
    assert "default-src" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("url", ["/login", "/no/such/page", "/api/v1/openapi.json", "/api/v1/nonexistent", "/"])
def test_security_headers_anonymous(client, url):
    _assert_security_headers(client.get(url))


def test_security_headers_signed_in_pages_not_cached(login_client, make):
    alice = make.user("requester")
    req = make.request(alice)
    client = login_client(alice)
    for url in ("/requests", f"/requests/{req.id}", f"/requests/{req.id}/timeline", "/no/such/page"):
        response = client.get(url)
        _assert_security_headers(response)
        assert response.headers["Cache-Control"] == "no-store", url


def test_security_headers_on_download(login_client, make):
    alice = make.user("requester")
    req = make.request(alice, uploads=[("a.txt", b"hello")])
    response = login_client(alice).get(f"/attachments/{req.attachment_ids[0]}")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_security_headers_download_not_stored_in_caches(login_client, make):
    """Signed-in pages are sent with Cache-Control: no-store; private attachments should be too."""
    alice = make.user("requester")
    req = make.request(alice, uploads=[("a.txt", b"hello")])
    response = login_client(alice).get(f"/attachments/{req.attachment_ids[0]}")
    assert response.status_code == 200
    directives = {d.strip() for d in response.headers["Cache-Control"].split(",")}
    assert "no-store" in directives, response.headers["Cache-Control"]


def test_error_unexpected_exception_is_friendly_500(login_client, make, monkeypatch):
    """An unexpected exception: a friendly 500 page, the headers still set, no details leaked."""
    client = login_client(make.user("requester"))

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom secret detail")

    monkeypatch.setattr("portal.services.requests.list_categories", boom)
    response = client.get("/requests/new")
    assert response.status_code == 500
    html = text_of(response)
    assert "Something went wrong on our side" in html
    assert "kaboom" not in html and "Traceback" not in html
    _assert_security_headers(response)
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["X-Correlation-ID"])


@pytest.mark.parametrize(("url", "data", "status"), [
    ("/requests/new", {"title": "a\x00b", "category": "other", "priority": "low", "description": "x"}, 422),
    ("/requests/new", {"title": "ok", "category": "other", "priority": "low", "description": "x\x00"}, 422),
    ("/requests/{id}/comments", {"body": "nul\x00here"}, 422),
])
def test_error_nul_characters_in_forms_are_422_not_500(login_client, make, url, data, status):
    alice = make.user("requester")
    req = make.request(alice)
    before = make.count("ServiceRequest")
    response = login_client(alice).post(url.format(id=req.id), data=data)
    assert response.status_code == status
    assert "NUL" in text_of(response)
    assert make.count("ServiceRequest") == before
    assert make.comments(req.id) == []


def test_error_nul_in_login_email_is_401_not_500(client, make):
    make.user("requester")
    response = client.post("/login", data={"email": "a\x00@example.com", "password": "whatever-123"})
    assert response.status_code in (401, 422)
