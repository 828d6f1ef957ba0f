"""Mail notifications: one row per event and recipient, preferences, and which SLA alerts were mailed

Revision ID: 0006_notifications
Revises: 0005_exports
Create Date: 2026-12-02 17:50:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006_notifications'
down_revision = '0005_exports'
branch_labels = None
depends_on = None

KINDS = ("request_created", "assigned", "public_comment", "status_changed", "sla_at_risk", "sla_breached",
         "dead_letter", "password_reset")


def _in(values):
    return ", ".join(f"'{v}'" for v in values)


def upgrade():
    op.create_table('notification',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.String(length=200), nullable=True),
    sa.Column('correlation_id', sa.String(length=64), nullable=True),
    sa.CheckConstraint(f"kind IN ({_in(KINDS)})", name=op.f('ck_notification_kind')),
    sa.CheckConstraint("status IN ('pending', 'held', 'sent', 'skipped')", name=op.f('ck_notification_status')),
    sa.ForeignKeyConstraint(['recipient_id'], ['user.id'], name=op.f('fk_notification_recipient_id_user'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['service_request.id'],
                            name=op.f('fk_notification_request_id_service_request'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('key', name=op.f('uq_notification_key'))
    )
    op.create_index('ix_notification_pending', 'notification', ['recipient_id', 'id'],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_notification_held', 'notification', ['recipient_id', 'id'],
                    postgresql_where=sa.text("status = 'held'"))
    op.create_index('ix_notification_sent', 'notification', ['recipient_id', 'sent_at'],
                    postgresql_where=sa.text("status = 'sent'"))
    op.create_index('ix_notification_recipient', 'notification', ['recipient_id', 'id'])
    op.create_index('ix_notification_request', 'notification', ['request_id'])
    op.create_index('ix_notification_created', 'notification', ['created_at'])
    op.create_table('notification_setting',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('muted_kinds', postgresql.ARRAY(sa.String(length=30)), nullable=False),
    sa.Column('sla_digest', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_notification_setting_user_id_user'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_setting'))
    )
    # Breach and at-risk events are mailed once: the alert job marks each event it has written
    # notifications for. Events recorded before this release are history, not news.
    op.add_column('sla_event', sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE sla_event SET notified_at = at WHERE kind IN ('breached', 'at_risk')")
    op.create_index('ix_sla_event_to_notify', 'sla_event', ['id'],
                    postgresql_where=sa.text("kind IN ('breached', 'at_risk') AND notified_at IS NULL"))


def downgrade():
    op.drop_index('ix_sla_event_to_notify', table_name='sla_event',
                  postgresql_where=sa.text("kind IN ('breached', 'at_risk') AND notified_at IS NULL"))
    op.drop_column('sla_event', 'notified_at')
    op.drop_table('notification_setting')
    op.drop_index('ix_notification_created', table_name='notification')
    op.drop_index('ix_notification_request', table_name='notification')
    op.drop_index('ix_notification_recipient', table_name='notification')
    op.drop_index('ix_notification_sent', table_name='notification', postgresql_where=sa.text("status = 'sent'"))
    op.drop_index('ix_notification_held', table_name='notification', postgresql_where=sa.text("status = 'held'"))
    op.drop_index('ix_notification_pending', table_name='notification', postgresql_where=sa.text("status = 'pending'"))
    op.drop_table('notification')
