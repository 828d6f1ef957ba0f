"""The dashboard for managers (issue #12): who sees it, its charts' figures (from the rollups, never the
requests), the links from each bar or point to the requests behind it, and the list's date ranges."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.web.helpers import HX, text_of

MONDAY = date(2026, 3, 2)                          # a Monday
NOW = datetime(2026, 3, 11, 15, 30, tzinfo=UTC)    # the Wednesday of the week after: week 12 of 12
FIRST_WEEK = MONDAY - timedelta(weeks=10)          # 22 Dec 2025


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/summary", "/dashboard/breaches", "/dashboard/charts"])
@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("manager", 200), ("agent", 403), ("requester", 403)])
def test_dashboard_is_for_managers_and_admins(login_client, make, path, role, status):
    assert login_client(make.user(role)).get(path).status_code == status


def test_dashboard_link_in_the_bar_for_managers_not_agents(login_client, make):
    assert 'href="/dashboard"' in text_of(login_client(make.user("manager")).get("/requests"))
    assert 'href="/dashboard"' not in text_of(login_client(make.user("agent")).get("/requests"))


def test_holiday_reminder_stays_with_admins(app, login_client, make):
    from portal.extensions import db
    from portal.models import SlaDefinition
    from portal.policy import SYSTEM
    from portal.services import sla_admin

    with app.app_context():
        calendar = sla_admin.create_calendar(SYSTEM, {"name": "Quiet office", "timezone": "UTC",
                                                      "working_days": [0, 1, 2, 3, 4], "opens": time(9),
                                                      "closes": time(17)})
        db.session.add(SlaDefinition(category="software", priority="medium", response_time_hours=4,
                                     resolution_time_hours=24, calendar_id=calendar.id, is_active=True))
        db.session.commit()
    assert 'id="holiday-reminder"' in text_of(login_client(make.user("admin")).get("/dashboard"))
    manager_page = text_of(login_client(make.user("manager")).get("/dashboard"))
    assert 'id="holiday-reminder"' not in manager_page and "/admin/calendars" not in manager_page
    assert 'id="summary-cards"' in manager_page and 'id="breach-widget"' in manager_page
    assert 'id="dashboard-charts"' in manager_page


# ---------------------------------------------------------------- the figures, from the rollups


def _seed_rollups(app) -> None:
    """Rollup rows as the jobs keep them (clean days: no dirty marks), in and out of the charts' periods."""
    from portal.extensions import db
    from portal.models import SlaRollupBreach, SlaRollupTarget, TrendDaily

    with app.app_context():
        db.session.add_all([
            # opened/resolved: two rows in the week of 2 Mar, one in the week of 22 Dec, one before it
            TrendDaily(day=MONDAY, category="hardware", priority="high", created=3, resolved=2),
            TrendDaily(day=MONDAY + timedelta(days=6), category="network", priority="low", created=4, resolved=1),
            TrendDaily(day=FIRST_WEEK, category="software", priority="medium", created=5, resolved=0),
            TrendDaily(day=FIRST_WEEK - timedelta(days=1), category="software", priority="medium", created=50,
                       resolved=50),
            # targets: 9 of 12 met in the week of 2 Mar; 1 of 4 in the week of 22 Dec; one before
            SlaRollupTarget(day=MONDAY + timedelta(days=1), category="hardware", priority="high", response_met=5,
                            response_decided=6, resolution_met=4, resolution_decided=6),
            SlaRollupTarget(day=FIRST_WEEK + timedelta(days=2), category="network", priority="low", response_met=1,
                            response_decided=2, resolution_met=0, resolution_decided=2),
            SlaRollupTarget(day=FIRST_WEEK - timedelta(days=2), category="network", priority="low", response_met=0,
                            response_decided=7, resolution_met=0, resolution_decided=7),
            # breaches: in the last 30 days (10 Feb - 11 Mar), and one day before them
            SlaRollupBreach(day=date(2026, 2, 10), category="network", priority="critical", response_breaches=2,
                            resolution_breaches=1),
            SlaRollupBreach(day=date(2026, 3, 3), category="hardware", priority="high", response_breaches=1,
                            resolution_breaches=3),
            SlaRollupBreach(day=date(2026, 3, 4), category="network", priority="high", response_breaches=0,
                            resolution_breaches=1),
            SlaRollupBreach(day=date(2026, 2, 9), category="access", priority="low", response_breaches=9,
                            resolution_breaches=9),
        ])
        db.session.commit()


