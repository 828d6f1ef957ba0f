"""Canned replies: the staff's shared library of reply templates

Revision ID: 0017_canned_replies
Revises: 0016_unassigned_seek
Create Date: 2026-12-05 09:00:00

Agents, managers and admins keep a small shared library of replies (a title and a body with
{requester_name}, {request_number} and {agent_name} placeholders) that the request page's composer
fills in. Each row records who wrote it and who changed it last; `version` guards an edit against a
colleague's edit made meanwhile. Titles are unique regardless of case (the composer lists them by
title), and that unique index also serves the library's alphabetical order.
"""
from alembic import op
import sqlalchemy as sa

revision = '0017_canned_replies'
down_revision = '0016_unassigned_seek'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('canned_reply',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_canned_reply_created_by_id_user')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], name=op.f('fk_canned_reply_updated_by_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_canned_reply'))
    )
    op.create_index('uq_canned_reply_title_lower', 'canned_reply', [sa.text('lower(title)')], unique=True)


def downgrade():
    op.drop_index('uq_canned_reply_title_lower', table_name='canned_reply')
    op.drop_table('canned_reply')
