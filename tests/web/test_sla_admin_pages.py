"""Admin pages for SLA definitions (/admin/sla) and business calendars (/admin/calendars)."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

import pytest

from tests.web.helpers import HX, text_of

# ---------------------------------------------------------------- helpers


def _definitions(app) -> list[tuple]:
    from portal.services import sla_admin

    with app.app_context():
        return [(d.category, d.priority, float(d.response_time_hours), float(d.resolution_time_hours),
                 d.calendar_id, list(d.pause_statuses), d.at_risk_percent, d.is_active)
                for d in sla_admin.list_definitions()]


def _metric_targets(app, request_id: int) -> tuple[float, float]:
    from portal.services import sla

    with app.app_context():
        m = sla.get_metric(request_id)
        return float(m.response_target_hours), float(m.resolution_target_hours)


def _calendars(app) -> dict[str, tuple]:
    from portal.services import sla_admin

    with app.app_context():
        return {c.name: (c.timezone, list(c.working_days), c.opens.strftime("%H:%M"), c.closes.strftime("%H:%M"),
                         sorted((h.day.isoformat(), h.name) for h in c.holidays)) for c in sla_admin.list_calendars()}


def _analytics_jobs(app) -> list[tuple]:
    from portal.queueing import get_queue

    with app.app_context():
        return [(job.func_name, job.args) for job in get_queue("analytics").jobs]


def _flashes(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'<div class="flash flash-\w+" role="\w+">([^<]*)</div>', html)]


def _field_errors(html: str, field_id: str) -> list[str]:
    """The error lines under one field (its .field block)."""
    start = html.index(f'id="{field_id}"')
    block_start = html.rindex('<div class="field', 0, start)
    block_end = html.find('<div class="field', start)
    block = html[block_start:block_end if block_end != -1 else None]
    return [unescape(e) for e in re.findall(r'<p class="error"[^>]*role="alert">([^<]*)</p>', block)]


def _rows(html: str) -> list[tuple[str, str, str, str, str, str]]:
    """Definition rows (not the one being edited): category, priority, respond, resolve, counts, state."""
    out = []
    for row in re.findall(r'<tr class="(?:inactive)?">(.*?)</tr>', html, re.S):
        cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        out.append(tuple(cells[:6]))
    return out


DEFINITION = {"category": "access", "priority": "high", "response_time_hours": "2", "resolution_time_hours": "8",
              "calendar_id": "", "pause_statuses": "waiting_on_customer", "at_risk_percent": "75", "is_active": "y"}


@pytest.fixture()
def setup(make):
    """An admin, a manager and the conftest SLA: hardware/medium 4 h / 24 h (24x7) plus a calendar."""
    ids = make.sla()
    return {"admin": make.user("admin"), "manager": make.user("manager"), "agent": make.user("agent"),
            "requester": make.user("requester"), "definition_id": ids.definition_id,
            "calendar_id": ids.calendar_id, "holiday_id": ids.holiday_id}


@pytest.fixture()
def admin(login_client, setup):
    return login_client(setup["admin"])


# ---------------------------------------------------------------- access


@pytest.mark.parametrize(("method", "path", "data"), [
    ("GET", "/admin/sla", None),
    ("POST", "/admin/sla", DEFINITION),
    ("GET", "/admin/sla/{definition}", None),
    ("POST", "/admin/sla/{definition}", {**DEFINITION, "category": "hardware", "priority": "medium"}),
    ("POST", "/admin/sla/{definition}/active", {"active": "false"}),
    ("GET", "/admin/calendars", None),
    ("POST", "/admin/calendars", {"name": "X", "timezone": "UTC", "working_days": "0", "opens": "09:00",
                                  "closes": "17:00"}),
    ("GET", "/admin/calendars/{calendar}", None),
    ("POST", "/admin/calendars/{calendar}/holidays", {"holiday-day": "2026-12-26", "holiday-name": "Boxing Day"}),
    ("POST", "/admin/holidays/{holiday}/delete", {}),
])
@pytest.mark.parametrize("role", ["manager", "agent"])
def test_sla_admin_pages_refuse_non_admins(login_client, make, app, setup, method, path, data, role):
    url = path.format(definition=setup["definition_id"], calendar=setup["calendar_id"], holiday=setup["holiday_id"])
    client = login_client(setup[role])
    before = (_definitions(app), _calendars(app))
    for headers in ({}, HX):
        response = client.open(url, method=method, data=data, headers=headers)
        assert response.status_code == 403, (url, headers)
    assert (_definitions(app), _calendars(app)) == before


# ---------------------------------------------------------------- definitions: list and create


def test_definitions_page_lists_definitions(admin):
    response = admin.get("/admin/sla")
    assert response.status_code == 200
    html = text_of(response)
    assert "<html" in html and '<div id="sla-admin"' in html
    assert _rows(html) == [("Hardware", "Medium", "4 h", "24 h", "24x7", "Active")]
    assert "Add definition" in html


def test_definitions_htmx_get_is_the_partial(admin):
    html = text_of(admin.get("/admin/sla", headers=HX))
    assert html.lstrip().startswith('<div id="sla-admin"')
    assert "<html" not in html


def test_create_definition_plain_redirects_with_flash(admin, app):
    response = admin.post("/admin/sla", data=DEFINITION)
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/admin/sla"
    html = text_of(admin.get(response.headers["Location"]))
    assert "Added access / high: respond in 2 h, resolve in 8 h." in _flashes(html)
    assert ("Access", "High", "2 h", "8 h", "24x7", "Active") in _rows(html)
    assert ("access", "high", 2.0, 8.0, None, ["waiting_on_customer"], 75, True) in _definitions(app)


def test_create_definition_htmx_returns_partial(admin, app, setup):
    data = {**DEFINITION, "response_time_hours": "0.5", "resolution_time_hours": "12.25",
            "calendar_id": str(setup["calendar_id"]), "pause_statuses": ["waiting_on_customer", "in_progress"],
            "at_risk_percent": "80"}
    response = admin.post("/admin/sla", data=data, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="sla-admin"') and "<html" not in html
    assert "Added access / high: respond in 30 min, resolve in 12.25 h." in html
    calendar_name = next(iter(_calendars(app)))
    assert ("Access", "High", "30 min", "12.25 h", calendar_name, "Active") in _rows(html)
    assert ("access", "high", 0.5, 12.25, setup["calendar_id"], ["in_progress", "waiting_on_customer"], 80,
            True) in _definitions(app)


def test_create_inactive_definition_for_an_active_pair_is_allowed(admin, app):
    data = {**DEFINITION, "category": "hardware", "priority": "medium"}
    data.pop("is_active")
    response = admin.post("/admin/sla", data=data, headers=HX)
    assert response.status_code == 200
    assert ("Hardware", "Medium", "2 h", "8 h", "24x7", "Inactive") in _rows(text_of(response))
    assert len(_definitions(app)) == 2


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_create_resolution_shorter_than_response_422(admin, app, headers):
    response = admin.post("/admin/sla", data={**DEFINITION, "response_time_hours": "8",
                                              "resolution_time_hours": "4"}, headers=headers)
    assert response.status_code == 422
    html = text_of(response)
    assert ("<html" in html) == (not headers)
    assert _field_errors(html, "resolution_time_hours") == [
        "The resolution time cannot be shorter than the response time."]
    # The form keeps what was typed.
    assert re.search(r'id="response_time_hours"[^>]*value="8', html)
    assert len(_definitions(app)) == 1


@pytest.mark.parametrize(("field", "value", "message"), [
    ("response_time_hours", "-1", "Number must be between 0.01 and 8760."),
    ("resolution_time_hours", "-24", "Number must be between 0.01 and 8760."),
    ("response_time_hours", "0", "Number must be between 0.01 and 8760."),
    ("response_time_hours", "abc", "Not a valid decimal value."),
    ("response_time_hours", "", "This field is required."),
    ("resolution_time_hours", "9000", "Number must be between 0.01 and 8760."),
    ("response_time_hours", "1.234", "Use at most two decimal places."),
    ("at_risk_percent", "0", "Number must be between 1 and 99."),
    ("at_risk_percent", "100", "Number must be between 1 and 99."),
    ("calendar_id", "99999", "Choose a business calendar, or none for 24x7."),
    ("pause_statuses", "resolved", "'resolved' is not a valid choice for this field."),
])
def test_create_invalid_values_422_inline(admin, app, field, value, message):
    response = admin.post("/admin/sla", data={**DEFINITION, field: value}, headers=HX)
    assert response.status_code == 422
    html = text_of(response)
    assert html.lstrip().startswith('<div id="sla-admin"')
    errors = _field_errors(html, field if field != "pause_statuses" else "pause_statuses-0")
    assert any(message in e for e in errors), errors
    assert 'aria-invalid="true"' in html or field == "pause_statuses"
    assert len(_definitions(app)) == 1


def test_create_duplicate_active_pair_409(admin, app):
    for headers in ({}, HX):
        response = admin.post("/admin/sla", data={**DEFINITION, "category": "hardware", "priority": "medium"},
                              headers=headers)
        assert response.status_code == 409
        html = text_of(response)
        assert _field_errors(html, "priority") == ["An active definition exists for this category and priority."]
    assert len(_definitions(app)) == 1


# ---------------------------------------------------------------- definitions: inline edit


def test_edit_get_htmx_returns_table_with_edit_row(admin, setup):
    response = admin.get(f"/admin/sla/{setup['definition_id']}", headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="sla-admin"') and "<html" not in html
    row = re.search(r'<tr class="editing">(.*?)</tr>', html, re.S).group(1)
    assert f'hx-post="/admin/sla/{setup["definition_id"]}"' in row
    assert "<h3>Hardware / Medium</h3>" in row
    assert re.search(r'name="edit-response_time_hours"[^>]*value="4(\.00)?"', row)
    assert re.search(r'name="edit-resolution_time_hours"[^>]*value="24(\.00)?"', row)
    assert re.search(r'name="edit-at_risk_percent"[^>]*value="75"', row)
    assert 'name="edit-apply_to_open"' in row
    assert re.search(r'<input checked[^>]*value="waiting_on_customer"|value="waiting_on_customer"[^>]*checked', row)
    # The add form is still there, below.
    assert "Add a definition" in html


def test_edit_get_plain_is_the_full_page_with_edit_row(admin, setup):
    html = text_of(admin.get(f"/admin/sla/{setup['definition_id']}"))
    assert "<html" in html and '<tr class="editing">' in html


def test_edit_unknown_definition_404(admin):
    assert admin.get("/admin/sla/99999", headers=HX).status_code == 404
    assert admin.post("/admin/sla/99999", data=DEFINITION).status_code == 404
    assert admin.post("/admin/sla/99999/active", data={"active": "true"}).status_code == 404


def _edit_data(**changes):
    """The inline edit row's fields, which carry the "edit-" prefix (ids distinct from the add form)."""
    data = {"response_time_hours": "2", "resolution_time_hours": "12", "calendar_id": "",
            "pause_statuses": "waiting_on_customer", "at_risk_percent": "75", "is_active": "y"}
    data.update(changes)
    return {f"edit-{k}": v for k, v in data.items() if v is not None}


