"""The request list's "Due soonest" sort: when each request's next running SLA target falls due, kept by the database

Revision ID: 0020_due_soonest
Revises: 0019_request_tally
Create Date: 2026-12-03 10:30:00

`service_request.due_sort` is the earliest due time of the request's running SLA targets (the
response target until the first response, the resolution target until it is resolved), or
9999-12-31 when none runs (no SLA, paused, exempt without end, or done), so the sort puts those
last without NULLs in a keyset cursor. A trigger on sla_metric keeps it in the same transaction as
every change of a due time or of a target being done; every change of a clock locks its request
first (services/requests/commands.py, sla_admin.rebuild_open_clocks), so the trigger's update of
the request row adds no new lock order. Indexes: the open work (the agents' queue, where the sort
is the default) and all requests, each in (due_sort, id) order. Filled here from the clocks.
"""
from alembic import op
import sqlalchemy as sa

revision = '0020_due_soonest'
down_revision = '0019_request_tally'
branch_labels = None
depends_on = None

NONE_DUE = "'9999-12-31 00:00:00+00'::timestamptz"
OPEN = "status IN ('open', 'in_progress', 'waiting_on_customer')"
# The earliest due time of the running targets; LEAST ignores NULLs.
NEXT_DUE = ("coalesce(LEAST(CASE WHEN {m}.responded_at IS NULL THEN {m}.response_due_at END, "
            "CASE WHEN {m}.resolved_at IS NULL THEN {m}.resolution_due_at END), " + NONE_DUE + ")")

FUNCTION = f"""
CREATE FUNCTION service_request_due_sort() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE service_request SET due_sort = {NEXT_DUE.format(m='NEW')}
     WHERE id = NEW.request_id AND due_sort IS DISTINCT FROM {NEXT_DUE.format(m='NEW')};
    RETURN NULL;
END $$;

CREATE TRIGGER service_request_due_sort
    AFTER INSERT OR UPDATE OF response_due_at, resolution_due_at, responded_at, resolved_at ON sla_metric
    FOR EACH ROW EXECUTE FUNCTION service_request_due_sort();
"""

FILL = f"""
UPDATE service_request sr SET due_sort = {NEXT_DUE.format(m='m')}
  FROM sla_metric m
 WHERE m.request_id = sr.id AND {NEXT_DUE.format(m='m')} <> {NONE_DUE}
"""


def upgrade():
    op.add_column('service_request', sa.Column('due_sort', sa.DateTime(timezone=True), nullable=False,
                                               server_default=sa.text(NONE_DUE)))
    op.execute('LOCK TABLE sla_metric IN SHARE ROW EXCLUSIVE MODE')
    op.execute(FUNCTION)
    op.execute(FILL)
    op.create_index('ix_service_request_due', 'service_request', ['due_sort', 'id'])
    op.create_index('ix_service_request_open_due', 'service_request', ['due_sort', 'id'],
                    postgresql_where=sa.text(OPEN))


def downgrade():
    op.drop_index('ix_service_request_open_due', table_name='service_request')
    op.drop_index('ix_service_request_due', table_name='service_request')
    op.execute('DROP TRIGGER service_request_due_sort ON sla_metric')
    op.execute('DROP FUNCTION service_request_due_sort()')
    op.drop_column('service_request', 'due_sort')
