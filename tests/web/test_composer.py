"""The request page's composer: reply or internal note, "Send and <status>" in one step, canned replies."""

from __future__ import annotations

import re

import pytest

from tests.web.helpers import HX, REQUEST_PAGE_PARTS, main_part, oob_ids, text_of

BESIDE_COMPOSER = REQUEST_PAGE_PARTS - {"composer-send"}  # the composer brings its own send buttons


def version_on(html: str) -> int:
    """The version every form on the page carries (they must all agree)."""
    versions = set(re.findall(r'name="version" value="(\d+)"', html))
    assert len(versions) == 1, versions
    return int(versions.pop())


def part(html: str, element_id: str) -> str:
    match = re.search(rf'<(section|div|ol|fieldset) id="{element_id}".*?</\1>', html, re.S)
    assert match, element_id
    return match.group(0)


def checked_mode(html: str) -> str:
    """Which composer mode is ticked: "reply" or "note"."""
    [mode] = re.findall(r'<input type="radio" class="mode-radio" id="composer-mode-(\w+)"[^>]*\schecked', html)
    return mode


def canned(app, author, title: str, body: str) -> int:
    from portal.extensions import db
    from portal.models import User
    from portal.services import canned_replies

    with app.app_context():
        return canned_replies.create_canned_reply(db.session.get(User, author.id), title, body).id


@pytest.fixture()
def desk(make):
    return {"alex": make.user("agent", name="Alex Agent"), "sam": make.user("agent", name="Sam Rivera"),
            "riley": make.user("requester", name="Riley Requester")}


# ---------------------------------------------------------------- the two modes

def test_staff_composer_has_reply_and_note_tabs_and_says_who_sees_it(login_client, make, desk):
    req = make.request(desk["riley"])
    html = text_of(login_client(desk["alex"]).get(f"/requests/{req.id}"))
    composer = part(html, "comment-form")
    assert '<label for="composer-mode-reply" class="mode-tab mode-tab-reply">Reply to requester</label>' in composer
    assert '<label for="composer-mode-note" class="mode-tab mode-tab-note">Internal note</label>' in composer
    assert checked_mode(composer) == "reply"
    assert "Riley Requester will see this reply." in composer and "Only staff see this." in composer
    send = part(html, "composer-send")
    assert ">Send reply</button>" in send and ">Add internal note</button>" in send
    assert ">Send and wait on customer</button>" in send and ">Send and resolve</button>" in send
    assert version_on(html) == version_on(send)  # the composer acts on the version on show


def test_requester_composer_has_one_mode_and_no_staff_buttons(login_client, make, desk):
    req = make.request(desk["riley"])
    html = text_of(login_client(desk["riley"]).get(f"/requests/{req.id}"))
    composer = part(html, "comment-form")
    assert 'name="internal"' not in composer and "Internal note" not in composer
    assert "Send and" not in composer and "canned" not in composer.lower()
    assert ">Send reply</button>" in composer
    assert "composer.js" not in html


def test_internal_note_is_saved_as_a_note_and_the_answer_says_so(login_client, make, desk):
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).post(f"/requests/{req.id}/comments",
                                               data={"body": "User's laptop is on the old image.", "internal": "y"},
                                               headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert "Internal note added." in main_part(html)
    assert checked_mode(main_part(html)) == "reply"  # a fresh composer starts on a reply again
    assert oob_ids(html) == BESIDE_COMPOSER
    [note] = make.comments(req.id)
    assert note.internal is True
    assert "old image" not in text_of(login_client(desk["riley"]).get(f"/requests/{req.id}"))


def test_note_mode_is_kept_when_the_note_is_refused(login_client, make, desk):
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).post(f"/requests/{req.id}/comments", data={"body": " ", "internal": "y"},
                                               headers=HX)
    assert response.status_code == 422
    html = text_of(response)
    assert checked_mode(html) == "note"
    assert "This field is required." in html
    assert make.comments(req.id) == []


def test_requester_sending_note_mode_still_writes_a_reply(login_client, make, desk):
    req = make.request(desk["riley"])
    login_client(desk["riley"]).post(f"/requests/{req.id}/comments", data={"body": "Hello?", "internal": "y"},
                                     headers=HX)
    assert [c.internal for c in make.comments(req.id)] == [False]


