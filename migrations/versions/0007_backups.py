"""Backup catalog, and the backup_failed mail kind

Revision ID: 0007_backups
Revises: 0006_notifications
Create Date: 2026-12-02 22:00:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0007_backups'
down_revision = '0006_notifications'
branch_labels = None
depends_on = None

OLD_KINDS = ("request_created", "assigned", "public_comment", "status_changed", "sla_at_risk", "sla_breached",
             "dead_letter", "password_reset")
NEW_KINDS = OLD_KINDS + ("backup_failed",)


def _in(values):
    return ", ".join(f"'{v}'" for v in values)


def upgrade():
    op.create_table('backup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('trigger', sa.String(length=10), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('table_counts', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('server_version', sa.String(length=20), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'verified', 'failed', 'unverified')",
                       name=op.f('ck_backup_status')),
    sa.CheckConstraint("trigger IN ('scheduled', 'manual', 'command', 'found')", name=op.f('ck_backup_trigger')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user.id'], name=op.f('fk_backup_requested_by_id_user'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backup')),
    sa.UniqueConstraint('name', name=op.f('uq_backup_name'))
    )
    op.create_index('ix_backup_created', 'backup', ['created_at'])
    op.create_index('ix_backup_verified', 'backup', ['verified_at'], postgresql_where=sa.text("status = 'verified'"))
    op.drop_constraint(op.f('ck_notification_kind'), 'notification', type_='check')
    op.create_check_constraint(op.f('ck_notification_kind'), 'notification', f"kind IN ({_in(NEW_KINDS)})")


def downgrade():
    op.execute("DELETE FROM notification WHERE kind = 'backup_failed'")
    op.drop_constraint(op.f('ck_notification_kind'), 'notification', type_='check')
    op.create_check_constraint(op.f('ck_notification_kind'), 'notification', f"kind IN ({_in(OLD_KINDS)})")
    op.drop_index('ix_backup_verified', table_name='backup', postgresql_where=sa.text("status = 'verified'"))
    op.drop_index('ix_backup_created', table_name='backup')
    op.drop_table('backup')
