"""Exports and reports: the export table and the daily trend aggregate, with the indexes the trend job reads

Revision ID: 0005_exports
Revises: 0004_outbox
Create Date: 2026-12-02 17:35:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005_exports'
down_revision = '0004_outbox'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('export',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('rows_done', sa.Integer(), nullable=False),
    sa.Column('rows_total', sa.Integer(), nullable=True),
    sa.Column('file_name', sa.String(length=255), nullable=True),
    sa.Column('file_path', sa.String(length=500), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('gzipped', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('requests_csv', 'requests_pdf', 'sla_report')", name=op.f('ck_export_kind')),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_export_status')),
    sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_export_owner_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export'))
    )
    op.create_index('ix_export_owner_created', 'export', ['owner_id', 'created_at'], unique=False)
    op.create_index('ix_export_expires_at', 'export', ['expires_at'], unique=False)
    op.create_table('trend_daily',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('priority', sa.String(length=20), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('resolved', sa.Integer(), nullable=False),
    sa.Column('resolved_within_sla', sa.Integer(), nullable=False),
    sa.Column('resolved_late', sa.Integer(), nullable=False),
    sa.Column('response_breached', sa.Integer(), nullable=False),
    sa.Column('resolution_breached', sa.Integer(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', 'category', 'priority', name=op.f('pk_trend_daily'))
    )
    op.create_index('ix_service_request_created_at', 'service_request', ['created_at'], unique=False)
    op.create_index('ix_service_request_resolved_at', 'service_request', ['resolved_at'], unique=False,
                    postgresql_where=sa.text('resolved_at IS NOT NULL'))
    op.create_index('ix_sla_metric_response_breached_at', 'sla_metric', ['response_breached_at'], unique=False,
                    postgresql_where=sa.text('response_breached_at IS NOT NULL'))
    op.create_index('ix_sla_metric_resolution_breached_at', 'sla_metric', ['resolution_breached_at'], unique=False,
                    postgresql_where=sa.text('resolution_breached_at IS NOT NULL'))


def downgrade():
    op.drop_index('ix_sla_metric_resolution_breached_at', table_name='sla_metric')
    op.drop_index('ix_sla_metric_response_breached_at', table_name='sla_metric')
    op.drop_index('ix_service_request_resolved_at', table_name='service_request')
    op.drop_index('ix_service_request_created_at', table_name='service_request')
    op.drop_table('trend_daily')
    op.drop_index('ix_export_expires_at', table_name='export')
    op.drop_index('ix_export_owner_created', table_name='export')
    op.drop_table('export')