def test_chart_figures_equal_the_rollup_rows(app):
    from portal.services.dashboard_charts import chart_data

    _seed_rollups(app)
    with app.app_context():
        data = chart_data(NOW)
    assert [w.start for w in data.weeks] == [FIRST_WEEK + timedelta(weeks=i) for i in range(12)]
    by_week = {w.start: w for w in data.weeks}
    assert (by_week[MONDAY].opened, by_week[MONDAY].resolved) == (7, 3)
    assert (by_week[FIRST_WEEK].opened, by_week[FIRST_WEEK].resolved) == (5, 0)
    assert (by_week[MONDAY].met, by_week[MONDAY].decided) == (9, 12)
    assert (by_week[FIRST_WEEK].met, by_week[FIRST_WEEK].decided) == (1, 4)
    assert sum(w.opened for w in data.weeks) == 12 and sum(w.decided for w in data.weeks) == 16
    assert by_week[MONDAY + timedelta(weeks=1)].met_rate is None  # nothing decided: no point, not 0%
    breaches = data.breaches
    assert (breaches.first, breaches.last, breaches.total) == (date(2026, 2, 10), date(2026, 3, 11), 8)
    assert breaches.by_priority == [("critical", 3), ("high", 5), ("medium", 0), ("low", 0)]
    assert breaches.by_category == [("hardware", "Hardware", 4), ("network", "Network", 4)]


def _chart(html: str, chart_id: str) -> str:
    start = html.index('<figure class="chart')
    start = html.index(f'id="{chart_id}"', start)
    return html[start:html.index("</figure>", start)]


def _links(fragment: str) -> list[tuple[str, dict[str, str]]]:
    """(aria-label, query) of each link drawn in a chart's SVG."""
    svg = fragment[fragment.index("<svg"):fragment.index("</svg>")]
    found = []
    for href, label in re.findall(r'<a href="([^"]+)" aria-label="([^"]+)">', svg):
        parts = urlsplit(unescape(href))
        assert parts.path == "/requests"
        found.append((unescape(label), {k: v[0] for k, v in parse_qs(parts.query).items()}))
    return found


def test_charts_draw_the_figures_with_links_to_the_requests_behind_them(app, login_client, make, monkeypatch):
    from portal.services import dashboard_charts

    _seed_rollups(app)
    real = dashboard_charts.chart_data
    monkeypatch.setattr(dashboard_charts, "chart_data", lambda now=None: real(NOW))
    html = text_of(login_client(make.user("manager")).get("/dashboard/charts", headers=HX))
    assert html.lstrip().startswith('<section id="dashboard-charts"') and "<html" not in html
    assert 'style="' not in html and "<script" not in html  # the CSP allows neither

    volume = _links(_chart(html, "chart-volume"))
    assert ("Week of 2 Mar: 7 opened. Show them.",
            {"status": "any", "created": "2026-03-02..2026-03-08"}) in volume
    assert ("Week of 2 Mar: 3 resolved. Show them.",
            {"status": "any", "resolved": "2026-03-02..2026-03-08"}) in volume
    assert ("Week of 22 Dec: 5 opened. Show them.",
            {"status": "any", "created": "2025-12-22..2025-12-28"}) in volume
    assert len(volume) == 3  # a week of 0 draws no bar

    compliance = _links(_chart(html, "chart-compliance"))
    assert compliance == [
        ("Week of 22 Dec: 25% of SLA targets met (1 of 4). Show the requests created that week.",
         {"status": "any", "created": "2025-12-22..2025-12-28"}),
        ("Week of 2 Mar: 75% of SLA targets met (9 of 12). Show the requests created that week.",
         {"status": "any", "created": "2026-03-02..2026-03-08"})]

    priority = _links(_chart(html, "chart-breach-priority"))
    assert priority == [
        ("Critical 3 breaches in the last 30 days. Show the requests.",
         {"status": "any", "priority": "critical", "breached": "2026-02-10..2026-03-11"}),
        ("High 5 breaches in the last 30 days. Show the requests.",
         {"status": "any", "priority": "high", "breached": "2026-02-10..2026-03-11"})]
    category = _links(_chart(html, "chart-breach-category"))
    assert [query["category"] for _label, query in category] == ["hardware", "network"]

    # The same numbers as a table, for anyone who would rather read them.
    table = _chart(html, "chart-volume")
    table = table[table.index("<table"):]
    assert re.search(r"<th scope=\"row\">2 Mar</th><td class=\"num-right\"><a href=\"[^\"]+\">7</a></td>"
                     r"<td class=\"num-right\"><a href=\"[^\"]+\">3</a></td>", table)


def test_charts_say_calmly_when_a_period_is_empty(login_client, make):
    html = text_of(login_client(make.user("manager")).get("/dashboard"))
    charts = html[html.index('<section id="dashboard-charts"'):]
    assert "No requests in this period." in charts
    assert "No SLA targets were decided in this period." in charts
    assert charts.count("No SLA breaches in the last 30 days.") == 2
    assert "<svg" not in charts[:charts.index("</section>")]


# The charts' poll (ETag, 304 while nothing changed, a new breach changes it): tests/web/test_poll_etags.py.


# ---------------------------------------------------------------- a bar's link lands on its requests


def _backdate(app, request_id: int, created: datetime, resolved: datetime | None = None) -> None:
    from portal.extensions import db
    from portal.models import ServiceRequest

    with app.app_context():
        req = db.session.get(ServiceRequest, request_id)
        req.created_at = created
        if resolved is not None:
            req.status, req.resolved_at = "resolved", resolved
        db.session.commit()


