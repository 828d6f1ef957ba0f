"""/notifications: the bell's count (polled), the list, opening one (marks it read), "Mark all read".

Opening a notification is a GET link, so it works from a plain list, in a new tab and without
JavaScript; it only marks the signed-in person's own row read (anyone else's is a 404), which a
forged link could do no more than the person's own click would.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import g, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup, escape
from sqlalchemy.exc import SQLAlchemyError

from portal.domain import mentions
from portal.domain import notifications as rules
from portal.extensions import db
from portal.forms import EmptyForm
from portal.htmx import form_done, form_refused, redirect_to, render_page_or_partial, revalidated_poll
from portal.notifications import bp
from portal.paging import whole_number
from portal.services import in_app, notifications
from portal.services.errors import ServiceError, ValidationFailed

LIST = "notifications/_list.html"
BELL = "notifications/_bell.html"
ID_MAX = 10**12

log = logging.getLogger(__name__)


@bp.app_template_global()
def bell_count() -> int:
    """The signed-in person's unread count for the top bar (0 for a visitor); once per page render."""
    if not current_user.is_authenticated:
        return 0
    if "bell_count" not in g:
        try:
            g.bell_count = in_app.unread_count(current_user)
        except SQLAlchemyError:  # an error page while the database is away still renders, bell at 0
            log.warning("the bell's count could not be read", exc_info=True)
            db.session.rollback()
            g.bell_count = 0
    return g.bell_count


def bell_changed() -> None:
    """Something was marked read during this request: the bell on its page counts again."""
    g.pop("bell_count", None)


@bp.app_template_global()
def bell_label(count: int) -> str:
    """The bell's figure: "3", or "99+"."""
    return in_app.count_label(count)


@bp.app_template_global()
def bell_spoken(count: int) -> str:
    """What a screen reader says for the bell: "Notifications, 3 unread"."""
    if count > rules.UNREAD_SHOWN_MAX:
        return f"Notifications, more than {rules.UNREAD_SHOWN_MAX} unread"
    return f"Notifications, {count or 'none'} unread"


@bp.app_template_global()
def mention_people() -> list[mentions.Person]:
    """The colleagues a note may mention, by name (the composer's completion); read once per page."""
    if "mention_people" not in g:
        g.mention_people = sorted(notifications.mentionable_people(), key=lambda p: p.name.lower())
    return g.mention_people


@bp.app_template_filter("mentions")
def mention_markup(body: str) -> Markup:
    """A note's text, escaped, with each @mention of a colleague marked."""
    if not body or "@" not in body:
        return escape(body or "")
    people = mention_people()
    names = {p.id: p.name for p in people}
    out, at = [], 0
    for m in mentions.find_mentions(body, people):
        out.append(escape(body[at:m.start]))
        out.append(Markup('<strong class="mention" title="{}">{}</strong>').format(names[m.person_id],
                                                                                   body[m.start:m.end]))
        at = m.end
    out.append(escape(body[at:]))
    return Markup("").join(out)


def _context(before: int | None = None, **extra) -> dict:
    page = in_app.list_notifications(current_user, before)
    return {"page": page, "before": before, "newest_id": in_app.newest_id(current_user),
            "form": EmptyForm(), "headline": notifications.headline, "on_list": True, **extra}


@bp.get("/notifications")
@login_required
def list_notifications():
    before = whole_number(request.args.get("before"), 1, ID_MAX)
    return render_page_or_partial("notifications/page.html", LIST, target="notifications", **_context(before))


@bp.get("/notifications/bell")
@login_required
@revalidated_poll
def bell():
    shown_on = urlsplit(request.headers.get("HX-Current-URL", "")).path
    return render_template(BELL, on_list=shown_on == url_for("notifications.list_notifications"))


@bp.get("/notifications/<int:notification_id>")
@login_required
def open_notification(notification_id: int):
    row = in_app.open_notification(current_user, notification_id)
    if row.request_id is None:
        return redirect_to(url_for("notifications.list_notifications"))
    anchor = f"comment-{row.payload['comment_id']}" if row.payload.get("comment_id") else None
    return redirect_to(url_for("requests.show_request", request_id=row.request_id, _anchor=anchor))


@bp.post("/notifications/read")
@login_required
def mark_all_read():
    form = EmptyForm()
    back = url_for("notifications.list_notifications")
    try:
        if not form.validate_on_submit():
            raise ValidationFailed({"form": "The form expired. Reload the page and try again."})
        up_to = whole_number(request.form.get("up_to"), 0, ID_MAX)
        if up_to is None:
            raise ValidationFailed({"up_to": "Reload the page and try again."})
        marked = in_app.mark_all_read(current_user, up_to)
    except ServiceError as exc:
        return form_refused(exc, back, LIST, _context(), oob=(BELL,))
    message = f"Marked {marked} notification{'s' if marked != 1 else ''} read." if marked else "Nothing was unread."
    bell_changed()  # the bell in the answer counts again
    return form_done(message, back, LIST, _context(), oob=(BELL,))
