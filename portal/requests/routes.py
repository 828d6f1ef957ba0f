"""Request pages. Thin: parse the form, call one service, render the page or its partials.

Every change on the request page answers HTMX with the part that was acted on plus, out of
band, every other part that shows the request (header, description, panel, timeline, SLA
targets), so the page is current and every form carries the new version in one response.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from flask import Response, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from portal import policy
from portal.domain import workflow
from portal.forms import EmptyForm
from portal.htmx import (
    form_done,
    form_refused,
    is_htmx,
    redirect_to,
    render_page_or_partial,
    render_with_oob,
    revalidated_poll,
)
from portal.models._time import utcnow
from portal.notifications import routes as bell
from portal.paging import PER_PAGE_MAX
from portal.requests import bp
from portal.requests.forms import (
    AssignForm,
    CommentForm,
    FollowUpForm,
    NewRequestForm,
    PropertiesForm,
    SaveViewForm,
    StatusForm,
    TextForm,
)
from portal.services import attachments as files
from portal.services import canned_replies as canned
from portal.services import in_app, saved_views, sla, users
from portal.services import requests as svc
from portal.services.errors import NotFound, RequestClosed, ServiceError, ValidationFailed
from portal.services.requests import bulk
from portal.sla.panel import panel_context

# The parts of the request page, each a partial with its own id.
HEADER = "requests/_header.html"
DESCRIPTION = "requests/_description.html"
PANEL = "requests/_panel.html"
TIMELINE = "requests/_timeline.html"
TIMELINE_OLDER = "requests/_timeline_older.html"
COMMENT_FORM = "requests/_comment_form.html"
# The composer's send buttons and the version they send: inside the composer, refreshed with every
# other change (never the composer itself, which holds what the user is typing).
COMPOSER_SEND = "requests/_composer_send.html"
SLA_TARGETS = "sla/_targets.html"
# The change the page shows, and its poll for a newer one (live updates).
LIVE = "requests/_live.html"
LAST_CHANGE = "requests/_last_change.html"
PARTS = (HEADER, DESCRIPTION, PANEL, TIMELINE, SLA_TARGETS, COMPOSER_SEND, LIVE)
# What a response that re-renders the composer sends out of band (its send buttons come inside it).
PARTS_BESIDE_COMPOSER = tuple(p for p in PARTS if p != COMPOSER_SEND)
TEXT_PREFIX = "edit"  # the editor's title field sits on the page beside the header's title


def _uploads(field) -> list[files.Upload]:
    return [files.Upload(f.filename, f.stream) for f in (field.data or []) if getattr(f, "filename", "")]


def _apply_errors(form, exc: ServiceError) -> None:
    """Show a service's field errors beside the matching form fields (above the form those it has no field for)."""
    placed = False
    for name, message in exc.fields.items():
        field = getattr(form, "assignee" if name == "assignee_id" else name, None)
        if field is not None:
            field.errors = [*field.errors, message] if isinstance(field.errors, list) else [message]
        else:
            form.form_errors.append(message)  # e.g. the version a form sent
        placed = True
    if not placed:
        form.form_errors.append(exc.message)


def _list_filters(args) -> svc.RequestFilters:
    """The list's filters from a query string: staff land on the open work ("All" says status=any)."""
    if policy.can(current_user, "sla.read") and not args.get("status"):
        args = {**args.to_dict(), "status": "active"}
    return svc.parse_filters(args, current_app.config["PER_PAGE"])


def _list_links(req) -> dict:
    """"← All requests" back to the list the request was opened from (`?list=` its query string, as
    the list's rows link), and "Next request" in that list's order; the plain list without one."""
    query = request.args.get("list", "")
    back = _list_url(query)
    if not query or back == url_for("requests.list_requests"):
        return {"back_url": back, "next_url": None, "list_query": ""}
    found = svc.next_in_list(current_user, _list_filters(MultiDict(parse_qsl(query.lstrip("?")))), req,
                             request.args.get("at", "")[:svc.CURSOR_MAX])
    next_url = None
    if found is not None:
        next_id, place = found
        next_url = f"{url_for('requests.show_request', request_id=next_id)}?{urlencode({'list': query, 'at': place})}"
    return {"back_url": back, "next_url": next_url, "list_query": query}