def test_the_opened_and_resolved_bars_count_what_their_links_list(app, login_client, make):
    from portal.services import reports
    from portal.services.dashboard_charts import chart_data

    requester = make.user("requester")
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday(), weeks=2)
    at = datetime.combine(monday, time(10), UTC)
    for n in range(4):
        req = make.request(requester, title=f"Opened that week {n}")
        _backdate(app, req.id, at + timedelta(days=n), resolved=at + timedelta(days=n, hours=3) if n < 3 else None)
    before = make.request(requester, title="Opened the Sunday before")
    _backdate(app, before.id, at - timedelta(days=1, hours=1), resolved=at + timedelta(days=7, hours=1))
    with app.app_context():
        reports.calculate_trends(days=40)
        week = {w.start: w for w in chart_data().weeks}[monday]
    assert (week.opened, week.resolved) == (4, 3)

    client = login_client(make.user("manager"))
    html = text_of(client.get("/dashboard/charts", headers=HX))
    links = dict(_links(_chart(html, "chart-volume")))
    opened = links[f"Week of {monday.day} {monday:%b}: 4 opened. Show them."]
    resolved = links[f"Week of {monday.day} {monday:%b}: 3 resolved. Show them."]
    for query, count, absent in ((opened, 4, "Opened the Sunday before"), (resolved, 3, "Opened that week 3")):
        page = text_of(client.get("/requests", query_string=query))
        assert f"{count} request{'s' if count != 1 else ''}" in page
        assert len(re.findall(r'<td class="num">\d+</td>', page)) == count
        assert absent not in page
        assert "UTC" in page and "Remove" in page  # the range is shown, and can be taken off


# ---------------------------------------------------------------- the list's date ranges


def test_list_date_range_filters(app, login_client, make):
    from portal.services.errors import ValidationFailed
    from portal.services.requests import parse_filters

    with app.app_context():
        f = parse_filters({"created": "2026-03-02..2026-03-08", "breached": "2026-03-09..2026-03-01",
                           "resolved": "yesterday"})
        assert f.created == "2026-03-02..2026-03-08" and f.as_query()["created"] == "2026-03-02..2026-03-08"
        assert not f.breached and not f.resolved and set(f.errors) == {"breached", "resolved"}
        assert f.date_labels() == [("created", "Created", "2 Mar – 8 Mar 2026")]
        assert parse_filters({"resolved": "2025-12-29..2026-01-04"}).date_labels() == [
            ("resolved", "Resolved", "29 Dec 2025 – 4 Jan 2026")]
        with pytest.raises(ValidationFailed):  # the API refuses what the page leaves out
            parse_filters({"created": "2026-03-02..2027-03-08"}, strict=True)
    make.request(make.user("requester"))
    agent = login_client(make.user("agent"))
    page = text_of(agent.get("/requests?status=any&created=2026-03-02..2026-03-08&resolved=nope"))
    assert "Some filters were ignored" in page and 'name="created" value="2026-03-02..2026-03-08"' in page
    assert "0 requests" not in page  # none in the range: the list's calm empty state


def test_breached_range_lists_requests_with_a_breach_recorded_in_it(app, login_client, make):
    from portal.extensions import db
    from portal.models import SlaMetric

    make.sla()
    requester = make.user("requester")
    late = make.request(requester, title="Breached in range")
    early = make.request(requester, title="Breached before the range")
    never = make.request(requester, title="Never breached")
    with app.app_context():
        for req, when in ((late, datetime(2026, 3, 4, 9, tzinfo=UTC)), (early, datetime(2026, 2, 1, tzinfo=UTC))):
            metric = db.session.query(SlaMetric).filter_by(request_id=req.id).one()
            metric.resolution_breached_at = when
        db.session.commit()
    page = text_of(login_client(make.user("manager")).get("/requests?status=any&breached=2026-03-01..2026-03-07"))
    assert "Breached in range" in page and "Breached before the range" not in page
    assert never.title not in page and "1 request" in page


def test_list_date_filters_read_through_indexes(ctx):
    from sqlalchemy import text
    from sqlalchemy.dialects import postgresql

    from portal.extensions import db
    from portal.policy import SYSTEM
    from portal.services.requests.queries import date_conditions, parse_filters, sort_order, visible_requests

    def explain(stmt) -> str:
        compiled = stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(db.session.execute(text(f"EXPLAIN {compiled}")).scalars())

    for name, column in (("created", "created_at"), ("resolved", "resolved_at"),
                         ("breached", "response_breached_at"), ("breached", "resolution_breached_at")):
        f = parse_filters({"status": "any", name: "2026-03-02..2026-03-08"})
        plan = explain(visible_requests(SYSTEM).where(*date_conditions(f)).order_by(*sort_order("newest"))
                       .limit(26))
        conditions = [line for line in plan.splitlines() if "Index Cond:" in line]
        assert any(f"{column} >= " in line for line in conditions), plan
        assert "Seq Scan" not in plan, plan
    db.session.rollback()
