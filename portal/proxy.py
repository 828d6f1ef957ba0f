"""Behind a reverse proxy: the client's address and scheme from X-Forwarded-*, only from trusted proxies.

Without TRUSTED_PROXIES (the default) the headers are ignored: anyone could send them, and a forged
X-Forwarded-For would dodge the sign-in limits and blocks. With it, a request whose direct peer is a
trusted proxy takes its client address from X-Forwarded-For, read from the right (the hop nearest us)
past every trusted proxy, and its scheme from X-Forwarded-Proto (so HSTS, Secure cookies and
links know the browser used HTTPS).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def parse_networks(raw: str) -> tuple:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


def _address(text: str | None):
    try:
        address = ipaddress.ip_address((text or "").strip().split("%", 1)[0])
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def _trusted(address, networks: Iterable) -> bool:
    return address is not None and any(address.version == net.version and address in net for net in networks)


class TrustedProxies:
    """WSGI middleware applying X-Forwarded-For / X-Forwarded-Proto from trusted proxies only."""

    def __init__(self, wsgi_app, networks: tuple):
        self.wsgi_app = wsgi_app
        self.networks = networks

    def __call__(self, environ, start_response):
        peer = _address(environ.get("REMOTE_ADDR"))
        if _trusted(peer, self.networks):
            client = peer
            for hop in reversed([h for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]):
                address = _address(hop)
                if address is None:
                    break  # a malformed hop: trust nothing left of it
                client = address
                if not _trusted(address, self.networks):
                    break
            environ["portal.proxy_peer"] = environ.get("REMOTE_ADDR")
            environ["REMOTE_ADDR"] = str(client)
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        return self.wsgi_app(environ, start_response)
