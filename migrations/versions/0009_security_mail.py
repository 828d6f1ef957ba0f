"""Mail kinds for the brute-force defence: security_alert (admins) and account_locked (the owner)

Revision ID: 0009_security_mail
Revises: 0008_user_sessions
Create Date: 2026-12-02 22:35:00

"""
from alembic import op

revision = '0009_security_mail'
down_revision = '0008_user_sessions'
branch_labels = None
depends_on = None

OLD_KINDS = ("request_created", "assigned", "public_comment", "status_changed", "sla_at_risk", "sla_breached",
             "dead_letter", "password_reset", "backup_failed")
NEW_KINDS = OLD_KINDS + ("security_alert", "account_locked")


def _in(values):
    return ", ".join(f"'{v}'" for v in values)


def upgrade():
    op.drop_constraint(op.f('ck_notification_kind'), 'notification', type_='check')
    op.create_check_constraint(op.f('ck_notification_kind'), 'notification', f"kind IN ({_in(NEW_KINDS)})")


def downgrade():
    op.execute("DELETE FROM notification WHERE kind IN ('security_alert', 'account_locked')")
    op.drop_constraint(op.f('ck_notification_kind'), 'notification', type_='check')
    op.create_check_constraint(op.f('ck_notification_kind'), 'notification', f"kind IN ({_in(OLD_KINDS)})")
