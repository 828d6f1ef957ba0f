"""Follow-up requests: a request may continue a closed one

Revision ID: 0015_follow_up
Revises: 0014_comment_timeline
Create Date: 2026-12-04 09:00:00

A requester's reply to a closed request is refused and offered as a new request linked to it.
`service_request.follow_up_of_id` names the closed request a follow-up continues; deleting that
request keeps the follow-up and drops the link. Few requests are follow-ups, so the index that
finds a request's follow-ups (and serves the foreign key's ON DELETE) holds only the linked rows.
Adding a nullable column rewrites nothing; the index build reads the table once.
"""
from alembic import op
import sqlalchemy as sa

revision = '0015_follow_up'
down_revision = '0014_comment_timeline'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('service_request', sa.Column('follow_up_of_id', sa.Integer(), nullable=True))
    op.create_foreign_key(op.f('fk_service_request_follow_up_of_id_service_request'), 'service_request',
                          'service_request', ['follow_up_of_id'], ['id'], ondelete='SET NULL')
    op.create_index('ix_service_request_follow_up_of_id', 'service_request', ['follow_up_of_id'],
                    postgresql_where=sa.text('follow_up_of_id IS NOT NULL'))


def downgrade():
    op.drop_index('ix_service_request_follow_up_of_id', table_name='service_request')
    op.drop_constraint(op.f('fk_service_request_follow_up_of_id_service_request'), 'service_request',
                       type_='foreignkey')
    op.drop_column('service_request', 'follow_up_of_id')