@bp.get("/requests")
@login_required
def list_requests():
    """The request list; HTMX filter changes get just the table."""
    staff = policy.can(current_user, "sla.read")
    filters = _list_filters(request.args)
    page = svc.list_requests(current_user, filters)
    context = {
        "page": page,
        "filters": filters,
        # Each row's next SLA target, for staff (a requester sees the clock on the request itself).
        "sla": sla.next_targets([r.id for r in page.items], utcnow()) if staff else None,
        # An empty page of someone with no requests at all is a first visit, not filters that match nothing.
        "first_visit": not page.items and not svc.sees_any_request(current_user),
        "categories": svc.list_categories(include_inactive=True),
        "staff": users.list_staff() if policy.can(current_user, "requests.triage") else [],
        "sorts": svc.SORTS,
        "page_sizes": sorted({filters.default_per_page, 25, 50, PER_PAGE_MAX}),
        **_saved_views_context(filters),
    }
    # HTMX gets the table, and out of band the tabs (which one is current) and the query "Save view" saves.
    return render_page_or_partial("requests/list.html", "requests/_list_update.html", target="request-table",
                                  **context)


def _saved_views_context(filters: svc.RequestFilters) -> dict:
    """The list's saved-view tabs, the current one, and the "Save view" form: for staff only."""
    if not policy.can(current_user, saved_views.SAVE):
        return {"saved_views": None, "current_view": None, "view_query": "", "save_form": None}
    views = saved_views.list_saved_views(current_user)
    return {"saved_views": views, "current_view": saved_views.current_view(views, filters),
            "view_query": saved_views.query_string(filters), "save_form": SaveViewForm(formdata=None, prefix="view")}


def _list_url(back: str | None) -> str:
    """The list view a form came from (its query string only: never another site or page)."""
    query = (back or "").lstrip("?")
    if not query or len(query) > 2000 or any(c in query for c in "\r\n#"):
        return url_for("requests.list_requests")
    return f"{url_for('requests.list_requests')}?{query}"


@bp.post("/requests/bulk")
@policy.permission_required("requests.triage")
def bulk_change():
    """Change the ticked rows of the list: assignee, status or priority (plain form post, back to the list)."""
    back = _list_url(request.form.get("back"))
    name, _, value = (request.form.get("change") or "").partition(":")
    try:
        selection = bulk.parse_selection(request.form.getlist("ids"))
        outcome = bulk.bulk_change(current_user, selection, name, value)
    except ValidationFailed as exc:
        flash(" ".join(dict.fromkeys(exc.fields.values())) or exc.message, "error")
        return redirect(back, code=303)
    said = []
    if outcome.changed:
        said.append(f"Changed {len(outcome.changed)} request{'s' if len(outcome.changed) != 1 else ''}.")
    if outcome.unchanged:
        said.append(f"{len(outcome.unchanged)} already so: " + ", ".join(f"#{i}" for i in outcome.unchanged) + ".")
    if outcome.refused:
        flash(" ".join([*said, "Not changed: " + "; ".join(f"#{i} {why[0].lower() + why[1:]}"
                                                            for i, why in outcome.refused) + "."]), "warning")
    else:
        flash(" ".join(said), "success")
    return redirect(back, code=303)


