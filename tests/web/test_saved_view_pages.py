"""Saved views on the request list: "Save view", the tabs (the current one marked), the views page
(rename, share, delete that asks first), refusals as field messages, stale edits as 409s, CSRF on."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.web.helpers import HX, csrf_from_body, csrf_from_form, oob_ids, text_of

TABLE = {**HX, "HX-Target": "request-table"}


def views_of(app, owner_id: int | None = None) -> list[tuple[str, str, bool]]:
    """(name, query, shared) of every saved view (of one owner), by name."""
    from portal.extensions import db
    from portal.models import SavedView

    with app.app_context():
        stmt = db.session.query(SavedView).order_by(SavedView.name)
        if owner_id is not None:
            stmt = stmt.filter(SavedView.owner_id == owner_id)
        return [(v.name, v.query, v.shared) for v in stmt]


def add_view(app, owner, name: str, query: str, shared: bool = False) -> int:
    from portal.extensions import db
    from portal.models import User
    from portal.services import saved_views

    with app.app_context():
        user = db.session.get(User, owner.id)
        view = saved_views.create_saved_view(user, name, query)
        if shared:
            view = saved_views.set_saved_view_shared(user, view.id, True, view.version)
        return view.id


def audit_actions(app) -> list[str]:
    from portal.extensions import db
    from portal.models import AuditLog

    with app.app_context():
        return [a.action for a in db.session.query(AuditLog).filter(AuditLog.entity_type == "saved_view")
                .order_by(AuditLog.id)]


def tabs(html: str) -> list[tuple[str, bool]]:
    """(label, current) of each tab, quick and saved, in order."""
    nav = re.search(r'<nav class="tabs" aria-label="Quick views">(.*?)</nav>', html, re.S).group(1)
    return [(re.sub(r"<[^>]+>", "", label).strip(), "aria-current" in attrs)
            for attrs, label in re.findall(r"<a ([^>]*)>(.*?)</a>", nav, re.S)]


@pytest.fixture()
def team(make):
    make.request(make.user("requester", name="Noor Patel"), title="Printer jam", priority="high")
    return {"alex": make.user("agent", name="Alex Agent"), "sam": make.user("agent", name="Sam Rivera"),
            "maya": make.user("manager", name="Maya Manager"), "ada": make.user("admin", name="Ada Admin"),
            "riley": make.user("requester")}


# ---------------------------------------------------------------- saving from the list

def test_staff_list_offers_save_view_with_the_current_query(login_client, team):
    html = text_of(login_client(team["alex"]).get("/requests?priority=high&page=1&sort=oldest"))
    assert '<summary>Save view</summary>' in html
    assert re.search(r'<input type="hidden" id="view-query" name="view-query" value="status=active&amp;priority=high'
                     r'&amp;sort=oldest">', html)
    assert 'href="/requests/views"' in html  # Manage views


def test_requesters_get_neither_save_view_nor_saved_tabs(login_client, team, make):
    make.request(team["riley"])
    html = text_of(login_client(team["riley"]).get("/requests"))
    assert "Save view" not in html and "/requests/views" not in html
    assert [label for label, _ in tabs(html)] == ["All", "Open", "Closed"]
    client = login_client(team["riley"])
    assert client.post("/requests/views", data={"view-name": "Mine", "view-query": ""}).status_code == 403
    assert client.get("/requests/views").status_code == 403


def test_save_a_view_plain_post_opens_it_as_the_current_tab(app, login_client, team):
    client = login_client(team["alex"])
    response = client.post("/requests/views", data={"view-name": "  Hot ones ",
                                                    "view-query": "priority=high&page=3&after=abc&sort=oldest"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/requests?status=active&priority=high&sort=oldest"
    assert views_of(app) == [("Hot ones", "status=active&priority=high&sort=oldest", False)]
    html = text_of(client.get(response.headers["Location"]))
    assert "View “Hot ones” saved" in html
    assert tabs(html) == [("Open work", False), ("Assigned to me", False), ("Unassigned", False), ("All", False),
                          ("Hot ones", True)]
    assert audit_actions(app) == ["saved_view.created"]


def test_save_a_view_htmx_redirects_to_it(app, login_client, team):
    response = login_client(team["alex"]).post("/requests/views", headers=HX,
                                               data={"view-name": "Everything", "view-query": "status=any"})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/requests?status=any"


def test_staff_default_is_saved_as_open_work(app, login_client, team):
    login_client(team["alex"]).post("/requests/views", data={"view-name": "Plain", "view-query": ""})
    assert views_of(app) == [("Plain", "status=active", False)]


@pytest.mark.parametrize(("name", "message", "status"), [
    ("", "Give the view a name.", 422),
    ("x" * 61, "Use at most 60 characters (got 61).", 422),
    ("hot ONES", "You already have a view called “Hot ones”; choose another name.", 409),
])
def test_a_refused_name_comes_back_beside_the_field_htmx(app, login_client, team, name, message, status):
    add_view(app, team["alex"], "Hot ones", "status=active&priority=high")
    response = login_client(team["alex"]).post("/requests/views", headers=HX,
                                               data={"view-name": name, "view-query": "status=any"})
    assert response.status_code == status
    html = text_of(response)
    assert html.lstrip().startswith('<form id="save-view-form"')
    assert html.count(message) == 1 and 'aria-invalid="true"' in html
    assert 'value="status=any"' in html  # the query is kept
    if status == 409:  # the name is taken: offer to give that view these filters instead
        assert "Update “Hot ones”" in html
    assert len(views_of(app)) == 1


def test_filters_too_long_to_save_say_so_above_the_form(app, login_client, team, monkeypatch):
    from portal.services import saved_views

    monkeypatch.setattr(saved_views, "VIEW_QUERY_MAX", 30)
    response = login_client(team["alex"]).post("/requests/views", headers=HX,
                                               data={"view-name": "Long", "view-query": "status=any&q=" + "a" * 40})
    assert response.status_code == 422
    assert '<div class="flash flash-error" role="alert">' + saved_views.QUERY_TOO_LONG in text_of(response)
    assert views_of(app) == []


def test_a_refused_name_without_javascript_is_a_message_over_the_same_list(app, login_client, team):
    client = login_client(team["alex"])
    response = client.post("/requests/views", data={"view-name": " ", "view-query": "status=any&priority=low"})
    assert response.status_code == 303 and response.headers["Location"] == "/requests?status=any&priority=low"
    assert "Give the view a name." in text_of(client.get(response.headers["Location"]))


def test_update_a_taken_name_to_these_filters(app, login_client, team):
    view_id = add_view(app, team["alex"], "Hot ones", "status=active&priority=high")
    response = login_client(team["alex"]).post(f"/requests/views/{view_id}/query", headers=HX,
                                               data={"view-name": "hot ones", "version": "1",
                                                     "view-query": "status=any&priority=critical"})
    assert response.headers["HX-Redirect"] == "/requests?status=any&priority=critical"
    assert views_of(app) == [("Hot ones", "status=any&priority=critical", False)]


def test_the_limit_is_a_clear_message(app, login_client, team):
    from portal.services.saved_views import VIEWS_MAX

    for n in range(VIEWS_MAX):
        add_view(app, team["alex"], f"View {n}", f"q=w{n}")
    response = login_client(team["alex"]).post("/requests/views", headers=HX,
                                               data={"view-name": "One more", "view-query": ""})
    assert response.status_code == 422
    assert f"You have {VIEWS_MAX} saved views, the most one person may keep" in text_of(response)


# ---------------------------------------------------------------- the tabs

def test_tabs_show_own_views_then_shared_ones_saying_who_shared_them(app, login_client, team):
    add_view(app, team["alex"], "Mine", "status=any&priority=low")
    add_view(app, team["maya"], "Escalations", "status=active&priority=high", shared=True)
    add_view(app, team["maya"], "Maya private", "status=done")
    html = text_of(login_client(team["alex"]).get("/requests?status=active&priority=high"))
    assert tabs(html)[4:] == [("Mine", False), ("Escalations, shared by Maya", True)]
    assert 'title="Shared by Maya Manager"' in html and "Maya private" not in html
    assert tabs(html)[0] == ("Open work", False)  # the saved view is the current one, not the quick tab
    manager = text_of(login_client(team["maya"]).get("/requests"))
    assert [label for label, _ in tabs(manager)[4:]] == ["Escalations, shared", "Maya private"]


def test_the_current_tab_follows_the_filters_out_of_band(app, login_client, team):
    add_view(app, team["alex"], "Hot ones", "status=active&priority=high")
    client = login_client(team["alex"])
    response = client.get("/requests?status=active&priority=high&per_page=25", headers=TABLE)
    html = text_of(response)
    assert html.lstrip().startswith('<section id="request-table"')
    assert oob_ids(html) == {"view-tabs", "view-query"}
    assert ("Hot ones", True) in tabs(html)
    assert 'id="view-query" type="hidden" name="view-query" value="status=active&amp;priority=high"' in html
    other = text_of(client.get("/requests?status=active&priority=low", headers=TABLE))
    assert ("Hot ones", False) in tabs(other)
    assert "csrf_token" not in other  # the table's answer stays cacheable as before


# ---------------------------------------------------------------- the views page

def test_views_page_lists_views_with_their_filters_in_words(app, login_client, team):
    add_view(app, team["alex"], "Hot ones", "status=active&priority=high&sort=oldest")
    add_view(app, team["maya"], "Escalations", "status=active&priority=critical", shared=True)
    html = text_of(login_client(team["alex"]).get("/requests/views"))
    assert "<h1>Saved views</h1>" in html and "1 of 30" in html
    assert "Status: Open (not resolved)" in html and "Priority: High" in html and "Sort: Oldest first" in html
    assert "Shared by Maya Manager" in html
    assert "Share with the team" not in html  # agents do not share
    assert html.count(">Rename</button>") == 1  # only their own
    assert 'href="/requests?status=active&amp;priority=high&amp;sort=oldest"' in html


def test_rename_htmx_answers_with_the_views_and_a_message(app, login_client, team):
    view_id = add_view(app, team["alex"], "Hot ones", "status=active&priority=high")
    response = login_client(team["alex"]).post(f"/requests/views/{view_id}/rename", headers=HX,
                                               data={"name": "Burning", "version": "1"})
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="saved-views"') and "View renamed to “Burning”." in html
    assert views_of(app)[0][0] == "Burning"


def test_rename_refused_shows_the_message_beside_that_views_name(app, login_client, team):
    add_view(app, team["alex"], "Taken", "status=any")
    view_id = add_view(app, team["alex"], "Hot ones", "status=active&priority=high")
    response = login_client(team["alex"]).post(f"/requests/views/{view_id}/rename", headers=HX,
                                               data={"name": "TAKEN", "version": "1"})
    assert response.status_code == 409
    html = text_of(response)
    assert f'id="rename-{view_id}-error"' in html and html.count("You already have a view called “Taken”") == 1
    assert re.search(rf'id="rename-{view_id}" name="name" value="TAKEN"', html)  # what they typed, to fix


def test_two_tabs_renaming_one_view_the_second_gets_409_with_the_current_state(app, login_client, team):
    view_id = add_view(app, team["alex"], "Hot ones", "status=active&priority=high")
    first, second = login_client(team["alex"]), login_client(team["alex"])
    page = text_of(second.get("/requests/views"))
    seen = re.search(rf'action="/requests/views/{view_id}/rename".*?name="version" value="(\d+)"', page, re.S).group(1)
    assert first.post(f"/requests/views/{view_id}/rename", data={"name": "Left", "version": seen}).status_code == 303
    response = second.post(f"/requests/views/{view_id}/rename", headers=HX, data={"name": "Right", "version": seen})
    assert response.status_code == 409
    html = text_of(response)
    assert "You changed this in another tab or window" in html and "Your change was not saved." in html
    assert ">Left</a>" in html  # the current state
    plain = second.post(f"/requests/views/{view_id}/rename", data={"name": "Right", "version": seen})
    assert plain.status_code == 303
    assert "was changed by Alex Agent" in unescape(text_of(second.get("/requests/views")))
    assert views_of(app)[0][0] == "Left"


def test_managers_share_and_agents_then_see_the_tab(app, login_client, team):
    view_id = add_view(app, team["maya"], "Escalations", "status=active&priority=high")
    manager = login_client(team["maya"])
    page = text_of(manager.get("/requests/views"))
    assert "Share with the team" in page
    response = manager.post(f"/requests/views/{view_id}/share", headers=HX, data={"shared": "true", "version": "1"})
    assert response.status_code == 200
    html = text_of(response)
    assert "everyone on the team has it as a tab now" in html and "Stop sharing" in html
    assert "Shared with the team" in html
    assert ("Escalations, shared by Maya", False) in tabs(text_of(login_client(team["alex"]).get("/requests")))
    assert audit_actions(app) == ["saved_view.created", "saved_view.shared"]
    refused = login_client(team["alex"]).post(f"/requests/views/{view_id}/share",
                                              data={"shared": "false", "version": "2"})
    assert refused.status_code == 403
    bad = manager.post(f"/requests/views/{view_id}/share", headers=HX, data={"shared": "maybe", "version": "2"})
    assert bad.status_code == 422 and "Say whether to share the view" in text_of(bad)


def test_only_the_owner_or_an_admin_renames_or_deletes(app, login_client, team):
    view_id = add_view(app, team["maya"], "Escalations", "status=active&priority=high", shared=True)
    private_id = add_view(app, team["maya"], "Private", "status=done")
    agent = login_client(team["alex"])
    for htmx in ({}, HX):
        assert agent.post(f"/requests/views/{view_id}/rename", headers=htmx, data={"name": "Mine"}).status_code == 403
        assert agent.post(f"/requests/views/{view_id}/delete", headers=htmx,
                          data={"confirm": "yes"}).status_code == 403
        assert agent.post(f"/requests/views/{private_id}/rename", headers=htmx,
                          data={"name": "Mine"}).status_code == 404
    admin = login_client(team["ada"])
    assert admin.post(f"/requests/views/{view_id}/rename", data={"name": "Team escalations"}).status_code == 303
    assert ("Team escalations", "status=active&priority=high", True) in views_of(app)


def test_delete_asks_first_then_deletes(app, login_client, team):
    view_id = add_view(app, team["maya"], "Escalations", "status=active&priority=high", shared=True)
    client = login_client(team["maya"])
    asked = client.post(f"/requests/views/{view_id}/delete", headers=HX, data={})
    html = text_of(asked)
    assert asked.status_code == 200 and 'class="confirming"' in html
    assert "It is shared: the team loses the tab too." in html and views_of(app)
    plain = client.post(f"/requests/views/{view_id}/delete", data={})
    assert plain.status_code == 303 and plain.headers["Location"] == f"/requests/views?delete={view_id}#view-{view_id}"
    page = text_of(client.get(plain.headers["Location"]))
    assert "Delete the view <strong>Escalations</strong>?" in page
    version = re.search(r'name="confirm" value="yes">\s*<input type="hidden" name="version" value="(\d+)"',
                        page).group(1)
    done = client.post(f"/requests/views/{view_id}/delete", headers=HX, data={"confirm": "yes", "version": version})
    assert done.status_code == 200 and "View “Escalations” deleted." in text_of(done)
    assert views_of(app) == []
    assert audit_actions(app)[-1] == "saved_view.deleted"
    gone = client.post(f"/requests/views/{view_id}/delete", data={"confirm": "yes"})
    assert gone.status_code == 404


@pytest.mark.parametrize(("url", "data"), [
    ("/requests/views/{id}/rename", {"name": "X", "version": "x1"}),
    ("/requests/views/{id}/rename", {"name": None}),
    ("/requests/views/{id}/share", {}),
    ("/requests/views/{id}/delete", {"confirm": "yes", "version": "-3"}),
    ("/requests/views/{id}/query", {"view-query": "status=bogus", "version": "abc"}),
    ("/requests/views", {"view-query": "x" * 5000}),
])
@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_hostile_posts_are_4xx_or_a_message_never_500(app, login_client, team, url, data, headers):
    view_id = add_view(app, team["maya"], "Escalations", "status=active")
    data = {k: v for k, v in data.items() if v is not None}
    response = login_client(team["maya"]).post(url.format(id=view_id), headers=headers, data=data)
    assert response.status_code in (204, 303, 400, 404, 409, 422), response.status_code  # 204: HX-Redirect


# ---------------------------------------------------------------- CSRF on

def test_saving_and_renaming_need_the_csrf_token(app, client, team, csrf_on):
    client.post("/login", data={"email": team["alex"].email, "password": team["alex"].password,
                                "csrf_token": csrf_from_form(text_of(client.get("/login")))})
    page = text_of(client.get("/requests"))
    forged = client.post("/requests/views", data={"view-name": "Forged", "view-query": ""})
    assert forged.status_code == 400 and views_of(app) == []
    token = csrf_from_form(page[page.index('id="save-view-form"'):])
    saved = client.post("/requests/views", data={"view-name": "Real", "view-query": "", "csrf_token": token})
    assert saved.status_code == 303 and views_of(app) == [("Real", "status=active", False)]
    view_id = re.search(r'/requests/views/(\d+)/rename', text_of(client.get("/requests/views"))).group(1)
    assert client.post(f"/requests/views/{view_id}/rename", headers=HX, data={"name": "Forged"}).status_code == 400
    renamed = client.post(f"/requests/views/{view_id}/rename", data={"name": "Renamed"},
                          headers={**HX, "X-CSRFToken": csrf_from_body(page)})
    assert renamed.status_code == 200 and views_of(app)[0][0] == "Renamed"
