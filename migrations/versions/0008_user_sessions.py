"""Server-side sessions: one row per sign-in, revocable (they replace user.session_version)

Revision ID: 0008_user_sessions
Revises: 0007_backups
Create Date: 2026-12-02 22:10:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0008_user_sessions'
down_revision = '0007_backups'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('remember', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=30), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_user_session_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_session_token_hash'))
    )
    op.create_index('ix_user_session_live', 'user_session', ['user_id'], postgresql_where=sa.text('revoked_at IS NULL'))
    op.create_index('ix_user_session_expires', 'user_session', ['expires_at'])
    op.drop_column('user', 'session_version')


def downgrade():
    op.add_column('user', sa.Column('session_version', sa.Integer(), server_default='1', nullable=False))
    op.drop_index('ix_user_session_expires', table_name='user_session')
    op.drop_index('ix_user_session_live', table_name='user_session', postgresql_where=sa.text('revoked_at IS NULL'))
    op.drop_table('user_session')