def test_edit_save_without_apply_keeps_open_clocks(admin, app, make, setup):
    req = make.request(setup["requester"])
    response = admin.post(f"/admin/sla/{setup['definition_id']}", data=_edit_data(), headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert "Definition saved. Open requests keep the targets they started with." in html
    assert '<tr class="editing">' not in html
    assert _rows(html) == [("Hardware", "Medium", "2 h", "12 h", "24x7", "Active")]
    assert _metric_targets(app, req.id) == (4.0, 24.0)
    assert _analytics_jobs(app) == []
    # A new request starts on the new targets.
    newer = make.request(setup["requester"])
    assert _metric_targets(app, newer.id) == (2.0, 12.0)
    panel = text_of(admin.get(f"/requests/{req.id}/sla"))
    assert "Response <span class=\"muted\">· 4 h</span>" in panel


def test_edit_save_with_apply_queues_a_rebuild(admin, app, make, setup):
    req = make.request(setup["requester"])
    response = admin.post(f"/admin/sla/{setup['definition_id']}", data=_edit_data(apply_to_open="y"), headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert "Definition saved. Open requests are being recalculated in the background." in html
    assert _analytics_jobs(app) == [("jobs.analytics.rebuild_sla_clocks", (setup["definition_id"], None))]
    # Until the job runs, the open clock keeps its targets.
    assert _metric_targets(app, req.id) == (4.0, 24.0)


def test_edit_save_plain_redirects_with_flash(admin, app, setup):
    response = admin.post(f"/admin/sla/{setup['definition_id']}", data=_edit_data(apply_to_open="y"))
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/admin/sla"
    html = text_of(admin.get(response.headers["Location"]))
    assert "Definition saved. Open requests are being recalculated in the background." in _flashes(html)
    assert len(_analytics_jobs(app)) == 1


def test_edit_can_clear_every_pause_status(admin, app, setup):
    response = admin.post(f"/admin/sla/{setup['definition_id']}", data=_edit_data(pause_statuses=None), headers=HX)
    assert response.status_code == 200
    assert _definitions(app)[0][5] == []


def test_edit_invalid_422_keeps_the_edit_row(admin, app, setup):
    response = admin.post(f"/admin/sla/{setup['definition_id']}",
                          data=_edit_data(response_time_hours="10", resolution_time_hours="5"), headers=HX)
    assert response.status_code == 422
    html = text_of(response)
    row = re.search(r'<tr class="editing">(.*?)</tr>', html, re.S).group(1)
    assert "The resolution time cannot be shorter than the response time." in row
    assert re.search(r'name="edit-response_time_hours"[^>]*value="10', row)
    assert _definitions(app)[0][2:4] == (4.0, 24.0)

    negative = admin.post(f"/admin/sla/{setup['definition_id']}", data=_edit_data(response_time_hours="-2"),
                          headers=HX)
    assert negative.status_code == 422
    assert "Number must be between 0.01 and 8760." in text_of(negative)


def test_edit_cannot_change_category_or_priority(admin, app, setup):
    response = admin.post(f"/admin/sla/{setup['definition_id']}",
                          data=_edit_data(category="network", priority="critical"), headers=HX)
    assert response.status_code == 200
    assert _definitions(app)[0][:2] == ("hardware", "medium")


def test_edit_activating_beside_an_active_pair_409(admin, app, setup):
    inactive = admin.post("/admin/sla", data={**DEFINITION, "category": "hardware", "priority": "medium",
                                              "is_active": ""}, headers=HX)
    assert inactive.status_code == 200
    new_id = max(int(i) for i in re.findall(r'/admin/sla/(\d+)"', text_of(inactive)))
    response = admin.post(f"/admin/sla/{new_id}", data=_edit_data(), headers=HX)
    assert response.status_code == 409
    html = text_of(response)
    row = re.search(r'<tr class="editing">(.*?)</tr>', html, re.S).group(1)
    # The admin must be told why the save was refused, in the row being edited.
    assert ("An active definition exists for this category and priority." in row
            or "There is already an active definition for hardware / medium; deactivate it first." in row)
    assert [d[7] for d in _definitions(app)] == [True, False]


# ---------------------------------------------------------------- definitions: activate / deactivate


def test_toggle_deactivate_and_activate_htmx(admin, app, make, setup):
    url = f"/admin/sla/{setup['definition_id']}/active"
    response = admin.post(url, data={"active": "false", "confirm": "yes"}, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert "hardware / medium is now inactive." in html
    assert _rows(html) == [("Hardware", "Medium", "4 h", "24 h", "24x7", "Inactive")]
    assert 'name="active" value="true"' in html and ">Activate</button>" in html
    assert _definitions(app)[0][7] is False
    # New requests of that pair have no SLA now.
    req = make.request(setup["requester"])
    assert "No SLA applies to Hardware / medium requests." in text_of(admin.get(f"/requests/{req.id}/sla"))

    response = admin.post(url, data={"active": "true"}, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert "hardware / medium is now active." in html
    assert 'name="active" value="false"' in html and ">Deactivate</button>" in html
    assert _definitions(app)[0][7] is True


def test_toggle_plain_redirects_with_flash(admin, app, setup):
    response = admin.post(f"/admin/sla/{setup['definition_id']}/active", data={"active": "false", "confirm": "yes"})
    assert response.status_code == 303
    html = text_of(admin.get(response.headers["Location"]))
    assert "hardware / medium is now inactive." in _flashes(html)


def test_toggle_activate_second_of_a_pair_409(admin, app, setup):
    admin.post("/admin/sla", data={**DEFINITION, "category": "hardware", "priority": "medium", "is_active": ""})
    other = next(i for i in re.findall(r'/admin/sla/(\d+)/active"', text_of(admin.get("/admin/sla")))
                 if int(i) != setup["definition_id"])
    message = "There is already an active definition for hardware / medium; deactivate it first."
    response = admin.post(f"/admin/sla/{other}/active", data={"active": "true"}, headers=HX)
    assert response.status_code == 409
    assert message in text_of(response)
    plain = admin.post(f"/admin/sla/{other}/active", data={"active": "true"})
    assert plain.status_code == 303
    assert message in _flashes(text_of(admin.get(plain.headers["Location"])))
    assert [d[7] for d in _definitions(app)] == [True, False]


# ---------------------------------------------------------------- calendars


CALENDAR = {"name": "London office", "timezone": "Europe/London", "working_days": ["0", "1", "2", "3", "4"],
            "opens": "09:00", "closes": "17:30"}


def test_calendars_page_lists_calendars(admin, app):
    response = admin.get("/admin/calendars")
    assert response.status_code == 200
    html = text_of(response)
    assert "<html" in html and '<div id="calendars-admin"' in html
    name = next(iter(_calendars(app)))
    assert f">{name}</a>" in html
    assert "Mon, Tue, Wed, Thu, Fri · 09:00–18:00" in html
    assert "Europe/London" in html


def test_create_calendar_plain_redirects_to_its_page(admin, app):
    response = admin.post("/admin/calendars", data=CALENDAR)
    assert response.status_code == 303
    path = urlsplit(response.headers["Location"]).path
    assert re.fullmatch(r"/admin/calendars/\d+", path)
    html = text_of(admin.get(path))
    assert "Calendar London office added." in _flashes(html)
    assert "<h1>London office</h1>" in html
    assert _calendars(app)["London office"] == ("Europe/London", [0, 1, 2, 3, 4], "09:00", "17:30", [])


def test_create_calendar_htmx_returns_partial(admin, app):
    response = admin.post("/admin/calendars", data={**CALENDAR, "name": "Singapore desk", "timezone": "Asia/Singapore",
                                                    "working_days": ["0", "2", "5"]}, headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="calendars-admin"') and "<html" not in html
    assert "Calendar Singapore desk added." in html
    assert "Mon, Wed, Sat · 09:00–17:30" in html
    assert _calendars(app)["Singapore desk"][:2] == ("Asia/Singapore", [0, 2, 5])


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"timezone": "Mars/Olympus"}, "timezone", "Choose a time zone such as Europe/London or America/New_York."),
    ({"timezone": ""}, "timezone", "This field is required."),
    ({"opens": "17:00", "closes": "09:00"}, "closes", "Closing time must be after opening time."),
    ({"opens": "09:00", "closes": "09:00"}, "closes", "Closing time must be after opening time."),
    ({"working_days": []}, "working_days-0", "Choose at least one working day."),
    ({"opens": "9am"}, "opens", "Not a valid time value."),
    ({"name": ""}, "name", "This field is required."),
])
@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_create_calendar_invalid_422(admin, app, changes, field, message, headers):
    before = _calendars(app)
    response = admin.post("/admin/calendars", data={**CALENDAR, **changes}, headers=headers)
    assert response.status_code == 422
    html = text_of(response)
    assert ("<html" in html) == (not headers)
    assert message in _field_errors(html, field)
    assert _calendars(app) == before


def test_create_calendar_duplicate_name_422(admin, app):
    name = next(iter(_calendars(app)))
    response = admin.post("/admin/calendars", data={**CALENDAR, "name": name}, headers=HX)
    assert response.status_code == 422
    assert _field_errors(text_of(response), "name") == ["Another calendar has this name."]
    assert len(_calendars(app)) == 1


def test_calendar_edit_page(admin, app, setup):
    name = next(iter(_calendars(app)))
    response = admin.get(f"/admin/calendars/{setup['calendar_id']}")
    assert response.status_code == 200
    html = text_of(response)
    assert f"<h1>{name}</h1>" in html
    assert re.search(rf'id="name"[^>]*value="{name}"', html)
    assert re.search(r'id="timezone"[^>]*value="Europe/London"', html)
    assert re.search(r'value="09:00"', html) and re.search(r'value="18:00"', html)
    assert "Fri 25 Dec 2026</strong> Christmas Day" in html
    assert f'hx-post="/admin/holidays/{setup["holiday_id"]}/delete"' in html
    partial = text_of(admin.get(f"/admin/calendars/{setup['calendar_id']}", headers=HX))
    assert partial.lstrip().startswith('<div id="calendar-admin"') and "<html" not in partial


def test_calendar_edit_unknown_404(admin):
    assert admin.get("/admin/calendars/99999").status_code == 404
    assert admin.post("/admin/calendars/99999/holidays", data={"day": "2026-12-26", "name": "X"}).status_code == 404
    assert admin.post("/admin/holidays/99999/delete").status_code == 404


def test_calendar_edit_save(admin, app, setup):
    response = admin.post(f"/admin/calendars/{setup['calendar_id']}", headers=HX, data={
        "name": "Office renamed", "timezone": "America/New_York", "working_days": ["1", "2", "3"],
        "opens": "08:00", "closes": "16:00"})
    assert response.status_code == 200
    html = text_of(response)
    assert "Calendar saved." in html
    assert re.search(r'id="timezone"[^>]*value="America/New_York"', html)
    assert _calendars(app)["Office renamed"][:4] == ("America/New_York", [1, 2, 3], "08:00", "16:00")
    assert _analytics_jobs(app) == []


def test_calendar_edit_save_with_apply_queues_a_rebuild(admin, app, setup):
    name = next(iter(_calendars(app)))
    response = admin.post(f"/admin/calendars/{setup['calendar_id']}", headers=HX, data={
        **CALENDAR, "name": name, "apply_to_open": "y"})
    assert response.status_code == 200
    assert "Calendar saved. Open requests are being recalculated in the background." in text_of(response)
    assert _analytics_jobs(app) == [("jobs.analytics.rebuild_sla_clocks", (None, setup["calendar_id"]))]


def test_calendar_edit_invalid_zone_422(admin, app, setup):
    before = _calendars(app)
    response = admin.post(f"/admin/calendars/{setup['calendar_id']}", headers=HX, data={
        **CALENDAR, "timezone": "Mars/Olympus"})
    assert response.status_code == 422
    html = text_of(response)
    assert _field_errors(html, "timezone") == ["Choose a time zone such as Europe/London or America/New_York."]
    assert _calendars(app) == before


def _holiday(**values):
    """The holiday form's fields, which carry the "holiday-" prefix (the hours form has a name too)."""
    return {f"holiday-{k}": v for k, v in values.items()}


def test_add_holiday(admin, app, setup):
    url = f"/admin/calendars/{setup['calendar_id']}/holidays"
    response = admin.post(url, data=_holiday(day="2026-12-26", name="Boxing Day"), headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="calendar-admin"')
    assert "Boxing Day (2026-12-26) added." in html
    assert "Sat 26 Dec 2026</strong> Boxing Day" in html
    holidays = next(iter(_calendars(app).values()))[4]
    assert holidays == [("2026-12-25", "Christmas Day"), ("2026-12-26", "Boxing Day")]
    plain = admin.post(url, data=_holiday(day="2027-01-01", name="New Year's Day"))
    assert plain.status_code == 303  # a plain post redirects, so a reload never adds it twice
    assert "New Year&#39;s Day (2027-01-01) added." in text_of(admin.get(plain.headers["Location"]))
    assert len(next(iter(_calendars(app).values()))[4]) == 3


def test_add_holiday_with_apply_queues_a_rebuild(admin, app, setup):
    response = admin.post(f"/admin/calendars/{setup['calendar_id']}/holidays", headers=HX,
                          data=_holiday(day="2026-12-31", name="Hogmanay", apply_to_open="y"))
    assert response.status_code == 200
    assert "Hogmanay (2026-12-31) added. Open requests are being recalculated in the background." in text_of(response)
    assert _analytics_jobs(app) == [("jobs.analytics.rebuild_sla_clocks", (None, setup["calendar_id"]))]


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"day": "2026-12-25", "name": "Christmas again"}, "day", "This date is already a holiday in this calendar."),
    ({"day": "2026-02-30", "name": "Nope"}, "day", "Not a valid date value."),
    ({"day": "", "name": "Nope"}, "day", "This field is required."),
    ({"day": "2026-12-27", "name": ""}, "name", "This field is required."),
])
def test_add_holiday_invalid_422(admin, app, setup, data, field, message):
    before = _calendars(app)
    response = admin.post(f"/admin/calendars/{setup['calendar_id']}/holidays", data=_holiday(**data), headers=HX)
    assert response.status_code == 422
    html = text_of(response)
    # The holiday form's own fields (the hours form also has a "name").
    holiday_form = html[html.index("/holidays\" novalidate"):]
    assert message in _field_errors(holiday_form, f"holiday-{field}")
    assert _calendars(app) == before


