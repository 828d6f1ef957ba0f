"""The canned replies library page: staff list, add, edit and delete the replies the composer inserts.

Thin, like the request pages: parse the form, call portal/services/canned_replies.py, render.
"""

from __future__ import annotations

from flask import render_template, request, url_for
from flask_login import current_user

from portal.forms import place_errors
from portal.htmx import form_done, form_refused, render_page_or_partial
from portal.policy import permission_required
from portal.requests import bp
from portal.requests.forms import CannedReplyForm
from portal.services import canned_replies as canned
from portal.services import requests as svc
from portal.services.errors import NotFound, ServiceError, StaleChange

LIBRARY = "canned_replies/_library.html"
PERMISSION = "canned_replies.manage"


def _library_context(form: CannedReplyForm | None = None) -> dict:
    return {"replies": canned.list_canned_replies(current_user), "form": form or CannedReplyForm(formdata=None),
            "placeholders": canned.PLACEHOLDERS}


def _form_problems(form: CannedReplyForm) -> None:
    """The form's own checks stopped it: add the service's messages (unknown placeholders) so all show at once."""
    *_, problems = canned.check_canned_reply(form.title.data, form.body.data)
    for name, message in problems.items():
        field = getattr(form, name)
        if not field.errors:
            field.errors = [message]


@bp.route("/canned-replies", methods=["GET", "POST"])
@permission_required(PERMISSION)
def canned_replies():
    """The shared library of canned replies, with a form to add one."""
    form = CannedReplyForm()
    if not form.is_submitted():
        return render_page_or_partial("canned_replies/index.html", LIBRARY, **_library_context())
    status = 422
    if form.validate():
        try:
            reply = canned.create_canned_reply(current_user, form.title.data, form.body.data)
        except ServiceError as exc:
            place_errors(form, exc)
            status = exc.status
        else:
            return form_done(f"Canned reply “{reply.title}” added: every agent can insert it now.",
                             url_for("requests.canned_replies"), LIBRARY, _library_context())
    else:
        _form_problems(form)
    return render_page_or_partial("canned_replies/index.html", LIBRARY, **_library_context(form)), status


def _edit_page(reply, form: CannedReplyForm, status: int = 200, refusal: ServiceError | None = None):
    """The edit page; after a stale save `reply` is the saved one now and `form` what the user typed."""
    return render_template("canned_replies/edit.html", reply=reply, form=form, placeholders=canned.PLACEHOLDERS,
                           refusal=refusal, message=refusal.message if refusal else None, ok=False), status


def _version() -> int | None:
    return svc.parse_version(request.form.get("version"))


@bp.route("/canned-replies/<int:canned_reply_id>", methods=["GET", "POST"])
@permission_required(PERMISSION)
def edit_canned_reply(canned_reply_id: int):
    """Edit a canned reply; a stale save shows the saved text beside the unsaved one, and saves nothing."""
    reply = canned.get_canned_reply(current_user, canned_reply_id)
    form = CannedReplyForm(obj=reply)
    if not form.is_submitted():
        return _edit_page(reply, form)
    if not form.validate():
        _form_problems(form)
        return _edit_page(reply, form, 422)
    try:
        reply = canned.update_canned_reply(current_user, canned_reply_id, form.title.data, form.body.data,
                                           _version())
    except StaleChange as exc:
        return _edit_page(canned.get_canned_reply(current_user, canned_reply_id), form, exc.status, refusal=exc)
    except NotFound as exc:
        return form_refused(exc, url_for("requests.canned_replies"))  # deleted meanwhile: back to the library
    except ServiceError as exc:
        place_errors(form, exc)
        return _edit_page(reply, form, exc.status)
    return form_done(f"Canned reply “{reply.title}” saved.", url_for("requests.canned_replies"))


@bp.post("/canned-replies/<int:canned_reply_id>/delete")
@permission_required(PERMISSION)
def delete_canned_reply(canned_reply_id: int):
    """Delete a canned reply (its text stays in the audit trail); a stale delete shows what it says now."""
    back = url_for("requests.canned_replies")
    try:
        title = canned.delete_canned_reply(current_user, canned_reply_id, _version())
    except StaleChange as exc:
        reply = canned.get_canned_reply(current_user, canned_reply_id)
        return _edit_page(reply, CannedReplyForm(formdata=None, obj=reply), exc.status, refusal=exc)
    except ServiceError as exc:
        return form_refused(exc, back)
    return form_done(f"Canned reply “{title}” deleted.", back)