def test_a_note_sent_with_any_button_stays_a_note(login_client, make, desk):
    """The mode is the radio's: a note sent with a reply button (CSS off) is still internal."""
    req = make.request(desk["riley"])
    client = login_client(desk["alex"])
    seen = version_on(text_of(client.get(f"/requests/{req.id}")))
    response = client.post(f"/requests/{req.id}/comments", headers=HX, data={
        "body": "Vendor ticket 4411.", "internal": "y", "status": "waiting_on_customer", "version": seen})
    assert response.status_code == 200
    assert [c.internal for c in make.comments(req.id)] == [True]
    assert make.get_request(req.id).status == "waiting_on_customer"


# ---------------------------------------------------------------- reply and set status

def test_send_and_resolve_htmx_answers_with_the_whole_page_current(login_client, make, desk):
    req = make.request(desk["riley"])
    client = login_client(desk["alex"])
    seen = version_on(text_of(client.get(f"/requests/{req.id}")))
    response = client.post(f"/requests/{req.id}/comments", headers=HX,
                           data={"body": "New toner fitted.", "status": "resolved", "version": seen})
    assert response.status_code == 200
    html = text_of(response)
    composer = main_part(html)
    assert composer.lstrip().startswith('<section id="comment-form"')
    assert "Your reply was added and the request is now resolved." in composer
    assert re.search(r'<textarea[^>]*name="body"[^>]*>\s*</textarea>', composer)
    assert "Send and" not in composer  # resolved: nothing more a reply may set
    assert oob_ids(html) == BESIDE_COMPOSER
    assert "Resolved" in part(html, "request-header")
    assert version_on(html) > seen
    assert make.get_request(req.id).status == "resolved"
    assert [c.body for c in make.comments(req.id)] == ["New toner fitted."]


def test_send_and_wait_on_customer_plain_post_redirects_with_a_flash(login_client, make, desk):
    req = make.request(desk["riley"])
    client = login_client(desk["alex"])
    seen = version_on(text_of(client.get(f"/requests/{req.id}")))
    response = client.post(f"/requests/{req.id}/comments",
                           data={"body": "Which floor are you on?", "status": "waiting_on_customer", "version": seen})
    assert response.status_code == 303
    page = text_of(client.get(f"/requests/{req.id}"))
    assert "Your reply was added and the request is now waiting on customer." in page
    assert make.get_request(req.id).status == "waiting_on_customer"
    assert ">Send and resolve</button>" in part(page, "composer-send")
    assert "Send and wait on customer" not in part(page, "composer-send")


def test_stale_send_and_resolve_is_409_with_the_current_state_and_the_text_kept(login_client, make, desk):
    req = make.request(desk["riley"])
    alex = login_client(desk["alex"])
    seen = version_on(text_of(alex.get(f"/requests/{req.id}")))
    sam = login_client(desk["sam"])
    assert sam.post(f"/requests/{req.id}/status", data={"status": "in_progress", "version": seen}).status_code == 303

    response = alex.post(f"/requests/{req.id}/comments", headers=HX,
                         data={"body": "Fixed, closing this.", "status": "resolved", "version": seen})
    assert response.status_code == 409
    html = text_of(response)
    composer = main_part(html)
    assert "Changed by <strong>Sam Rivera</strong>" in composer and "Your change was not saved." in composer
    assert re.search(r"<textarea[^>]*>\s*Fixed, closing this.</textarea>", composer)
    assert oob_ids(html) == BESIDE_COMPOSER
    assert "In progress" in part(html, "request-header")
    assert version_on(html) == seen + 1  # the send buttons now act on the current version
    assert make.comments(req.id) == [] and make.get_request(req.id).status == "in_progress"

    # Seen the current state, the same send goes through.
    again = alex.post(f"/requests/{req.id}/comments", headers=HX,
                      data={"body": "Fixed, closing this.", "status": "resolved", "version": seen + 1})
    assert again.status_code == 200 and make.get_request(req.id).status == "resolved"