@bp.route("/requests/new", methods=["GET", "POST"])
@login_required
def new_request():
    """Raise a request, with attachments."""
    form = NewRequestForm()
    form.category.choices = [("", "Choose a category")] + [(c.code, c.name) for c in svc.list_categories()]
    status = 200
    if form.validate_on_submit():
        try:
            req = svc.create_request(
                current_user, form.title.data, form.description.data, form.category.data,
                form.priority.data, _uploads(form.attachments),
            )
        except ValidationFailed as exc:
            _apply_errors(form, exc)
        else:
            return form_done(f"Request #{req.id} was created.", url_for("requests.show_request", request_id=req.id))
    elif request.method == "POST":
        # The form stopped early: show the service's messages too (the category's), all at once.
        *_, problems = svc.check_new_request(form.title.data, form.description.data, form.category.data,
                                             form.priority.data)
        for name, message in problems.items():
            field = getattr(form, name)
            if not field.errors:
                field.errors = [message]
    if request.method == "POST":
        status = 422
    return render_template("requests/new.html", form=form), status


def _composer_context(req, comment_form: CommentForm | None = None) -> dict:
    """What the composer needs: its form (with the canned replies on offer) and the statuses a reply may set."""
    form = comment_form or CommentForm(formdata=None)
    form.canned_reply.choices = []
    if policy.can(current_user, "canned_replies.manage"):
        form.canned_reply.choices = [(str(c.id), c.title) for c in canned.list_canned_replies(current_user)]
    return {"comment_form": form, "reply_statuses": svc.reply_statuses(current_user, req)}


def _detail_context(req, comment_form: CommentForm | None = None, text_form: TextForm | None = None,
                    expand_before: str | None = None) -> dict:
    """Everything the detail page and its partials need, for the current user.

    `expand_before`: the timeline shows one page more, older than that entry (the no-JavaScript
    way to follow "Show older events").
    """
    # Read first: the parts read after it show at least this change (a later one makes the next poll refresh).
    latest = svc.latest_change(current_user, req)
    allowed = workflow.allowed_transitions(req.status, current_user.role)
    assign_form = AssignForm(formdata=None, assignee=str(req.assignee_id or ""))
    props_form = PropertiesForm(formdata=None, priority=req.priority, category=req.category)
    if policy.can(current_user, "requests.triage"):
        assign_form.assignee.choices = [("", "Unassigned")] + [(str(u.id), u.name) for u in users.list_staff()]
        props_form.category.choices = [(c.code, c.name) for c in svc.list_categories(include_inactive=True)]
    return {
        **panel_context(req),
        "req": req,
        **_composer_context(req, comment_form),
        "text_form": text_form or TextForm(formdata=None, prefix=TEXT_PREFIX, title=req.title,
                                           description=req.description),
        "can_edit_text": policy.may_edit_text(current_user, req.requester_id, req.status),
        "status_form": StatusForm(formdata=None),
        "allowed_statuses": allowed,
        "assign_form": assign_form,
        "props_form": props_form,
        "action_form": EmptyForm(formdata=None),
        "entries": svc.timeline(current_user, req, expand_before=expand_before),
        "attachments": svc.request_attachments(current_user, req),
        "follow_ups": svc.follow_ups_of(current_user, req),
        "latest": latest,
    }


@bp.get("/requests/<int:request_id>")
@login_required
def show_request(request_id: int):
    """The request with its timeline and the forms to work it; ?before=<entry> shows a page more of the timeline.

    Opening it marks the viewer's notifications about it read (the bell counts what is still unseen)."""
    shown_at = utcnow()
    req = svc.get_request(current_user, request_id)
    # The bell's count (read once for the page's top bar anyway) says whether there is anything to mark.
    if bell.bell_count() and in_app.request_seen(current_user, req.id, shown_at):
        bell.bell_changed()
    return render_template("requests/detail.html", **_detail_context(req, expand_before=request.args.get("before")),
                           **_list_links(req))


@bp.get("/requests/<int:request_id>/timeline")
@login_required
def request_timeline(request_id: int):
    """Just the timeline (for a reload of that part alone); ?before=<entry> gives the page of older
    entries that replaces the collapsed gap ("Show older events")."""
    req = svc.get_request(current_user, request_id)
    before = request.args.get("before")
    if before is not None:
        return render_template(TIMELINE_OLDER, req=req, entries=svc.older_entries(current_user, req, before))
    return render_template(TIMELINE, req=req, entries=svc.timeline(current_user, req))


