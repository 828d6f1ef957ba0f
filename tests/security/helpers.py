"""Hostile strings and the checks that they come back as text, never as live markup."""

from __future__ import annotations

from html.parser import HTMLParser

from markupsafe import escape

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"
TEMPLATE = "{{7*7}}{{7*'7'}}"
HX_GET = '<div hx-get="/admin/users?pwn=1" hx-trigger="load">x</div>'
HX_ON = "<b hx-on:click=\"alert(1)\" hx-on::load=\"alert(2)\">y</b>"

EVERY = " ".join((SCRIPT, IMG, JS_URL, TEMPLATE, HX_GET, HX_ON))  # 203 characters
TITLE = " ".join((SCRIPT, IMG, TEMPLATE, HX_GET))                 # within a title's 200
SHORT = SCRIPT + IMG + "{{7*7}}"                                   # within a name's 80

# What would be live markup or an evaluated template if any of the strings got through unescaped.
RAW_MARKERS = ("<script>alert", "<img src=x", '<div hx-get="/admin/users?pwn', "<b hx-on", "7777777")
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "hx-get", "hx-post", "hx-put", "hx-patch", "hx-delete"}


class _Elements(HTMLParser):
    """Every start tag with its attributes, as a browser's parser would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def assert_inert(html: str, where: str = "") -> None:
    """No element, handler, htmx attribute, script or template result that came from user text."""
    for marker in RAW_MARKERS:
        assert marker not in html, f"{where}: {marker!r} came back unescaped"
    for tag, attrs in elements(html):
        for name, value in attrs.items():
            value = value or ""
            assert not name.startswith("on"), f"{where}: <{tag} {name}=...> is an event handler"
            assert not name.startswith("hx-on"), f"{where}: <{tag} {name}=...> is an htmx handler"
            if name in URL_ATTRIBUTES:
                assert "pwn" not in value, f"{where}: <{tag} {name}={value!r}> came from user text"
                assert not value.strip().lower().startswith("javascript:"), f"{where}: <{tag} {name}={value!r}>"
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/"), f"{where}: a <script> that is not the portal's"
        if tag == "img":
            assert attrs.get("src") != "x", f"{where}: an <img> from user text"


def shown(html: str, text: str) -> bool:
    """True when `text` is on the page as escaped text (what the person typed, shown as typed)."""
    return str(escape(text)) in html
