"""A change stamp on each SLA clock, so the breach polls answer 304 before doing any work

Revision ID: 0026_breach_list_stamp
Revises: 0025_open_work_filters
Create Date: 2026-12-03 16:45:00

The breach table on /sla/breaches and the dashboard's breach widget are polled every 30 seconds.
They computed the whole list (the open problems sorted by how overdue they are) before comparing the
result with the browser's copy. Now every write to a clock takes a new number from a sequence into
`sla_metric.change_seq` (a BEFORE trigger), and so does every change of what the list shows beside
the clock: an exemption granted or revoked, the request's title. A poll reads the count and a sum of
hashes of (request, change_seq) over the listed clocks from an index over them alone (no table
access): a change that has committed always changes it, whatever order transactions commit in
(unlike a maximum). The column starts empty (NULL reads as the row's own id: no table rewrite); the
two partial indexes 0023 made over the listed clocks are rebuilt to carry it, and a third one is
added: (is_breached, request_id) carrying the due, breach and done times, the copies and the stamp,
so the list's order (breached first, most overdue first) reads it without visiting the table (20 ->
10 ms for the first page at 12,578 listed clocks). A few seconds at 1,000,000 requests, writes to
sla_metric held meanwhile.
"""
from alembic import op
import sqlalchemy as sa

revision = '0026_breach_list_stamp'
down_revision = '0025_open_work_filters'
branch_labels = None
depends_on = None

LISTED = ("status IN ('open', 'in_progress', 'waiting_on_customer') AND (is_breached "
          "OR (response_at_risk_at IS NOT NULL AND responded_at IS NULL) "
          "OR (resolution_at_risk_at IS NOT NULL AND resolved_at IS NULL))")
ORDER_COLUMNS = ['response_due_at', 'resolution_due_at', 'response_breached_at', 'resolution_breached_at',
                 'responded_at', 'resolved_at', 'assignee_id', 'priority', 'category']

FUNCTIONS = """
CREATE SEQUENCE sla_metric_change_seq;

CREATE FUNCTION sla_metric_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := nextval('sla_metric_change_seq');
    RETURN NEW;
END $$;

CREATE TRIGGER sla_metric_stamp BEFORE INSERT OR UPDATE ON sla_metric
    FOR EACH ROW EXECUTE FUNCTION sla_metric_stamp();

-- What the breach list shows beside the clock: its exemptions, its request's title. Both changes
-- already hold the request's row (the request, then its clock: the lock order of every change).
-- The BEFORE trigger above turns the 0 into the next number.
CREATE FUNCTION sla_metric_touch_exemption() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE sla_metric SET change_seq = 0 WHERE request_id = OLD.request_id;
    ELSE
        UPDATE sla_metric SET change_seq = 0 WHERE request_id = NEW.request_id;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION sla_metric_touch_request() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sla_metric SET change_seq = 0 WHERE request_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER sla_metric_touch_exemption AFTER INSERT OR UPDATE OR DELETE ON sla_exemption
    FOR EACH ROW EXECUTE FUNCTION sla_metric_touch_exemption();
CREATE TRIGGER sla_metric_touch_title AFTER UPDATE OF title ON service_request
    FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title)
    EXECUTE FUNCTION sla_metric_touch_request();
"""


# The indexes over the listed clocks, each read alone (index-only) by the stamp of the views it
# serves: (name, key columns, INCLUDE besides change_seq). The first two come from 0023; the list's
# order index is new here (a database may hold an earlier form of it from a pre-release 0023).
KEPT_INDEXES = (
    ('ix_sla_metric_breach_list', ['request_id']),
    ('ix_sla_metric_breach_assignee', ['assignee_id', 'is_breached']),
)
ORDER_INDEX = 'ix_sla_metric_breach_order'


def upgrade():
    op.add_column('sla_metric', sa.Column('change_seq', sa.BigInteger(), nullable=True))
    op.execute(FUNCTIONS)
    for name, columns in KEPT_INDEXES:
        op.drop_index(name, table_name='sla_metric', postgresql_where=sa.text(LISTED))
        op.create_index(name, 'sla_metric', columns, postgresql_where=sa.text(LISTED),
                        postgresql_include=['change_seq'])
    op.execute(f'DROP INDEX IF EXISTS {ORDER_INDEX}')
    op.create_index(ORDER_INDEX, 'sla_metric', ['is_breached', 'request_id'], postgresql_where=sa.text(LISTED),
                    postgresql_include=[*ORDER_COLUMNS, 'change_seq'])


def downgrade():
    op.drop_index(ORDER_INDEX, table_name='sla_metric', postgresql_where=sa.text(LISTED))
    for name, columns in KEPT_INDEXES:
        op.drop_index(name, table_name='sla_metric', postgresql_where=sa.text(LISTED))
        op.create_index(name, 'sla_metric', columns, postgresql_where=sa.text(LISTED))
    op.execute('DROP TRIGGER sla_metric_touch_title ON service_request')
    op.execute('DROP TRIGGER sla_metric_touch_exemption ON sla_exemption')
    op.execute('DROP FUNCTION sla_metric_touch_request()')
    op.execute('DROP FUNCTION sla_metric_touch_exemption()')
    op.execute('DROP TRIGGER sla_metric_stamp ON sla_metric')
    op.execute('DROP FUNCTION sla_metric_stamp()')
    op.execute('DROP SEQUENCE sla_metric_change_seq')
    op.drop_column('sla_metric', 'change_seq')
