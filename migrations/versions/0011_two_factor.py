"""Two-factor sign-in: a TOTP secret per account and single-use recovery codes

Revision ID: 0011_two_factor
Revises: 0010_self_service_accounts
Create Date: 2026-12-02 22:45:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0011_two_factor'
down_revision = '0010_self_service_accounts'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('user', sa.Column('totp_secret', sa.String(length=64), nullable=True))
    op.add_column('user', sa.Column('totp_enabled_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('user', sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.create_table('recovery_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_recovery_code_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_code')),
    sa.UniqueConstraint('user_id', 'code_hash', name=op.f('uq_recovery_code_user_id'))
    )


def downgrade():
    op.drop_table('recovery_code')
    op.drop_column('user', 'totp_last_step')
    op.drop_column('user', 'totp_enabled_at')
    op.drop_column('user', 'totp_secret')