@bp.get("/requests/<int:request_id>/header")
@login_required
def request_header(request_id: int):
    """The title block (status, priority and category badges)."""
    req = svc.get_request(current_user, request_id)
    return render_template(HEADER, req=req, follow_ups=svc.follow_ups_of(current_user, req))


@bp.get("/requests/<int:request_id>/last-change")
@login_required
@revalidated_poll
def request_last_change(request_id: int):
    """The newest change to the request this user may know of: the open page's live poll.

    Tiny and free of anything that moves with the clock, so an unchanged request answers 304
    (revalidated_poll); the page compares it with the change it shows (static/js/request_live.js).
    """
    req = svc.get_request(current_user, request_id)
    return render_template(LAST_CHANGE, req=req, latest=svc.latest_change(current_user, req))


@bp.get("/requests/<int:request_id>/parts")
@login_required
def request_parts(request_id: int):
    """Every part of the request page as it is now, for a live update: the change marker for the
    target, the rest out of band; never the composer (only its send buttons and the version they
    send), so what is being typed stays. A plain visit goes to the page."""
    req = svc.get_request(current_user, request_id)
    if not is_htmx():
        return redirect_to(url_for("requests.show_request", request_id=request_id))
    return render_with_oob(LIVE, _detail_context(req), tuple(p for p in PARTS if p != LIVE),
                           title=f"#{req.id} {req.title}")


def _answer(request_id: int, target: str, message: str | None = None, exc: ServiceError | None = None, **extra):
    """The request page after a change: `target` with the outcome, the other parts out of band.

    Read after the change (or its refusal), so a stale tab now shows the current state.
    """
    req = svc.get_request(current_user, request_id)
    context = _detail_context(req, **extra)
    back = url_for("requests.show_request", request_id=request_id)
    others = tuple(p for p in (PARTS_BESIDE_COMPOSER if target == COMMENT_FORM else PARTS) if p != target)
    title = f"#{req.id} {req.title}"
    if exc is not None:
        return form_refused(exc, back, target, context, others, title=title)
    return form_done(message, back, target, context, others, title=title)


def _version() -> int | None:
    return svc.parse_version(request.form.get("version"))


@bp.post("/requests/<int:request_id>/status")
@login_required
def change_status(request_id: int):
    """Move the request along the workflow."""
    form = StatusForm()
    try:
        if not form.validate_on_submit():
            raise ValidationFailed({"status": "Choose a status."})
        req = svc.change_status(current_user, request_id, form.status.data, _version())
    except ServiceError as exc:
        return _answer(request_id, PANEL, exc=exc)
    return _answer(request_id, PANEL, f"Status changed to {req.status_label.lower()}.")


@bp.post("/requests/<int:request_id>/assign")
@policy.permission_required("requests.triage")
def assign_request(request_id: int):
    """Assign to me, to an agent, or unassign."""
    value = request.form.get("assignee", "")
    assignee_id = current_user.id if value == "me" else (value or None)
    try:
        req = svc.assign(current_user, request_id, assignee_id, _version())
    except ServiceError as exc:
        return _answer(request_id, PANEL, exc=exc)
    who = req.assignee.name if req.assignee else "nobody"
    return _answer(request_id, PANEL,
                   "You took this request." if req.assignee_id == current_user.id else f"Assigned to {who}.")


