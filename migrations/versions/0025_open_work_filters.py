"""The open work filtered by priority, category or assignee, in created order, from indexes of its own

Revision ID: 0025_open_work_filters
Revises: 0024_sla_rollup_deltas
Create Date: 2026-12-03 16:30:00

Staff land on the open work, and filter it by priority, category or assignee. Sorted oldest (or
newest) first, PostgreSQL walked a whole-table index such as (priority, created_at, id) from two
years back, past every done request, until 26 open ones turned up: 130-185 ms at 1,000,000
requests (open requests are the newest; the planner cannot know). Partial indexes over the open
statuses start where the open work is: 0.6 ms. Built here over the whole table (about 2 s at
1,000,000 requests, writes to requests held meanwhile).
"""
from alembic import op
import sqlalchemy as sa

revision = '0025_open_work_filters'
down_revision = '0024_sla_rollup_deltas'
branch_labels = None
depends_on = None

OPEN = "status IN ('open', 'in_progress', 'waiting_on_customer')"
INDEXES = (("priority", "priority"), ("category", "category"), ("assignee", "assignee_id"))


def upgrade():
    for name, column in INDEXES:
        op.create_index(f'ix_service_request_open_{name}_created', 'service_request', [column, 'created_at', 'id'],
                        postgresql_where=sa.text(OPEN))


def downgrade():
    for name, _ in INDEXES:
        op.drop_index(f'ix_service_request_open_{name}_created', table_name='service_request',
                      postgresql_where=sa.text(OPEN))
