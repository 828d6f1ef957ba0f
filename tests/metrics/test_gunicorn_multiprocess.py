"""Real gunicorn with two workers (and an RQ worker) sharing PROMETHEUS_MULTIPROC_DIR: counts add up."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.jobs.test_worker import ROOT, _env, _flask
from tests.metrics.conftest import Samples
from tests.polling import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own test server
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _pids(directory: Path, prefix: str) -> set[int]:
    return {int(m.group(1)) for p in directory.glob(f"{prefix}*.db") if (m := re.search(r"_(\d+)\.db$", p.name))}


@pytest.fixture()
def served(app, tmp_path):
    """gunicorn (2 workers) and one RQ worker, all counting into one fresh directory."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    port = _free_port()
    env = {**_env(app), "PROMETHEUS_MULTIPROC_DIR": str(directory), "DB_POOL_SIZE": "3", "LOG_DIR": "",
           "LOG_STDOUT": "false"}
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "--no-control-socket", "--bind", f"127.0.0.1:{port}",
                            "--workers", "2", "wsgi:app"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    worker = subprocess.Popen(_flask("jobs", "worker", "--queues", "default"), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def up():
        if web.poll() is not None:
            pytest.fail(f"gunicorn exited: {web.stderr.read()}")
        try:
            return _get(base + "/metrics", timeout=2)[0] == 200  # not /login: that one is counted below
        except OSError:
            return False

    wait_for(up, timeout=60, what="gunicorn to answer")
    try:
        yield base, directory, web
    finally:
        for proc in (web, worker):
            proc.terminate()
        for proc in (web, worker):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _scrape(base: str) -> Samples:
    status, text = _get(base + "/metrics")
    assert status == 200, text
    return Samples(text)


def _logins(base: str, count: int) -> int:
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _: _get(base + "/login")[0], range(count)))
    assert statuses == [200] * count
    return count


def test_two_gunicorn_workers_add_up_and_survive_a_worker_restart(served):
    base, directory, web = served
    # Send until both workers have counted something.
    sent = 0
    deadline = time.monotonic() + 60
    while len(_pids(directory, "counter_")) < 2 and time.monotonic() < deadline:
        sent += _logins(base, 12)
    counting = _pids(directory, "counter_")
    assert len(counting) == 2, "both gunicorn workers should have answered"

    samples = _scrape(base)
    assert samples.value("app_requests_total", method="GET", endpoint="/login", status="200") == sent
    assert samples.value("app_request_duration_seconds_count", method="GET", endpoint="/login") == sent
    web_pids = {lab["pid"] for lab in samples.matching("process_resident_memory_bytes", role="web")}
    assert {str(pid) for pid in counting} <= web_pids
    assert all(samples.value("process_resident_memory_bytes", pid=pid) > 0 for pid in web_pids)

    # An RQ worker sharing the directory shows up beside them.
    wait_for(lambda: _scrape(base).matching("process_resident_memory_bytes", role="worker"),
             timeout=60, what="the RQ worker")

    # A worker killed outright: its counts stay, gunicorn's replacement adds to them.
    victim = sorted(counting)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: str(victim) not in {lab["pid"] for lab in _scrape(base).matching("process_cpu_seconds_total")},
             timeout=60, what="the dead worker to leave the process figures")
    more = _logins(base, 10)
    samples = _scrape(base)
    assert samples.value("app_requests_total", method="GET", endpoint="/login", status="200") == sent + more
    assert web.poll() is None
    assert samples.value("db_pool_size") <= 2 * 3  # only live processes' pools are added up


def test_a_worker_only_host_serves_its_process_figures_and_nothing_cluster_wide(app, ctx, tmp_path):
    from rq.job import Job

    from portal.queueing import push, redis_connection

    jobs = [push("tests.jobs.sample_jobs.nap", 0, queue="default") for _ in range(3)]
    directory = tmp_path / "prometheus"
    port = _free_port()
    env = {**_env(app), "PROMETHEUS_MULTIPROC_DIR": str(directory), "LOG_DIR": "", "LOG_STDOUT": "false"}
    worker = subprocess.Popen(_flask("jobs", "worker", "--queues", "default"), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exporter = subprocess.Popen(_flask("metrics", "serve", "--port", str(port)), cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"

    def worker_figures():
        if exporter.poll() is not None:
            pytest.fail(f"flask metrics serve exited: {exporter.stderr.read()}")
        try:
            samples = _scrape(base)
        except OSError:
            return None
        return samples if samples.matching("process_resident_memory_bytes", role="worker") else None

    try:
        samples = wait_for(worker_figures, timeout=60, what="the worker's process figures")
        assert samples.value("process_resident_memory_bytes", role="worker") > 0
        assert not {"jobs_total", "queue_depth", "sla_breaches_total", "service_requests_active"} & samples.names
        assert _get(base + "/other")[0] == 404
        wait_for(lambda: all(Job.fetch(j.id, connection=redis_connection()).get_status() == "finished" for j in jobs),
                 timeout=60, what="the jobs to run")
        # Each job ran in its own forked work horse; none of them left a file (they count in Redis).
        assert _pids(directory, "") == {worker.pid, exporter.pid}

        busy = subprocess.run(_flask("metrics", "clear"), cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
        assert busy.returncode != 0 and "stop them first" in busy.stderr
    finally:
        for proc in (worker, exporter):
            proc.terminate()
            proc.wait(timeout=30)
    cleared = subprocess.run(_flask("metrics", "clear"), cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60)
    assert cleared.returncode == 0, cleared.stderr
    assert list(directory.glob("*.db")) == []
