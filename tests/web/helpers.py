"""Plain helpers shared by the web tests."""

from __future__ import annotations

import json
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

HX = {"HX-Request": "true"}


def text_of(response) -> str:
    return response.get_data(as_text=True)


def link_with_rel(html: str, rel: str) -> str | None:
    """The href of the <a ... rel="rel"> link, unescaped."""
    for tag in re.findall(r"<a\b[^>]*>", html):
        if f'rel="{rel}"' in tag:
            return unescape(re.search(r'href="([^"]*)"', tag).group(1))
    return None


def csrf_from_body(html: str) -> str:
    """The CSRF token the page hands to htmx in <body hx-headers>."""
    raw = re.search(r"<body[^>]*hx-headers='([^']*)'", html).group(1)
    return json.loads(unescape(raw))["X-CSRFToken"]


def csrf_from_form(html: str) -> str:
    """The first hidden csrf_token field's value."""
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def login_next(location: str) -> str | None:
    """For a redirect to the sign-in page, its ?next= value; fails for any other target."""
    parts = urlsplit(location)
    assert parts.path == "/login" and not parts.netloc, location
    return parse_qs(parts.query).get("next", [None])[0]


def oob_ids(html: str) -> set[str]:
    """Ids of the elements an HTMX response swaps in out of band (hx-swap-oob)."""
    return set(re.findall(r'<[a-z]+ id="([^"]+)"[^>]*hx-swap-oob="true"', html))


def main_part(html: str) -> str:
    """The response's first element (the target's new content), without its out-of-band parts."""
    cut = re.search(r'<[a-z]+ id="[^"]+"[^>]*hx-swap-oob="true"', html)
    return html[:cut.start()] if cut else html


# The request page's parts a change answers with; "composer-send" (the composer's send buttons and version)
# comes inside the composer when the composer itself is the answer; "request-live" is the change the
# page shows (what its live poll compares with).
REQUEST_PAGE_PARTS = {"request-header", "request-description", "request-panel", "timeline", "sla-targets",
                      "composer-send", "request-live"}
