"""Every query the export pages and jobs add can use an index (EXPLAIN with sequential scans priced out)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from portal.extensions import db
from portal.models import Export
from portal.models._time import utcnow
from portal.services.reports import _RECOUNT_SQL


def test_export_queries_use_their_indexes(ctx):
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql

    def explain(stmt) -> str:
        compiled = stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(db.session.execute(text(f"EXPLAIN {compiled}")).scalars())

    mine = explain(select(Export).where(Export.owner_id == 1, Export.created_at >= utcnow() - timedelta(days=7))
                   .order_by(Export.created_at.desc(), Export.id.desc()).limit(100))
    assert "ix_export_owner_created" in mine and "Seq Scan" not in mine, mine
    expired = explain(select(Export.id).where(Export.expires_at < utcnow()))
    assert "ix_export_expires_at" in expired and "Seq Scan" not in expired, expired
    db.session.rollback()


def test_trend_recount_reads_each_count_through_an_index(ctx):
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    now = utcnow()
    plan = "\n".join(db.session.execute(text("EXPLAIN " + _RECOUNT_SQL.text),
                                        {"start": now - timedelta(days=3), "end": now, "now": now}).scalars())
    db.session.rollback()
    # Which index serves a range depends on the table's statistics (with every row in the range
    # the planner may read created_at through a wider index): what matters is that each count's
    # range is an index condition, never a filter over a scan.
    conditions = [line for line in plan.splitlines() if "Index Cond:" in line]
    for column in ("created_at", "resolved_at", "response_breached_at", "resolution_breached_at"):
        assert any(f"({column} >= " in line for line in conditions), plan
    assert "Seq Scan on service_request" not in plan and "Seq Scan on sla_metric" not in plan, plan
