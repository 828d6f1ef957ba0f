"""Comments in timeline order: the request page reads a request's comments a page at a time

Revision ID: 0014_comment_timeline
Revises: 0013_sla_rollup
Create Date: 2026-12-03 06:05:00

The paged timeline asks for a request's comments before or after a (created_at, id) position,
newest or oldest first. An index on (request_id, created_at, id) answers that with a short range
scan at any thread length; it also serves every lookup by request alone, so it replaces
`ix_comment_request_id`.
"""
from alembic import op

revision = '0014_comment_timeline'
down_revision = '0013_sla_rollup'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_comment_request_timeline', 'comment', ['request_id', 'created_at', 'id'])
    op.drop_index('ix_comment_request_id', table_name='comment')


def downgrade():
    op.create_index('ix_comment_request_id', 'comment', ['request_id'])
    op.drop_index('ix_comment_request_timeline', table_name='comment')
