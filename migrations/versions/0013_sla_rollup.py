"""SLA report rollups: targets met and breaches per UTC day, kept exact by a change log the database writes

Revision ID: 0013_sla_rollup
Revises: 0012_list_at_scale
Create Date: 2026-12-03 02:40:00

`sla_rollup_target` holds, per day a clock started, category and priority, how many response and
resolution targets were decided and met (`sla_rollup_agent` the same per assignee); `sla_rollup_breach`, per day a breach was
recorded, category and priority, the breaches. Triggers write the day of every change that moves
a figure (a target decided, a breach recorded, a request recategorised or reassigned, a clock
added or deleted) into `sla_rollup_dirty`, in the same transaction as the change. Reports add the
rollup rows of clean days to a live count of the dirty days and of the window's partial first
day and today, so they are exact at every moment; the `refresh-sla-rollup` job recounts the dirty
days every few minutes. The rollups are filled here from the existing clocks.
"""
from alembic import op
import sqlalchemy as sa

revision = '0013_sla_rollup'
down_revision = '0012_list_at_scale'
branch_labels = None
depends_on = None


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

FILL = """
INSERT INTO sla_rollup_target (day, category, priority, response_met, response_decided,
                               resolution_met, resolution_decided)
SELECT (m.created_at AT TIME ZONE 'UTC')::date, sr.category, sr.priority,
       count(*) FILTER (WHERE m.response_sla_met), count(m.response_sla_met),
       count(*) FILTER (WHERE m.resolution_sla_met), count(m.resolution_sla_met)
  FROM sla_metric m JOIN service_request sr ON sr.id = m.request_id
 WHERE m.response_sla_met IS NOT NULL OR m.resolution_sla_met IS NOT NULL
 GROUP BY 1, 2, 3;

INSERT INTO sla_rollup_agent (day, assignee_id, response_met, response_decided, resolution_met, resolution_decided)
SELECT (m.created_at AT TIME ZONE 'UTC')::date, sr.assignee_id,
       count(*) FILTER (WHERE m.response_sla_met), count(m.response_sla_met),
       count(*) FILTER (WHERE m.resolution_sla_met), count(m.resolution_sla_met)
  FROM sla_metric m JOIN service_request sr ON sr.id = m.request_id
 WHERE m.response_sla_met IS NOT NULL OR m.resolution_sla_met IS NOT NULL
 GROUP BY 1, 2;

INSERT INTO sla_rollup_breach (day, category, priority, response_breaches, resolution_breaches)
SELECT b.day, sr.category, sr.priority, count(*) FILTER (WHERE b.target = 'response'),
       count(*) FILTER (WHERE b.target = 'resolution')
  FROM (SELECT request_id, (response_breached_at AT TIME ZONE 'UTC')::date AS day, 'response' AS target
          FROM sla_metric WHERE response_breached_at IS NOT NULL
        UNION ALL
        SELECT request_id, (resolution_breached_at AT TIME ZONE 'UTC')::date, 'resolution'
          FROM sla_metric WHERE resolution_breached_at IS NOT NULL) b
  JOIN service_request sr ON sr.id = b.request_id
 GROUP BY 1, 2, 3;
"""


def upgrade():
    op.create_table('sla_rollup_target',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('priority', sa.String(length=20), nullable=False),
    sa.Column('response_met', sa.Integer(), nullable=False),
    sa.Column('response_decided', sa.Integer(), nullable=False),
    sa.Column('resolution_met', sa.Integer(), nullable=False),
    sa.Column('resolution_decided', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_rollup_target'))
    )
    op.create_index('ix_sla_rollup_target_day', 'sla_rollup_target', ['day'])
    op.create_table('sla_rollup_agent',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('response_met', sa.Integer(), nullable=False),
    sa.Column('response_decided', sa.Integer(), nullable=False),
    sa.Column('resolution_met', sa.Integer(), nullable=False),
    sa.Column('resolution_decided', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_rollup_agent'))
    )
    op.create_index('ix_sla_rollup_agent_day', 'sla_rollup_agent', ['day'])
    op.create_table('sla_rollup_breach',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('priority', sa.String(length=20), nullable=False),
    sa.Column('response_breaches', sa.Integer(), nullable=False),
    sa.Column('resolution_breaches', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_rollup_breach'))
    )
    op.create_index('ix_sla_rollup_breach_day', 'sla_rollup_breach', ['day'])
    op.create_table('sla_rollup_dirty',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_rollup_dirty'))
    )
    op.create_index('ix_sla_rollup_dirty_day', 'sla_rollup_dirty', ['day'])
    # The live part of a report reads the clocks of a few days by start time.
    op.create_index('ix_sla_metric_created_at', 'sla_metric', ['created_at'])
    op.execute(FILL)
    op.execute(MARK_FUNCTIONS)


def downgrade():
    op.execute("DROP TRIGGER sla_rollup_request_moved ON service_request")
    op.execute("DROP TRIGGER sla_rollup_metric_changed ON sla_metric")
    op.execute("DROP TRIGGER sla_rollup_metric_added_or_removed ON sla_metric")
    op.execute("DROP FUNCTION sla_rollup_mark_request()")
    op.execute("DROP FUNCTION sla_rollup_mark_metric()")
    op.drop_index('ix_sla_metric_created_at', table_name='sla_metric')
    op.drop_index('ix_sla_rollup_dirty_day', table_name='sla_rollup_dirty')
    op.drop_table('sla_rollup_dirty')
    op.drop_index('ix_sla_rollup_breach_day', table_name='sla_rollup_breach')
    op.drop_table('sla_rollup_breach')
    op.drop_index('ix_sla_rollup_agent_day', table_name='sla_rollup_agent')
    op.drop_table('sla_rollup_agent')
    op.drop_index('ix_sla_rollup_target_day', table_name='sla_rollup_target')
    op.drop_table('sla_rollup_target')
