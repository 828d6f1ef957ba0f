"""How parallel test workers (pytest-xdist) find a Redis database of their own (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.conftest import REDIS_DATABASES, _redis_db_for, redis_base_db, with_redis_db


@pytest.mark.parametrize("url, base", [
    ("redis://127.0.0.1:6379/10", 10),
    ("redis://:secret@127.0.0.1:6379/3", 3),
    ("redis://127.0.0.1:6379", 0),
    ("redis://127.0.0.1:6379?db=7", 7),
    ("unix:///work/instance/redis/redis.sock?db=12", 12),
    ("unix:///work/instance/redis/redis.sock", 0),
])
def test_redis_base_db_reads_the_database_of_any_url_form(url, base):
    assert redis_base_db(url) == base


def test_redis_base_db_without_a_url_is_test_redis_db_or_1(monkeypatch):
    monkeypatch.delenv("TEST_REDIS_DB", raising=False)
    assert redis_base_db() == 1
    monkeypatch.setenv("TEST_REDIS_DB", "10")
    assert redis_base_db() == 10


@pytest.mark.parametrize("url, db, expected", [
    ("redis://127.0.0.1:6379/10", 11, "redis://127.0.0.1:6379/11"),
    ("redis://:secret@127.0.0.1:6379", 2, "redis://:secret@127.0.0.1:6379/2"),
    ("redis://127.0.0.1:6379/?db=4", 5, "redis://127.0.0.1:6379/?db=5"),
    ("unix:///tmp/r.sock?db=1", 3, "unix:///tmp/r.sock?db=3"),
    ("unix:///tmp/r.sock", 2, "unix:///tmp/r.sock?db=2"),
])
def test_with_redis_db_points_the_url_at_another_database(url, db, expected):
    assert with_redis_db(url, db) == expected
    assert redis_base_db(with_redis_db(url, db)) == db


def test_each_worker_adds_its_index_to_the_base_database():
    assert _redis_db_for(None, 10) == 10  # a serial run: the configured database itself
    assert [_redis_db_for(f"gw{n}", 10) for n in range(3)] == [10, 11, 12]


def test_a_worker_past_the_last_redis_database_is_refused_with_the_limit():
    assert _redis_db_for("gw5", 10) == REDIS_DATABASES - 1
    with pytest.raises(pytest.UsageError, match="at most 6 workers"):
        _redis_db_for("gw6", 10)