def test_remove_holiday(admin, app, setup):
    url = f"/admin/holidays/{setup['holiday_id']}/delete"
    response = admin.post(url, data={"confirm": "yes"}, headers=HX)  # the second click (the first asks)
    assert response.status_code == 200
    html = text_of(response)
    assert "Christmas Day (2026-12-25) removed." in html
    assert "</strong> Christmas Day" not in html
    assert "No holidays: every working day counts." in html
    assert next(iter(_calendars(app).values()))[4] == []
    assert admin.post(url, data={"confirm": "yes"}, headers=HX).status_code == 404


# ---------------------------------------------------------------- one id per element (labels point at their own field)


def _duplicate_ids(html: str) -> set[str]:
    seen, dups = set(), set()
    for element_id in re.findall(r'\sid="([^"]+)"', html):
        (dups if element_id in seen else seen).add(element_id)
    return dups


def test_definitions_page_ids_are_unique(admin):
    assert _duplicate_ids(text_of(admin.get("/admin/sla"))) == set()


def test_definition_edit_row_ids_do_not_clash_with_the_add_form(admin, setup):
    """The edit row and the add form are on one page; each <label for=...> must reach its own input."""
    for headers in ({}, HX):
        html = text_of(admin.get(f"/admin/sla/{setup['definition_id']}", headers=headers))
        assert _duplicate_ids(html) == set()


def test_calendars_page_ids_are_unique(admin):
    assert _duplicate_ids(text_of(admin.get("/admin/calendars"))) == set()


def test_calendar_page_ids_do_not_clash_between_hours_and_holiday_forms(admin, setup):
    """The hours form and the holiday form both have a name and an apply_to_open field."""
    for headers in ({}, HX):
        html = text_of(admin.get(f"/admin/calendars/{setup['calendar_id']}", headers=headers))
        assert _duplicate_ids(html) == set()
