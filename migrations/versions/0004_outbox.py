"""Job outbox: jobs written with the change that caused them, relayed to Redis after commit

Revision ID: 0004_outbox
Revises: 0003_request_version
Create Date: 2026-12-02 16:25:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004_outbox'
down_revision = '0003_request_version'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outbox_message',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('func', sa.String(length=200), nullable=False),
    sa.Column('queue', sa.String(length=20), nullable=False),
    sa.Column('args', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('kwargs', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('correlation_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('relayed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_message'))
    )
    op.create_index('ix_outbox_message_pending', 'outbox_message', ['id'], unique=False,
                    postgresql_where=sa.text('relayed_at IS NULL'))


def downgrade():
    op.drop_index('ix_outbox_message_pending', table_name='outbox_message', postgresql_where=sa.text('relayed_at IS NULL'))
    op.drop_table('outbox_message')