@bp.post("/requests/<int:request_id>/properties")
@policy.permission_required("requests.triage")
def change_properties(request_id: int):
    """Change priority and category (the service keeps only what really changed)."""
    form = PropertiesForm()
    form.category.choices = [(c.code, c.name) for c in svc.list_categories(include_inactive=True)]
    try:
        if not form.validate_on_submit():
            raise ValidationFailed({"priority": "Choose a priority."})
        svc.update_request(current_user, request_id,
                           {"priority": form.priority.data, "category": form.category.data}, _version())
    except ServiceError as exc:
        return _answer(request_id, PANEL, exc=exc)
    return _answer(request_id, PANEL, "Details saved.")


@bp.post("/requests/<int:request_id>/text")
@login_required
def edit_text(request_id: int):
    """Edit the title and description; a stale edit shows the current text beside the unsaved one."""
    form = TextForm(prefix=TEXT_PREFIX)
    try:
        if not form.validate_on_submit():
            raise ValidationFailed({name: errors[0] for name, errors in form.errors.items()})
        svc.update_request(current_user, request_id,
                           {"title": form.title.data, "description": form.description.data}, _version())
    except ServiceError as exc:
        return _answer(request_id, DESCRIPTION, exc=exc, text_form=form)
    return _answer(request_id, DESCRIPTION, "Title and description saved.")


@bp.post("/requests/<int:request_id>/comments")
@login_required
def add_comment(request_id: int):
    """Post a reply or (staff) an internal note, and with a reply maybe a new status ("Send and resolve").

    HTMX gets a fresh composer and the rest of the page. A reply that sets a status is checked
    against the version the page showed: a stale one saves nothing and shows the current state
    beside the kept text. A requester's reply to a resolved request reopens it; to a closed one it
    is refused, nothing is saved, and the composer offers to open a follow-up request instead.
    """
    seen = svc.get_request(current_user, request_id).status
    form = CommentForm()
    if not form.validate_on_submit():
        return _composer_again(request_id, form, 422)
    note = form.internal.data == "y" and policy.can(current_user, "requests.internal_notes")
    status = (form.status.data or "").strip() or None
    try:
        version = _version() if status else None  # a plain reply overwrites nothing: no version check
        svc.add_comment(current_user, request_id, form.body.data, note, _uploads(form.attachments),
                        status=status, expected_version=version)
    except RequestClosed as exc:
        offer = FollowUpForm(formdata=None, body=form.body.data)
        return _follow_up_offer(request_id, offer, exc.status, dropped_files=bool(_uploads(form.attachments)))
    except ValidationFailed as exc:
        _apply_errors(form, exc)
        return _composer_again(request_id, form, exc.status)
    except ServiceError as exc:
        # Stale, or a move the workflow no longer allows: the current state, the text kept.
        return _composer_again(request_id, form, exc.status, refusal=exc)
    if note:
        message = "Internal note added."
    elif status:
        message = f"Your reply was added and the request is now {workflow.STATUS_LABELS[status].lower()}."
    elif workflow.reply_outcome(seen, current_user.role).reopens:
        message = "Your reply was added and the request is open again."
    else:
        message = "Your reply was added."
    return _answer(request_id, COMMENT_FORM, message)


def _composer_again(request_id: int, form: CommentForm, status: int, refusal: ServiceError | None = None,
                    notice: str | None = None):
    """The composer with what was typed, after a refusal or an insert; the whole page for a plain post.

    A field problem (422) changes nothing else, so HTMX gets the composer alone; a refusal (403,
    404, 409) means the page may be out of date, so the other parts come too, out of band.
    """
    req = svc.get_request(current_user, request_id)
    says = {"composer_refusal": refusal, "composer_message": refusal.message if refusal else notice}
    if is_htmx():
        if refusal is None:
            # The rest of the page stays as it was, so the send buttons keep the version it shows.
            try:
                shown = _version()
            except ValidationFailed:
                shown = None
            return render_template(COMMENT_FORM, req=req, **_composer_context(req, form), **says,
                                   composer_version=shown or req.version), status
        return render_with_oob(COMMENT_FORM, {**_detail_context(req, comment_form=form), **says},
                               PARTS_BESIDE_COMPOSER, status=status, title=f"#{req.id} {req.title}")
    return render_template("requests/detail.html", **_detail_context(req, comment_form=form), **says), status


