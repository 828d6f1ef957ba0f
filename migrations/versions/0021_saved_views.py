"""Saved views: named filters and sort for the request list, a person's own or shared with the team

Revision ID: 0021_saved_views
Revises: 0020_due_soonest
Create Date: 2026-12-03 12:30:00

One row per view: its owner, a name unique per owner regardless of case (that unique index also
serves the owner's tabs in name order), the list's normalised query string, and whether the team
sees it (a small partial index serves the shared tabs). `version` guards an edit against a
colleague's edit made meanwhile. A view goes with its owner (ON DELETE CASCADE).
"""
from alembic import op
import sqlalchemy as sa

revision = '0021_saved_views'
down_revision = '0020_due_soonest'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('saved_view',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('query', sa.String(length=1000), nullable=False),
    sa.Column('shared', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_saved_view_owner_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_view'))
    )
    op.create_index('uq_saved_view_owner_name', 'saved_view', ['owner_id', sa.text('lower(name)')], unique=True)
    op.create_index('ix_saved_view_shared', 'saved_view', [sa.text('lower(name)')], postgresql_where=sa.text('shared'))


def downgrade():
    op.drop_index('ix_saved_view_shared', table_name='saved_view', postgresql_where=sa.text('shared'))
    op.drop_index('uq_saved_view_owner_name', table_name='saved_view')
    op.drop_table('saved_view')
