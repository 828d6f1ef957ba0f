"""Self-service accounts: email verification, and the mails for it

Revision ID: 0010_self_service_accounts
Revises: 0009_security_mail
Create Date: 2026-12-02 22:30:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0010_self_service_accounts'
down_revision = '0009_security_mail'
branch_labels = None
depends_on = None

OLD_KINDS = ("request_created", "assigned", "public_comment", "status_changed", "sla_at_risk", "sla_breached",
             "dead_letter", "password_reset", "backup_failed", "security_alert", "account_locked")
NEW_KINDS = OLD_KINDS + ("verify_email", "account_exists")


def _in(values):
    return ", ".join(f"'{v}'" for v in values)


def upgrade():
    # Accounts made before self-registration were made by admins: their addresses count as confirmed.
    op.add_column('user', sa.Column('email_verified_at', sa.DateTime(timezone=True), nullable=True))
    op.execute('UPDATE "user" SET email_verified_at = created_at')
    op.drop_constraint(op.f('ck_notification_kind'), 'notification', type_='check')
    op.create_check_constraint(op.f('ck_notification_kind'), 'notification', f"kind IN ({_in(NEW_KINDS)})")


def downgrade():
    op.execute("DELETE FROM notification WHERE kind IN ('verify_email', 'account_exists')")
    op.drop_constraint(op.f('ck_notification_kind'), 'notification', type_='check')
    op.create_check_constraint(op.f('ck_notification_kind'), 'notification', f"kind IN ({_in(OLD_KINDS)})")
    op.drop_column('user', 'email_verified_at')