@bp.post("/requests/<int:request_id>/comments/canned")
@policy.permission_required("canned_replies.manage")
def insert_canned_reply(request_id: int):
    """Insert a canned reply without JavaScript: the composer again, the draft kept and the reply added after it.

    (With JavaScript, static/js/composer.js inserts it at the cursor from `canned_reply_text` instead.)
    """
    svc.get_request(current_user, request_id)  # NotFound before anything else
    form = CommentForm()
    if not form.canned_reply.data:
        form.canned_reply.errors = ["Choose a canned reply to insert."]
        return _composer_again(request_id, form, 422)
    try:
        text = canned.filled_for_request(current_user, form.canned_reply.data, request_id)
    except NotFound as exc:
        form.canned_reply.errors = [exc.message]
        return _composer_again(request_id, form, 422)
    draft = (form.body.data or "").rstrip()
    form.body.data = f"{draft}\n\n{text}" if draft else text
    form.canned_reply.data = ""
    dropped = "Attach your files again: they cannot be kept when a canned reply is inserted without JavaScript." \
        if _uploads(form.attachments) else None
    return _composer_again(request_id, form, 200, notice=dropped)


@bp.get("/requests/<int:request_id>/canned-reply")
@policy.permission_required("canned_replies.manage")
def canned_reply_text(request_id: int):
    """A canned reply (?canned_reply=<id>) filled in for this request and the current user, as plain text."""
    try:
        text = canned.filled_for_request(current_user, request.args.get("canned_reply"), request_id)
    except ServiceError as exc:
        return Response(exc.message, status=exc.status, mimetype="text/plain")
    return Response(text, mimetype="text/plain")


def _follow_up_offer(request_id: int, offer: FollowUpForm, status: int, dropped_files: bool = False):
    """The composer of a closed request after a refused reply: why, and the reply kept, offered as a
    follow-up request. HTMX also gets the other parts out of band (the tab may have shown it open)."""
    req = svc.get_request(current_user, request_id)
    context = {**_detail_context(req), "reply_refused": RequestClosed(req.id), "follow_up_form": offer,
               "dropped_files": dropped_files}
    if is_htmx():
        return render_with_oob(COMMENT_FORM, context, PARTS_BESIDE_COMPOSER, status=status,
                               title=f"#{req.id} {req.title}")
    return render_template("requests/detail.html", **context), status


@bp.post("/requests/<int:request_id>/follow-up")
@login_required
def open_follow_up(request_id: int):
    """Open a follow-up to a closed request with the refused reply as its description, and go to it."""
    form = FollowUpForm()
    if not form.validate_on_submit():
        return _follow_up_offer(request_id, form, 422)
    try:
        req = svc.open_follow_up(current_user, request_id, form.body.data)
    except ValidationFailed as exc:
        form.body.errors = list(dict.fromkeys(exc.fields.values()))
        return _follow_up_offer(request_id, form, exc.status)
    except ServiceError as exc:
        # Not closed any more (reopened meanwhile), or not theirs: the usual composer, the text kept.
        return _answer(request_id, COMMENT_FORM, exc=exc, comment_form=CommentForm(formdata=None, body=form.body.data))
    return form_done(f"Follow-up request #{req.id} was opened, linked to #{request_id}.",
                     url_for("requests.show_request", request_id=req.id))


@bp.get("/attachments/<int:attachment_id>")
@login_required
def download_attachment(attachment_id: int):
    """Always a download, never rendered inline; only for those who can see the request."""
    att = svc.get_attachment(current_user, attachment_id)
    path = files.path_of(att.storage_name)
    if not path.exists():
        abort(404)
    response = send_file(path, mimetype=att.content_type, as_attachment=True, download_name=att.filename,
                         max_age=0, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "no-store"  # private files: no copies in shared caches
    return response
