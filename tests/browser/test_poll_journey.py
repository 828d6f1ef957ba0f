"""Polls that find nothing new cost almost nothing, seen from a real browser (issue #11): the dashboard's
30-second polls revalidate with If-None-Match, an unchanged one comes back 304 (no body), and a new
breach shows on the next poll. Playwright's clock stands in for the 30 seconds."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.browser.test_sla_journeys import _backdate
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser

POLLED = ("/dashboard/summary", "/dashboard/breaches")


@pytest.fixture()
def desk(factories):
    """An admin, a 1 h / 4 h SLA on network/high and one request past its response target."""
    from portal.services import sla_admin

    admin = factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    requester = factories.make_user("requester", email="riley@example.com", name="Riley Requester")
    sla_admin.create_definition(admin, {"category": "network", "priority": "high", "response_time_hours": 1,
                                        "resolution_time_hours": 4})
    late = factories.make_request(requester, title="VPN down for the whole office", category="network",
                                  priority="high")
    _backdate(late.id, 2.5)
    return {"requester": requester}


def test_unchanged_poll_is_a_304_and_a_change_shows_next_time(page, desk, factories):
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    responses = []
    page.on("response", lambda r: responses.append(r) if r.url.endswith(POLLED) else None)
    # Playwright reports what the page got: a revalidated copy shows as the cached 200. The status on
    # the wire comes from Chromium's network events.
    cdp = page.context.new_cdp_session(page)
    urls, wire = {}, {}
    cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
    cdp.on("Network.responseReceivedExtraInfo", lambda e: wire.__setitem__(e["requestId"], e["statusCode"]))
    cdp.send("Network.enable")

    def on_wire(path: str) -> list[int]:
        """The statuses the server sent for `path`, in order."""
        return [wire[i] for i, url in urls.items() if url.endswith(path) and i in wire]
    page.clock.install()
    page.goto("/dashboard")
    expect(page.locator("#breach-widget")).to_contain_text("VPN down for the whole office")

    def poll_round():
        """Let 30 seconds pass: both widgets poll once; their responses by path."""
        seen = len(responses)
        page.clock.run_for(30_500)
        page.wait_for_function("() => !document.querySelector('.htmx-request')")
        for _ in range(100):
            if len(responses) >= seen + 2:
                break
            page.wait_for_timeout(50)
        got = {next(p for p in POLLED if r.url.endswith(p)): r for r in responses[seen:]}
        assert set(got) == set(POLLED), [r.url for r in responses[seen:]]
        return got

    first = poll_round()  # the page was no-store, so the browser has nothing to revalidate yet
    assert {p: r.status for p, r in first.items()} == {p: 200 for p in POLLED}
    assert all(r.header_value("etag").startswith('W/"') for r in first.values())
    assert first["/dashboard/summary"].header_value("cache-control") == "private, no-cache"

    second = poll_round()
    summary = second["/dashboard/summary"]
    assert summary.request.all_headers().get("if-none-match") == first["/dashboard/summary"].header_value("etag")
    assert on_wire("/dashboard/summary")[-1] == 304
    assert summary.request.sizes()["responseBodySize"] == 0  # no body crossed the network
    assert summary.status == 200  # ...and htmx got the kept copy as a plain 200
    # The widget's "2 h 30 min overdue" moves once a minute: if that minute turned, the next is a 304.
    if on_wire("/dashboard/breaches")[-1] != 304:
        poll_round()
    assert on_wire("/dashboard/breaches")[-1] == 304
    expect(page.locator("#breach-widget")).to_contain_text("VPN down for the whole office")  # kept, not emptied

    # Something new: the next poll brings it.
    newer = factories.make_request(desk["requester"], title="Core switch unreachable", category="network",
                                   priority="high")
    _backdate(newer.id, 3)
    poll_round()
    assert on_wire("/dashboard/summary")[-1] == 200 and on_wire("/dashboard/breaches")[-1] == 200
    expect(page.locator("#breach-widget")).to_contain_text("Core switch unreachable")
    expect(page.locator("#summary-cards")).to_contain_text("Breached now")
    breached_now = page.locator(".stat", has_text="Breached now").locator(".stat-value")
    expect(breached_now).to_have_text("2")
