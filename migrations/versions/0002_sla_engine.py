"""SLA engine: calendars, holidays, definitions, metrics, events, exemptions

Revision ID: 0002_sla_engine
Revises: 0001_foundation
Create Date: 2026-11-29 04:31:19.062602

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0002_sla_engine'
down_revision = '0001_foundation'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('business_calendar',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('working_days', postgresql.ARRAY(sa.SmallInteger()), nullable=False),
    sa.Column('opens', sa.Time(), nullable=False),
    sa.Column('closes', sa.Time(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_business_calendar')),
    sa.UniqueConstraint('name', name=op.f('uq_business_calendar_name'))
    )
    op.create_table('holiday',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['business_calendar.id'], name=op.f('fk_holiday_calendar_id_business_calendar'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holiday')),
    sa.UniqueConstraint('calendar_id', 'day', name='uq_holiday_calendar_day')
    )
    op.create_table('sla_definition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('priority', sa.String(length=20), nullable=False),
    sa.Column('response_time_hours', sa.Numeric(precision=8, scale=2), nullable=False),
    sa.Column('resolution_time_hours', sa.Numeric(precision=8, scale=2), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=True),
    sa.Column('pause_statuses', postgresql.ARRAY(sa.String(length=30)), nullable=False),
    sa.Column('at_risk_percent', sa.SmallInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('at_risk_percent BETWEEN 1 AND 99', name=op.f('ck_sla_definition_at_risk_percent')),
    sa.CheckConstraint('resolution_time_hours >= response_time_hours', name=op.f('ck_sla_definition_resolution_after_response')),
    sa.CheckConstraint('response_time_hours > 0', name=op.f('ck_sla_definition_response_positive')),
    sa.ForeignKeyConstraint(['calendar_id'], ['business_calendar.id'], name=op.f('fk_sla_definition_calendar_id_business_calendar')),
    sa.ForeignKeyConstraint(['category'], ['category.code'], name=op.f('fk_sla_definition_category_category')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_definition'))
    )
    with op.batch_alter_table('sla_definition', schema=None) as batch_op:
        batch_op.create_index('uq_sla_definition_active_pair', ['category', 'priority'], unique=True, postgresql_where=sa.text('is_active'))

    op.create_table('sla_event',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('target', sa.String(length=12), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.CheckConstraint("kind IN ('started', 'paused', 'resumed', 'responded', 'resolved', 'at_risk', 'breached', 'exempted', 'exemption_revoked', 'recalculated')", name=op.f('ck_sla_event_kind')),
    sa.CheckConstraint("target IS NULL OR target IN ('response', 'resolution')", name=op.f('ck_sla_event_target')),
    sa.ForeignKeyConstraint(['actor_id'], ['user.id'], name=op.f('fk_sla_event_actor_id_user')),
    sa.ForeignKeyConstraint(['request_id'], ['service_request.id'], name=op.f('fk_sla_event_request_id_service_request'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_event'))
    )
    with op.batch_alter_table('sla_event', schema=None) as batch_op:
        batch_op.create_index('ix_sla_event_kind_at', ['kind', 'at'], unique=False)
        batch_op.create_index('ix_sla_event_request_at', ['request_id', 'at'], unique=False)
        batch_op.create_index('uq_sla_event_once', ['request_id', 'kind', 'target'], unique=True, postgresql_where=sa.text("kind IN ('breached', 'at_risk')"))

    op.create_table('sla_exemption',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('exemption_type', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('duration_hours', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('granted_by_id', sa.Integer(), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("exemption_type IN ('response', 'resolution', 'both')", name=op.f('ck_sla_exemption_exemption_type')),
    sa.CheckConstraint('duration_hours IS NULL OR duration_hours > 0', name=op.f('ck_sla_exemption_duration_positive')),
    sa.ForeignKeyConstraint(['granted_by_id'], ['user.id'], name=op.f('fk_sla_exemption_granted_by_id_user')),
    sa.ForeignKeyConstraint(['request_id'], ['service_request.id'], name=op.f('fk_sla_exemption_request_id_service_request'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['user.id'], name=op.f('fk_sla_exemption_revoked_by_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_exemption'))
    )
    with op.batch_alter_table('sla_exemption', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sla_exemption_request_id'), ['request_id'], unique=False)

    op.create_table('sla_metric',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('definition_id', sa.Integer(), nullable=True),
    sa.Column('calendar_id', sa.Integer(), nullable=True),
    sa.Column('calendar', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('response_target_hours', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('resolution_target_hours', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('at_risk_percent', sa.SmallInteger(), nullable=False),
    sa.Column('pause_statuses', postgresql.ARRAY(sa.String(length=30)), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('response_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('response_warn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_warn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('responded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paused_seconds', sa.Integer(), nullable=False),
    sa.Column('paused_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('response_sla_met', sa.Boolean(), nullable=True),
    sa.Column('resolution_sla_met', sa.Boolean(), nullable=True),
    sa.Column('response_at_risk_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_at_risk_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('response_breached_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_breached_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('is_breached', sa.Boolean(), nullable=False),
    sa.Column('breach_type', sa.String(length=12), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("breach_type IS NULL OR breach_type IN ('response', 'resolution', 'both')", name=op.f('ck_sla_metric_breach_type')),
    sa.ForeignKeyConstraint(['calendar_id'], ['business_calendar.id'], name=op.f('fk_sla_metric_calendar_id_business_calendar')),
    sa.ForeignKeyConstraint(['definition_id'], ['sla_definition.id'], name=op.f('fk_sla_metric_definition_id_sla_definition')),
    sa.ForeignKeyConstraint(['request_id'], ['service_request.id'], name=op.f('fk_sla_metric_request_id_service_request'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_metric')),
    sa.UniqueConstraint('request_id', name=op.f('uq_sla_metric_request_id'))
    )
    with op.batch_alter_table('sla_metric', schema=None) as batch_op:
        batch_op.create_index('idx_sla_metric_breached_created', ['is_breached', 'created_at'], unique=False)
        batch_op.create_index('ix_sla_metric_resolution_due_open', ['resolution_due_at'], unique=False, postgresql_where=sa.text('resolved_at IS NULL AND resolution_breached_at IS NULL'))
        batch_op.create_index('ix_sla_metric_resolution_warn_open', ['resolution_warn_at'], unique=False, postgresql_where=sa.text('resolved_at IS NULL AND resolution_at_risk_at IS NULL AND resolution_breached_at IS NULL'))
        batch_op.create_index('ix_sla_metric_response_due_open', ['response_due_at'], unique=False, postgresql_where=sa.text('responded_at IS NULL AND response_breached_at IS NULL'))
        batch_op.create_index('ix_sla_metric_response_warn_open', ['response_warn_at'], unique=False, postgresql_where=sa.text('responded_at IS NULL AND response_at_risk_at IS NULL AND response_breached_at IS NULL'))



def downgrade():
    with op.batch_alter_table('sla_metric', schema=None) as batch_op:
        batch_op.drop_index('ix_sla_metric_response_warn_open', postgresql_where=sa.text('responded_at IS NULL AND response_at_risk_at IS NULL AND response_breached_at IS NULL'))
        batch_op.drop_index('ix_sla_metric_response_due_open', postgresql_where=sa.text('responded_at IS NULL AND response_breached_at IS NULL'))
        batch_op.drop_index('ix_sla_metric_resolution_warn_open', postgresql_where=sa.text('resolved_at IS NULL AND resolution_at_risk_at IS NULL AND resolution_breached_at IS NULL'))
        batch_op.drop_index('ix_sla_metric_resolution_due_open', postgresql_where=sa.text('resolved_at IS NULL AND resolution_breached_at IS NULL'))
        batch_op.drop_index('idx_sla_metric_breached_created')

    op.drop_table('sla_metric')
    with op.batch_alter_table('sla_exemption', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sla_exemption_request_id'))

    op.drop_table('sla_exemption')
    with op.batch_alter_table('sla_event', schema=None) as batch_op:
        batch_op.drop_index('uq_sla_event_once', postgresql_where=sa.text("kind IN ('breached', 'at_risk')"))
        batch_op.drop_index('ix_sla_event_request_at')
        batch_op.drop_index('ix_sla_event_kind_at')

    op.drop_table('sla_event')
    with op.batch_alter_table('sla_definition', schema=None) as batch_op:
        batch_op.drop_index('uq_sla_definition_active_pair', postgresql_where=sa.text('is_active'))

    op.drop_table('sla_definition')
    op.drop_table('holiday')
    op.drop_table('business_calendar')
