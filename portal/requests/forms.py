"""Forms for raising and working requests. Rules live in the service; these parse and render."""

from flask_wtf import FlaskForm
from wtforms import HiddenField, MultipleFileField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from portal.domain.workflow import PRIORITIES, PRIORITY_LABELS, STATUS_LABELS, STATUSES
from portal.models.canned_reply import CANNED_BODY_MAX, CANNED_TITLE_MAX
from portal.models.saved_view import VIEW_NAME_MAX
from portal.models.service_request import COMMENT_MAX, DESCRIPTION_MAX, TITLE_MAX

PRIORITY_CHOICES = [(p, PRIORITY_LABELS[p]) for p in PRIORITIES]


class NewRequestForm(FlaskForm):
    """Raise a request."""

    title = StringField("Title", validators=[DataRequired(), Length(max=TITLE_MAX)])
    # Starts on an empty "Choose a category"; the service says when none or a retired one is chosen.
    category = SelectField("Category", validate_choice=False)
    priority = SelectField("Priority", choices=PRIORITY_CHOICES, default="medium")
    description = TextAreaField(
        "Description", validators=[DataRequired(), Length(max=DESCRIPTION_MAX)],
        description="What happened, what you expected, and anything you already tried.",
    )
    attachments = MultipleFileField("Attachments")


# The composer's two modes (staff only): what it writes is decided by `internal`, "y" for a note.
COMPOSER_MODES = [("", "Reply to requester"), ("y", "Internal note")]


class CommentForm(FlaskForm):
    """The request page's composer: a reply, or (staff) an internal note; a reply may also set the status.

    `status` comes from the button pressed ("Send and resolve"); `canned_reply` is the canned reply
    to insert (the no-JavaScript way to insert one posts the draft here too, so nothing typed is lost).
    """

    body = TextAreaField("Reply", validators=[DataRequired(), Length(max=COMMENT_MAX)])
    internal = RadioField("Write", choices=COMPOSER_MODES, default="", validate_choice=False)
    attachments = MultipleFileField("Attach files")
    status = StringField("Then set the status")
    canned_reply = SelectField("Insert canned reply", validate_choice=False)


class CannedReplyForm(FlaskForm):
    """Add or edit a canned reply; the service checks the placeholders."""

    title = StringField("Title", validators=[DataRequired("Give the reply a title."), Length(max=CANNED_TITLE_MAX)])
    body = TextAreaField("Text", validators=[DataRequired("Write the reply's text."), Length(max=CANNED_BODY_MAX)])


class FollowUpForm(FlaskForm):
    """Open a follow-up to a closed request: what the requester tried to reply becomes its description."""

    body = TextAreaField("Your message for the follow-up", validators=[
        DataRequired("Write what the follow-up is about."), Length(max=DESCRIPTION_MAX)])


class StatusForm(FlaskForm):
    """Move a request to another status."""

    status = SelectField("Status", choices=[(s, STATUS_LABELS[s]) for s in STATUSES])


class AssignForm(FlaskForm):
    """Assign a request: 'me', an agent's id, or '' to unassign."""

    assignee = SelectField("Assignee", validate_choice=False)


class PropertiesForm(FlaskForm):
    """Re-prioritise or re-categorise a request."""

    priority = SelectField("Priority", choices=PRIORITY_CHOICES)
    category = SelectField("Category", validate_choice=False)


class TextForm(FlaskForm):
    """Edit a request's title and description (staff, or the requester while it is open)."""

    title = StringField("Title", validators=[DataRequired(), Length(max=TITLE_MAX)])
    description = TextAreaField("Description", validators=[DataRequired(), Length(max=DESCRIPTION_MAX)])


class SaveViewForm(FlaskForm):
    """Save the list's filters and sort as a view: `query` is the list's query string as the page shows
    it. No rules here: the name's messages live in portal/services/saved_views.py, in one place."""

    name = StringField("Name the view", render_kw={"maxlength": VIEW_NAME_MAX, "autocomplete": "off"})
    query = HiddenField()