def test_stale_send_plain_post_shows_the_page_with_the_text_kept(login_client, make, desk):
    req = make.request(desk["riley"])
    alex = login_client(desk["alex"])
    seen = version_on(text_of(alex.get(f"/requests/{req.id}")))
    login_client(desk["sam"]).post(f"/requests/{req.id}/status", data={"status": "resolved"})
    response = alex.post(f"/requests/{req.id}/comments",
                         data={"body": "Waiting for your answer.", "status": "waiting_on_customer", "version": seen})
    assert response.status_code == 409
    html = text_of(response)
    assert "<html" in html
    composer = part(html, "comment-form")
    assert "Changed by <strong>Sam Rivera</strong>" in composer
    assert re.search(r"<textarea[^>]*>\s*Waiting for your answer.</textarea>", composer)
    assert "Send and" not in part(html, "composer-send")  # resolved now: nothing on offer
    # The message is the composer's own: the other parts do not repeat it.
    assert html.count("Your change was not saved.") == 1
    assert make.comments(req.id) == []


def test_a_field_message_keeps_the_version_the_rest_of_the_page_shows(login_client, make, desk):
    """A 422 answers with the composer alone: its send buttons must not take on a version the user has not seen."""
    req = make.request(desk["riley"])
    alex = login_client(desk["alex"])
    seen = version_on(text_of(alex.get(f"/requests/{req.id}")))
    login_client(desk["sam"]).post(f"/requests/{req.id}/status", data={"status": "in_progress"})
    response = alex.post(f"/requests/{req.id}/comments", headers=HX,
                         data={"body": "", "status": "resolved", "version": seen})
    assert response.status_code == 422 and oob_ids(text_of(response)) == set()
    assert version_on(text_of(response)) == seen
    again = alex.post(f"/requests/{req.id}/comments", headers=HX,
                      data={"body": "Now with words.", "status": "resolved", "version": seen})
    assert again.status_code == 409 and "Changed by <strong>Sam Rivera</strong>" in text_of(again)
    assert make.comments(req.id) == []


def test_status_change_elsewhere_refreshes_the_send_buttons(login_client, make, desk):
    req = make.request(desk["riley"])
    client = login_client(desk["alex"])
    seen = version_on(text_of(client.get(f"/requests/{req.id}")))
    response = client.post(f"/requests/{req.id}/status", data={"status": "waiting_on_customer", "version": seen},
                           headers=HX)
    html = text_of(response)
    assert "composer-send" in oob_ids(html)
    send = part(html, "composer-send")
    assert 'hx-swap-oob="true"' in send
    assert ">Send and resolve</button>" in send and "wait on customer" not in send
    assert version_on(html) == seen + 1


@pytest.mark.parametrize(("status", "message"), [
    ("closed", "A reply can set the request to waiting on customer or resolved"),
    ("exploded", "A reply can set the request to waiting on customer or resolved"),
])
def test_send_with_a_status_a_reply_cannot_set_is_422(login_client, make, desk, status, message):
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).post(f"/requests/{req.id}/comments", headers=HX,
                                               data={"body": "Done.", "status": status})
    assert response.status_code == 422
    assert message in text_of(response)
    assert make.comments(req.id) == []


def test_send_with_a_version_that_is_not_a_number_is_422(login_client, make, desk):
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).post(f"/requests/{req.id}/comments", headers=HX,
                                               data={"body": "Done.", "status": "resolved", "version": "v2"})
    assert response.status_code == 422
    assert "Send the request&#39;s version as a whole number." in text_of(response)
    assert make.comments(req.id) == [] and make.get_request(req.id).status == "open"


def test_send_and_a_move_the_workflow_refuses_is_409_with_the_reason(login_client, make, desk):
    req = make.request(desk["riley"], status="resolved")
    response = login_client(desk["alex"]).post(f"/requests/{req.id}/comments", headers=HX,
                                               data={"body": "Waiting on you.", "status": "waiting_on_customer"})
    assert response.status_code == 409
    assert "cannot move from resolved to waiting on customer" in main_part(text_of(response))
    assert make.comments(req.id) == []


def test_requester_cannot_set_a_status_with_a_reply(login_client, make, desk):
    req = make.request(desk["riley"])
    response = login_client(desk["riley"]).post(f"/requests/{req.id}/comments", headers=HX,
                                                data={"body": "Sorted.", "status": "resolved"})
    assert response.status_code == 409
    assert "Requesters can only close a resolved request" in text_of(response)
    assert make.comments(req.id) == [] and make.get_request(req.id).status == "open"


