"""SLA report rollups kept by delta rows the database writes: no dirty days, no live recount

Revision ID: 0024_sla_rollup_deltas
Revises: 0023_breach_list_filters
Create Date: 2026-12-03 16:10:00

Until now a change that moved a figure logged its day in `sla_rollup_dirty`, and reports counted
every dirty day live from the clocks until the `refresh-sla-rollup` job recounted it (every 5
minutes). On a busy helpdesk changes touch most recent days between two recounts: with 20 dirty
days in a 30-day window the compliance figure read 40,000 clocks (29 ms a statement, four such
statements on the manager's SLA page, at 1,000,000 requests).

Now a trigger on `sla_metric` adds, in the change's own transaction, a row with the change's
difference to each rollup it moves (minus the clock's old contribution, plus its new one; a
request recategorised, reprioritised or reassigned moves its clock's copies, migration 0023, and
so its figures). Rows are only ever inserted, never updated, so concurrent changes never wait on
one another's rollup rows. A report sums the rollup rows of its window's days (today included)
and counts live only the part-day at the window's start. The job folds each day's rows into one
per key every 5 minutes. The rollups are recounted here from the clocks (writes to `sla_metric`
wait meanwhile: seconds at 1,000,000 requests).
"""
from alembic import op
import sqlalchemy as sa

revision = '0024_sla_rollup_deltas'
down_revision = '0023_breach_list_filters'
branch_labels = None
depends_on = None

# Each rollup's difference is computed from a VALUES list of the clock's old row (sign -1) and new
# row (+1); the side that does not exist (INSERT, DELETE) has a NULL created_at and is left out.
CHANGES = """
    WITH c (s, created_at, category, priority, assignee_id, response_met, resolution_met,
            response_breached_at, resolution_breached_at) AS (
        SELECT * FROM (VALUES
            (-1, o.created_at, o.category, o.priority, o.assignee_id, o.response_sla_met,
             o.resolution_sla_met, o.response_breached_at, o.resolution_breached_at),
            (1, n.created_at, n.category, n.priority, n.assignee_id, n.response_sla_met,
             n.resolution_sla_met, n.response_breached_at, n.resolution_breached_at)) AS v
         WHERE v.column2 IS NOT NULL)"""

