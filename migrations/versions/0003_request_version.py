"""Request version for optimistic locking; the calendar snapshot column for kept databases

Revision ID: 0003_request_version
Revises: 0002_sla_engine
Create Date: 2026-12-02 15:30:00

`sla_metric.calendar` was added to 0002 after that revision had landed, so a database migrated
with the first 0002 says "up to date" and lacks it. Add it where it is missing and fill it from
each clock's calendar (with its holidays), as a clock started then would have copied it.
"""
from alembic import op
import sqlalchemy as sa

revision = '0003_request_version'
down_revision = '0002_sla_engine'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('service_request', sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    op.execute("ALTER TABLE sla_metric ADD COLUMN IF NOT EXISTS calendar JSONB")
    op.execute("""
        UPDATE sla_metric m
           SET calendar = jsonb_build_object(
                   'id', c.id, 'timezone', c.timezone,
                   'working_days', (SELECT coalesce(jsonb_agg(d ORDER BY d), '[]'::jsonb)
                                      FROM unnest(c.working_days) AS d),
                   'opens', to_char(c.opens, 'HH24:MI'), 'closes', to_char(c.closes, 'HH24:MI'),
                   'holidays', (SELECT coalesce(jsonb_agg(to_char(h.day, 'YYYY-MM-DD') ORDER BY h.day), '[]'::jsonb)
                                  FROM holiday h WHERE h.calendar_id = c.id))
          FROM business_calendar c
         WHERE m.calendar IS NULL AND m.calendar_id = c.id
    """)


def downgrade():
    # The calendar column belongs to 0002 (as it reads today); only the version goes.
    op.drop_column('service_request', 'version')
