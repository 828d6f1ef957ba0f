"""/metrics answers the allowed networks and the bearer token only; anyone else gets a short 403."""

from __future__ import annotations

import pytest

from portal.config import ConfigError, load_config
from portal.metrics import allowed_networks, may_read_metrics


@pytest.fixture()
def metrics_token(app):
    app.config["METRICS_TOKEN"] = "s3cret-scrape-token"
    yield "s3cret-scrape-token"
    app.config["METRICS_TOKEN"] = None


def _refused(response):
    assert response.status_code == 403
    assert response.content_type.startswith("text/plain")
    body = response.get_data(as_text=True)
    assert "app_requests_total" not in body and "<html" not in body.lower()
    assert "METRICS_ALLOW" in body


@pytest.mark.parametrize("address", ["127.0.0.1", "127.10.0.3", "::1"])
def test_loopback_may_read_metrics(client, address):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 200
    assert "app_requests_total" in response.get_data(as_text=True)


@pytest.mark.parametrize("address", ["203.0.113.9", "10.0.0.5", "2001:db8::1", ""])
def test_other_addresses_are_refused(client, address):
    _refused(client.get("/metrics", environ_base={"REMOTE_ADDR": address}))


def test_the_token_opens_metrics_from_anywhere(client, metrics_token):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"},
                          headers={"Authorization": f"Bearer {metrics_token}"})
    assert response.status_code == 200
    assert "app_requests_total" in response.get_data(as_text=True)


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Bearer ", "Basic czNjcmV0", "s3cret-scrape-token"])
def test_a_wrong_token_is_refused(client, metrics_token, header):
    _refused(client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}, headers={"Authorization": header}))


def test_no_token_configured_means_no_token_opens_it(client):
    _refused(client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"},
                        headers={"Authorization": "Bearer "}))


def test_through_a_proxy_loopback_is_not_enough(client, metrics_token):
    """A proxy on the same host makes every visitor look like 127.0.0.1: forwarded requests need the token."""
    _refused(client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"}))
    assert client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7",
                                           "Authorization": f"Bearer {metrics_token}"}).status_code == 200


def test_configured_networks():
    networks = allowed_networks("10.1.0.0/16, 192.168.5.7")
    assert may_read_metrics("10.1.200.3", {}, networks, None)
    assert may_read_metrics("192.168.5.7", {}, networks, None)
    assert not may_read_metrics("192.168.5.8", {}, networks, None)
    assert not may_read_metrics("127.0.0.1", {}, networks, None)  # loopback only when listed
    assert may_read_metrics("::ffff:10.1.2.3", {}, networks, None)  # IPv4 seen through an IPv6 socket
    assert allowed_networks("") == ()
    assert load_config({"METRICS_ALLOW": ""})["METRICS_ALLOW"] == ""
    assert load_config({})["METRICS_ALLOW"] == "127.0.0.0/8,::1"
    with pytest.raises(ConfigError, match="METRICS_ALLOW"):
        load_config({"METRICS_ALLOW": "10.0.0.0/8,intranet"})