FUNCTION = """
CREATE FUNCTION sla_rollup_delta() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o sla_metric;   -- stays all NULL on INSERT
    n sla_metric;   -- stays all NULL on DELETE
BEGIN
    IF TG_OP <> 'INSERT' THEN o := OLD; END IF;
    IF TG_OP <> 'DELETE' THEN n := NEW; END IF;
""" + CHANGES + """
    INSERT INTO sla_rollup_target (day, category, priority, response_met, response_decided,
                                   resolution_met, resolution_decided)
    SELECT (created_at AT TIME ZONE 'UTC')::date, category, priority,
           sum(s * (response_met IS TRUE)::int), sum(s * (response_met IS NOT NULL)::int),
           sum(s * (resolution_met IS TRUE)::int), sum(s * (resolution_met IS NOT NULL)::int)
      FROM c GROUP BY 1, 2, 3
    HAVING sum(s * (response_met IS NOT NULL)::int) <> 0 OR sum(s * (resolution_met IS NOT NULL)::int) <> 0
        OR sum(s * (response_met IS TRUE)::int) <> 0 OR sum(s * (resolution_met IS TRUE)::int) <> 0;
""" + CHANGES + """
    INSERT INTO sla_rollup_agent (day, assignee_id, response_met, response_decided, resolution_met,
                                  resolution_decided)
    SELECT (created_at AT TIME ZONE 'UTC')::date, assignee_id,
           sum(s * (response_met IS TRUE)::int), sum(s * (response_met IS NOT NULL)::int),
           sum(s * (resolution_met IS TRUE)::int), sum(s * (resolution_met IS NOT NULL)::int)
      FROM c GROUP BY 1, 2
    HAVING sum(s * (response_met IS NOT NULL)::int) <> 0 OR sum(s * (resolution_met IS NOT NULL)::int) <> 0
        OR sum(s * (response_met IS TRUE)::int) <> 0 OR sum(s * (resolution_met IS TRUE)::int) <> 0;
""" + CHANGES + """
    INSERT INTO sla_rollup_breach (day, category, priority, response_breaches, resolution_breaches)
    SELECT day, category, priority, sum(r), sum(x)
      FROM (SELECT (response_breached_at AT TIME ZONE 'UTC')::date AS day, category, priority, s AS r, 0 AS x
              FROM c WHERE response_breached_at IS NOT NULL
            UNION ALL
            SELECT (resolution_breached_at AT TIME ZONE 'UTC')::date, category, priority, 0, s
              FROM c WHERE resolution_breached_at IS NOT NULL) b
     GROUP BY 1, 2, 3
    HAVING sum(r) <> 0 OR sum(x) <> 0;
    RETURN NULL;
END $$;

CREATE TRIGGER sla_rollup_clock_added_or_removed AFTER INSERT OR DELETE ON sla_metric
    FOR EACH ROW EXECUTE FUNCTION sla_rollup_delta();
CREATE TRIGGER sla_rollup_clock_changed AFTER UPDATE ON sla_metric
    FOR EACH ROW WHEN (
        OLD.response_sla_met IS DISTINCT FROM NEW.response_sla_met
        OR OLD.resolution_sla_met IS DISTINCT FROM NEW.resolution_sla_met
        OR OLD.response_breached_at IS DISTINCT FROM NEW.response_breached_at
        OR OLD.resolution_breached_at IS DISTINCT FROM NEW.resolution_breached_at
        OR OLD.created_at IS DISTINCT FROM NEW.created_at
        OR OLD.category IS DISTINCT FROM NEW.category
        OR OLD.priority IS DISTINCT FROM NEW.priority
        OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id)
    EXECUTE FUNCTION sla_rollup_delta();
"""

REFILL = """
DELETE FROM sla_rollup_target;
DELETE FROM sla_rollup_agent;
DELETE FROM sla_rollup_breach;

INSERT INTO sla_rollup_target (day, category, priority, response_met, response_decided,
                               resolution_met, resolution_decided)
SELECT (created_at AT TIME ZONE 'UTC')::date, category, priority,
       count(*) FILTER (WHERE response_sla_met), count(response_sla_met),
       count(*) FILTER (WHERE resolution_sla_met), count(resolution_sla_met)
  FROM sla_metric
 WHERE response_sla_met IS NOT NULL OR resolution_sla_met IS NOT NULL
 GROUP BY 1, 2, 3;

INSERT INTO sla_rollup_agent (day, assignee_id, response_met, response_decided, resolution_met, resolution_decided)
SELECT (created_at AT TIME ZONE 'UTC')::date, assignee_id,
       count(*) FILTER (WHERE response_sla_met), count(response_sla_met),
       count(*) FILTER (WHERE resolution_sla_met), count(resolution_sla_met)
  FROM sla_metric
 WHERE response_sla_met IS NOT NULL OR resolution_sla_met IS NOT NULL
 GROUP BY 1, 2;

INSERT INTO sla_rollup_breach (day, category, priority, response_breaches, resolution_breaches)
SELECT day, category, priority, count(*) FILTER (WHERE target = 'response'),
       count(*) FILTER (WHERE target = 'resolution')
  FROM (SELECT (response_breached_at AT TIME ZONE 'UTC')::date AS day, category, priority, 'response' AS target
          FROM sla_metric WHERE response_breached_at IS NOT NULL
        UNION ALL
        SELECT (resolution_breached_at AT TIME ZONE 'UTC')::date, category, priority, 'resolution'
          FROM sla_metric WHERE resolution_breached_at IS NOT NULL) b
 GROUP BY 1, 2, 3;
"""

