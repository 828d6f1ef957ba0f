"""The unassigned requests in every list order: the "Unassigned" view stays a short index walk

Revision ID: 0016_unassigned_seek
Revises: 0015_follow_up
Create Date: 2026-12-03 07:30:00

Unassigned requests are almost all new and open (32,000 of 1,000,000 in the bench seed, none of
them closed). PostgreSQL assumes that "assignee_id IS NULL" is spread evenly over history, so for
an unassigned list sorted oldest first, by priority or by status it walked the sort's index from
the start and threw away hundreds of thousands of assigned rows before finding a page (0.3-1 s at
1,000,000 requests). Partial indexes of the unassigned rows in each sort's order make that page a
walk of the unassigned rows only, the way the open-work indexes of 0012 do for the open ones.
"""
from alembic import op
import sqlalchemy as sa

revision = '0016_unassigned_seek'
down_revision = '0015_follow_up'
branch_labels = None
depends_on = None

UNASSIGNED = 'assignee_id IS NULL'
INDEXES = [
    ('ix_service_request_unassigned_created', ['created_at', 'id']),
    ('ix_service_request_unassigned_updated', ['updated_at', 'id']),
    ('ix_service_request_unassigned_priority', ['priority_rank', 'created_at', 'id']),
    ('ix_service_request_unassigned_status', ['status_rank', sa.text('created_at DESC'), sa.text('id DESC')]),
]


def upgrade():
    for name, columns in INDEXES:
        op.create_index(name, 'service_request', columns, postgresql_where=sa.text(UNASSIGNED))


def downgrade():
    for name, _columns in INDEXES:
        op.drop_index(name, table_name='service_request')
