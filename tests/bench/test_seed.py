"""bench/seed.py at a small size: the data every benchmark stands on must match what the portal keeps.

The seed writes rows with COPY and its triggers off; whatever a trigger or the app would maintain
(the clocks' copies of their request, the request tally, the rollups) it must write itself. A
schema change that adds such a fact breaks the seed here, not an hour into a 1,000,000-row run.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import _dsn, database_beside

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def seeded(service_urls):
    sys.path.insert(0, str(BENCH))
    try:
        import seed as seeding
    finally:
        sys.path.remove(str(BENCH))
    database_url, redis_url = service_urls
    url = database_beside(database_url, f"{make_url(database_url).database}_seed")
    seeding.empty_database(url)
    seeding.migrate(url, redis_url)
    args = seeding.parse_args(["--requests", "3000", "--open", "400", "--chunk", "1000"])
    result = seeding.seed(url, args, datetime.now(UTC).replace(microsecond=0))
    conn = psycopg2.connect(_dsn(url))
    yield conn, result
    conn.close()


def _one(conn, sql: str):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()


def test_every_clock_carries_its_requests_priority_category_and_assignee(seeded):
    conn, result = seeded
    assert result["counts"]["service_request"] == 3000
    clocks, differ = _one(conn, """
        SELECT count(*), count(*) FILTER (WHERE m.priority IS DISTINCT FROM r.priority
                                            OR m.category IS DISTINCT FROM r.category
                                            OR m.assignee_id IS DISTINCT FROM r.assignee_id)
        FROM sla_metric m JOIN service_request r ON r.id = m.request_id""")
    assert (clocks, differ) == (3000, 0)


def test_the_request_tally_counts_what_is_there(seeded):
    conn, _ = seeded
    tallied, counted = _one(conn, """
        SELECT (SELECT coalesce(sum(n), 0) FROM request_tally), (SELECT count(*) FROM service_request)""")
    assert tallied == counted == 3000


def test_the_seed_has_open_work_breaches_and_history(seeded):
    conn, result = seeded
    open_, breached = _one(conn, """
        SELECT count(*) FILTER (WHERE status IN ('open', 'in_progress', 'waiting_on_customer')),
               (SELECT count(*) FROM sla_metric WHERE is_breached)
        FROM service_request""")
    assert open_ == 400
    assert breached > 0
    assert result["counts"]["comment"] > 0 and result["counts"]["audit_log"] > 0
    assert _one(conn, "SELECT count(*) FROM sla_rollup_target")[0] > 0
