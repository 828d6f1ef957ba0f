"""In-app notifications: the bell reads the mail notification rows; @mentions in internal notes

Revision ID: 0022_in_app_notifications
Revises: 0021_saved_views
Create Date: 2026-12-03 14:00:00

The bell lists a person's notifications of the in-app kinds (assigned, public_comment, mention,
sla_at_risk, sla_breached) from the same `notification` rows the email queue delivers, so one
event is one row. `read_at` is when the person saw it under the bell (NULL: unread). The partial
index on (recipient_id, id) for unread rows of those kinds serves the bell's capped count and
"mark all read up to the newest shown", whatever the history. Rows written before this revision
count as read: the bell starts empty instead of with three months of mail. A new kind, `mention`
(a colleague named you in an internal note), joins the kind CHECK.
"""
from alembic import op
import sqlalchemy as sa

revision = '0022_in_app_notifications'
down_revision = '0021_saved_views'
branch_labels = None
depends_on = None

OLD_KINDS = ("request_created", "assigned", "public_comment", "status_changed", "sla_at_risk", "sla_breached",
             "dead_letter", "password_reset", "backup_failed", "security_alert", "account_locked",
             "verify_email", "account_exists")
NEW_KINDS = OLD_KINDS + ("mention",)
IN_APP_KINDS = ("assigned", "public_comment", "mention", "sla_at_risk", "sla_breached")


def _in(values):
    return ", ".join(f"'{v}'" for v in values)


def upgrade():
    op.drop_constraint(op.f('ck_notification_kind'), 'notification', type_='check')
    op.create_check_constraint(op.f('ck_notification_kind'), 'notification', f"kind IN ({_in(NEW_KINDS)})")
    op.add_column('notification', sa.Column('read_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(f"UPDATE notification SET read_at = created_at WHERE kind IN ({_in(IN_APP_KINDS)})")
    op.create_index('ix_notification_unread', 'notification', ['recipient_id', 'id'],
                    postgresql_where=sa.text(f"read_at IS NULL AND kind IN ({_in(IN_APP_KINDS)})"))


def downgrade():
    op.drop_index('ix_notification_unread', table_name='notification')
    op.drop_column('notification', 'read_at')
    op.execute("DELETE FROM notification WHERE kind = 'mention'")
    op.drop_constraint(op.f('ck_notification_kind'), 'notification', type_='check')
    op.create_check_constraint(op.f('ck_notification_kind'), 'notification', f"kind IN ({_in(OLD_KINDS)})")
