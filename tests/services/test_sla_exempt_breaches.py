"""Exempt breaches on the breach list (portal.services.sla_reports): a recorded breach stands, an
active exemption over it is noted on its row, and `exempt=hide` leaves such rows out."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import event
from werkzeug.datastructures import MultiDict

from portal.extensions import db
from portal.models import SlaExemption
from portal.models._time import utcnow
from portal.services import sla, sla_reports
from tests.services.sla_helpers import make_definition


def _breached_request(factories, category: str = "network", priority: str = "high") -> int:
    """A request raised three hours ago against a one-hour response target: breached."""
    req = factories.make_request(category=category, priority=priority)
    metric = sla.get_metric(req.id)
    req.created_at -= timedelta(hours=3)
    metric.started_at -= timedelta(hours=3)
    sla.recompute(metric, utcnow())
    db.session.commit()
    sla.check_all_breaches()
    return req.id


def _listed(**args) -> dict[int, sla_reports.BreachRow]:
    page = sla_reports.breach_list(sla_reports.parse_breach_filters(MultiDict(args)))
    return {row.request.id: row for row in page.items}


def _setup(factories):
    make_definition("network", "high", 1, 48)
    manager = factories.make_user("manager")
    exempted, plain = _breached_request(factories), _breached_request(factories)
    return manager, exempted, plain


def test_breach_list_notes_an_active_exemption_and_the_breach_stands(ctx, factories):
    manager, exempted, plain = _setup(factories)

    sla.grant_exemption(manager, exempted, "Waiting for the vendor", "both", 24)

    rows = _listed()
    assert set(rows) == {exempted, plain}
    assert rows[exempted].state == "breached" and rows[exempted].metric.response_breached_at is not None
    note = rows[exempted].exemption
    assert note is not None and note.active and note.whole and note.label.startswith("exempt until ")
    assert rows[plain].exemption is None


def test_breach_list_hide_leaves_out_exempt_breaches_and_counts_without_them(ctx, factories):
    manager, exempted, plain = _setup(factories)
    sla.grant_exemption(manager, exempted, "Waiting for the vendor", "response", None)

    page = sla_reports.breach_list(sla_reports.parse_breach_filters(MultiDict({"exempt": "hide"})))

    assert [row.request.id for row in page.items] == [plain] and page.total == 1
    assert set(_listed(exempt="show")) == {exempted, plain}


def test_breach_list_hide_keeps_an_exemption_of_the_other_target(ctx, factories):
    manager, exempted, plain = _setup(factories)
    # Only the resolution target is exempt; the recorded breach is of the response target.
    sla.grant_exemption(manager, exempted, "Waiting for the vendor", "resolution", None)

    assert set(_listed(exempt="hide")) == {exempted, plain}
    assert _listed()[exempted].exemption is None


def test_breach_list_hide_keeps_a_revoked_or_expired_exemption(ctx, factories):
    manager, revoked, expired = _setup(factories)
    granted = sla.grant_exemption(manager, revoked, "Waiting for the vendor", "both", None)
    sla.revoke_exemption(manager, revoked, granted.id)
    lapsed = sla.grant_exemption(manager, expired, "Waiting for the vendor", "both", 1)
    lapsed_row = db.session.get(SlaExemption, lapsed.id)
    lapsed_row.granted_at -= timedelta(hours=2)
    lapsed_row.expires_at -= timedelta(hours=2)
    db.session.commit()

    rows = _listed(exempt="hide")

    assert set(rows) == {revoked, expired}
    assert rows[revoked].exemption is None and rows[expired].exemption is None


def test_parse_breach_filters_bad_exempt_value_is_named_and_the_rest_applied(ctx):
    filters = sla_reports.parse_breach_filters(MultiDict({"exempt": "maybe", "priority": "high"}))

    assert filters.errors == {"exempt": "Use 'show' or 'hide' for exempt breaches."}
    assert filters.exempt == "" and filters.priority == "high"
    assert filters.form_value("exempt") == "maybe"
    assert sla_reports.parse_breach_filters(MultiDict({"exempt": "hide"})).as_query() == {"exempt": "hide"}
    assert sla_reports.parse_breach_filters(MultiDict({"exempt": "show"})).as_query() == {}


@contextmanager
def _statements():
    """Every SQL statement (with its parameters) the block runs."""
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_breach_list_reads_the_page_exemptions_in_one_query(ctx, factories):
    make_definition("network", "high", 1, 48)
    manager = factories.make_user("manager")
    ids = [_breached_request(factories) for _ in range(4)]
    for request_id in ids:
        sla.grant_exemption(manager, request_id, "Waiting for the vendor", "both", 24)

    with _statements() as seen:
        rows = _listed()

    assert all(rows[i].exemption is not None for i in ids)
    assert sum("FROM sla_exemption" in statement for statement, _ in seen) == 1


def test_hide_exempt_breaches_uses_the_request_id_index(ctx, factories):
    """The hide filter's NOT EXISTS looks exemptions up by request_id: EXPLAIN the count query the
    list really runs; with sequential scans ruled out (the test tables are tiny) the planner must
    still find the index for it."""
    _setup(factories)
    with _statements() as seen:
        _listed(exempt="hide")
    statement, parameters = next((s, p) for s, p in seen if "NOT (EXISTS" in s and "count(" in s)

    conn = db.session.connection()
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))
    db.session.rollback()

    assert "ix_sla_exemption_request_id" in plan, plan
