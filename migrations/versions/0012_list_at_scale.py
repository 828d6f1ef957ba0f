"""The request list, search and breach list at a million requests: sort ranks, full-text search, seek indexes

Revision ID: 0012_list_at_scale
Revises: 0011_two_factor
Create Date: 2026-12-03 02:00:00

Every sort the list offers gets an index in its own order, ending in the id so keyset ("seek")
paging can resume from a row; the filters get (column, created_at, id) indexes in place of their
single-column ones; the open statuses (the agents' working set) get partial indexes of their own.
Search moves from ILIKE to full-text: generated tsvector columns on requests (title A, description
B) and comments, GIN-indexed. The breach list reads a partial index of the open clocks that are
breached or at risk instead of every clock of all time.

The generated columns rewrite `service_request` and `comment` (about 1 minute per million
requests on 2 cores); the indexes are built after.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0012_list_at_scale'
down_revision = '0011_two_factor'
branch_labels = None
depends_on = None

# As in portal/domain/workflow.py (PRIORITY_RANK, STATUSES): a migration keeps its own copy.
PRIORITY_RANK_SQL = ("CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 "
                     "WHEN 'low' THEN 3 END")
STATUS_RANK_SQL = ("CASE status WHEN 'open' THEN 0 WHEN 'in_progress' THEN 1 WHEN 'waiting_on_customer' "
                   "THEN 2 WHEN 'resolved' THEN 3 WHEN 'closed' THEN 4 END")
REQUEST_SEARCH_SQL = ("setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
                      "setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B')")
COMMENT_SEARCH_SQL = "to_tsvector('english'::regconfig, coalesce(body, ''))"
OPEN = "status IN ('open', 'in_progress', 'waiting_on_customer')"
BREACH_LIST = (f"{OPEN} AND (is_breached OR (response_at_risk_at IS NOT NULL AND responded_at IS NULL) "
               "OR (resolution_at_risk_at IS NOT NULL AND resolved_at IS NULL))")

# (name, columns, where): the list's seek indexes.
REQUEST_INDEXES = [
    ('ix_service_request_created_id', ['created_at', 'id'], None),
    ('ix_service_request_updated_id', ['updated_at', 'id'], None),
    ('ix_service_request_priority_rank', ['priority_rank', 'created_at', 'id'], None),
    ('ix_service_request_status_rank', ['status_rank', sa.text('created_at DESC'), sa.text('id DESC')], None),
    ('ix_service_request_status_seek', ['status', 'created_at', 'id'], None),
    ('ix_service_request_priority_seek', ['priority', 'created_at', 'id'], None),
    ('ix_service_request_category_seek', ['category', 'created_at', 'id'], None),
    ('ix_service_request_assignee_seek', ['assignee_id', 'created_at', 'id'], None),
    ('ix_service_request_requester_seek', ['requester_id', 'created_at', 'id'], None),
    ('ix_service_request_open_created', ['created_at', 'id'], OPEN),
    ('ix_service_request_open_updated', ['updated_at', 'id'], OPEN),
    ('ix_service_request_open_priority', ['priority_rank', 'created_at', 'id'], OPEN),
    ('ix_service_request_open_status', ['status_rank', sa.text('created_at DESC'), sa.text('id DESC')], OPEN),
    ('ix_service_request_open_counts', ['status', 'priority', 'category'], OPEN),
]
# Superseded by the (column, created_at, id) indexes above, which serve the same lookups.
REPLACED = [
    ('ix_service_request_created_at', ['created_at']),
    ('idx_service_request_status_created', ['status', 'created_at']),
    ('idx_service_request_priority_created', ['priority', 'created_at']),
    ('ix_service_request_category', ['category']),
    ('ix_service_request_assignee_id', ['assignee_id']),
    ('ix_service_request_requester_id', ['requester_id']),
]


def upgrade():
    op.add_column('service_request', sa.Column(
        'priority_rank', sa.SmallInteger(), sa.Computed(PRIORITY_RANK_SQL, persisted=True), nullable=False))
    op.add_column('service_request', sa.Column(
        'status_rank', sa.SmallInteger(), sa.Computed(STATUS_RANK_SQL, persisted=True), nullable=False))
    op.add_column('service_request', sa.Column(
        'search_vector', postgresql.TSVECTOR(), sa.Computed(REQUEST_SEARCH_SQL, persisted=True), nullable=False))
    op.add_column('comment', sa.Column(
        'search_vector', postgresql.TSVECTOR(), sa.Computed(COMMENT_SEARCH_SQL, persisted=True), nullable=False))
    for name, _columns in REPLACED:
        op.drop_index(name, table_name='service_request')
    for name, columns, where in REQUEST_INDEXES:
        op.create_index(name, 'service_request', columns, postgresql_where=sa.text(where) if where else None)
    op.create_index('ix_service_request_search', 'service_request', ['search_vector'], postgresql_using='gin')
    op.create_index('ix_comment_search', 'comment', ['search_vector'], postgresql_using='gin')
    op.create_index('ix_sla_metric_breach_list', 'sla_metric', ['request_id'], postgresql_where=sa.text(BREACH_LIST))


def downgrade():
    op.drop_index('ix_sla_metric_breach_list', table_name='sla_metric')
    op.drop_index('ix_comment_search', table_name='comment')
    op.drop_index('ix_service_request_search', table_name='service_request')
    for name, _columns, _where in REQUEST_INDEXES:
        op.drop_index(name, table_name='service_request')
    for name, columns in REPLACED:
        op.create_index(name, 'service_request', columns)
    op.drop_column('comment', 'search_vector')
    op.drop_column('service_request', 'search_vector')
    op.drop_column('service_request', 'status_rank')
    op.drop_column('service_request', 'priority_rank')