# 0013's change log, for the downgrade.
MARK_FUNCTIONS = """
CREATE FUNCTION sla_rollup_mark_metric() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO sla_rollup_dirty (day)
        SELECT DISTINCT d FROM unnest(ARRAY[
            (OLD.created_at AT TIME ZONE 'UTC')::date,
            (OLD.response_breached_at AT TIME ZONE 'UTC')::date,
            (OLD.resolution_breached_at AT TIME ZONE 'UTC')::date]) AS d
         WHERE d IS NOT NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO sla_rollup_dirty (day)
        SELECT DISTINCT d FROM unnest(ARRAY[
            (NEW.created_at AT TIME ZONE 'UTC')::date,
            (NEW.response_breached_at AT TIME ZONE 'UTC')::date,
            (NEW.resolution_breached_at AT TIME ZONE 'UTC')::date]) AS d
         WHERE d IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION sla_rollup_mark_request() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sla_rollup_dirty (day)
    SELECT DISTINCT d FROM sla_metric m, unnest(ARRAY[
        (m.created_at AT TIME ZONE 'UTC')::date,
        (m.response_breached_at AT TIME ZONE 'UTC')::date,
        (m.resolution_breached_at AT TIME ZONE 'UTC')::date]) AS d
     WHERE m.request_id = NEW.id AND d IS NOT NULL;
    RETURN NULL;
END $$;

CREATE TRIGGER sla_rollup_metric_added_or_removed AFTER INSERT OR DELETE ON sla_metric
    FOR EACH ROW EXECUTE FUNCTION sla_rollup_mark_metric();
CREATE TRIGGER sla_rollup_metric_changed AFTER UPDATE ON sla_metric
    FOR EACH ROW WHEN (
        OLD.response_sla_met IS DISTINCT FROM NEW.response_sla_met
        OR OLD.resolution_sla_met IS DISTINCT FROM NEW.resolution_sla_met
        OR OLD.response_breached_at IS DISTINCT FROM NEW.response_breached_at
        OR OLD.resolution_breached_at IS DISTINCT FROM NEW.resolution_breached_at
        OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION sla_rollup_mark_metric();
CREATE TRIGGER sla_rollup_request_moved AFTER UPDATE ON service_request
    FOR EACH ROW WHEN (
        OLD.category IS DISTINCT FROM NEW.category
        OR OLD.priority IS DISTINCT FROM NEW.priority
        OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id)
    EXECUTE FUNCTION sla_rollup_mark_request();
"""


def upgrade():
    # Changes wait until the new triggers are in place and the rollups recounted.
    op.execute('LOCK TABLE sla_metric IN SHARE ROW EXCLUSIVE MODE')
    op.execute('DROP TRIGGER sla_rollup_request_moved ON service_request')
    op.execute('DROP TRIGGER sla_rollup_metric_changed ON sla_metric')
    op.execute('DROP TRIGGER sla_rollup_metric_added_or_removed ON sla_metric')
    op.execute('DROP FUNCTION sla_rollup_mark_request()')
    op.execute('DROP FUNCTION sla_rollup_mark_metric()')
    op.drop_index('ix_sla_rollup_dirty_day', table_name='sla_rollup_dirty')
    op.drop_table('sla_rollup_dirty')
    op.execute(REFILL)
    op.execute(FUNCTION)


def downgrade():
    op.execute('LOCK TABLE sla_metric IN SHARE ROW EXCLUSIVE MODE')
    op.execute('DROP TRIGGER sla_rollup_clock_changed ON sla_metric')
    op.execute('DROP TRIGGER sla_rollup_clock_added_or_removed ON sla_metric')
    op.execute('DROP FUNCTION sla_rollup_delta()')
    op.create_table('sla_rollup_dirty',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_rollup_dirty'))
    )
    op.create_index('ix_sla_rollup_dirty_day', 'sla_rollup_dirty', ['day'])
    op.execute(REFILL)
    op.execute(MARK_FUNCTIONS)
