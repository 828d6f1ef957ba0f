"""The admins' audit page: indexes for the log newest first, whole, by kind of thing and by action

Revision ID: 0018_audit_log_browse
Revises: 0017_canned_replies
Create Date: 2026-12-05 12:00:00

/admin/audit lists audit_log newest first, paged by position ((at, id) of the last row shown), and
filters by entity type or by action. The log grows with every change (millions of rows), and the
only index so far, (entity_type, entity_id, at), serves one entity's history: every other page
would sort the whole table. With these, each page is one short walk of an index in the page's own
order, however deep: the whole log by (at, id), a kind of thing by (entity_type, at, id), one kind
of change by (action, at, id).
"""
from alembic import op

revision = '0018_audit_log_browse'
down_revision = '0017_canned_replies'
branch_labels = None
depends_on = None

INDEXES = [
    ('ix_audit_log_at', ['at', 'id']),
    ('ix_audit_log_entity_type_at', ['entity_type', 'at', 'id']),
    ('ix_audit_log_action_at', ['action', 'at', 'id']),
]


def upgrade():
    for name, columns in INDEXES:
        op.create_index(name, 'audit_log', columns)


def downgrade():
    for name, _columns in INDEXES:
        op.drop_index(name, table_name='audit_log')