# ---------------------------------------------------------------- canned replies in the composer

def test_composer_offers_the_library_and_loads_its_script_from_a_file(app, login_client, make, desk):
    canned(app, desk["sam"], "Router <b>restart</b>", "Hi {requester_name}")
    req = make.request(desk["riley"])
    html = text_of(login_client(desk["alex"]).get(f"/requests/{req.id}"))
    composer = part(html, "comment-form")
    assert "Router &lt;b&gt;restart&lt;/b&gt;</option>" in composer
    assert f'data-canned-text="/requests/{req.id}/canned-reply"' in composer
    assert f'formaction="/requests/{req.id}/comments/canned"' in composer
    assert '<script src="/static/js/composer.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_canned_reply_text_is_filled_in_for_the_request_as_plain_text(app, login_client, make, desk):
    reply = canned(app, desk["sam"], "Greeting", "Hello {requester_name}, re {request_number}. {agent_name}")
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).get(f"/requests/{req.id}/canned-reply?canned_reply={reply}")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert text_of(response) == f"Hello Riley Requester, re #{req.id}. Alex Agent"
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.parametrize("query", ["", "?canned_reply=", "?canned_reply=abc", "?canned_reply=999999"])
def test_canned_reply_text_for_no_such_reply_is_404_in_words(login_client, make, desk, query):
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).get(f"/requests/{req.id}/canned-reply{query}")
    assert response.status_code == 404
    assert response.mimetype == "text/plain"
    assert text_of(response) == "That canned reply no longer exists."


def test_canned_reply_text_is_refused_to_requesters(app, login_client, make, desk):
    reply = canned(app, desk["sam"], "Greeting", "Hello {requester_name}")
    req = make.request(desk["riley"])
    assert login_client(desk["riley"]).get(f"/requests/{req.id}/canned-reply?canned_reply={reply}").status_code == 403


def test_insert_without_javascript_adds_the_reply_after_the_draft(app, login_client, make, desk):
    reply = canned(app, desk["sam"], "Greeting", "Hello {requester_name},\nplease restart it.")
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).post(f"/requests/{req.id}/comments/canned",
                                               data={"body": "Thanks for waiting.  ", "canned_reply": str(reply),
                                                     "internal": "y"})
    assert response.status_code == 200
    html = text_of(response)
    composer = part(html, "comment-form")
    assert re.search(r"<textarea[^>]*>\s*Thanks for waiting.\n\nHello Riley Requester,\nplease restart it.</textarea>",
                     composer)
    assert checked_mode(composer) == "note"  # the mode chosen is kept
    assert make.comments(req.id) == []  # inserting sends nothing


def test_insert_with_htmx_answers_with_the_composer_alone(app, login_client, make, desk):
    reply = canned(app, desk["sam"], "Greeting", "Hello {requester_name}.")
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).post(f"/requests/{req.id}/comments/canned", headers=HX,
                                               data={"body": "", "canned_reply": str(reply)})
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<section id="comment-form"') and oob_ids(html) == set()
    assert re.search(r"<textarea[^>]*>\s*Hello Riley Requester.</textarea>", html)


@pytest.mark.parametrize(("choice", "message"), [("", "Choose a canned reply to insert."),
                                                  ("999999", "That canned reply no longer exists.")])
def test_insert_without_a_choice_or_a_reply_that_is_gone_is_422_with_the_draft_kept(
        app, login_client, make, desk, choice, message):
    canned(app, desk["sam"], "Greeting", "Hello.")
    req = make.request(desk["riley"])
    response = login_client(desk["alex"]).post(f"/requests/{req.id}/comments/canned", headers=HX,
                                               data={"body": "My draft", "canned_reply": choice})
    assert response.status_code == 422
    html = text_of(response)
    assert message in html and re.search(r"<textarea[^>]*>\s*My draft</textarea>", html)


def test_insert_by_a_requester_is_403(app, login_client, make, desk):
    reply = canned(app, desk["sam"], "Greeting", "Hello.")
    req = make.request(desk["riley"])
    response = login_client(desk["riley"]).post(f"/requests/{req.id}/comments/canned",
                                                data={"body": "x", "canned_reply": str(reply)})
    assert response.status_code == 403
