"""What the deployment tests share: the project's files, free ports, child processes, the health check script."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HEALTHCHECK = DEPLOY / "healthcheck.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(*procs: subprocess.Popen) -> None:
    """SIGTERM each process we started, then wait (kill one that does not stop in 30 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def healthcheck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run deploy/healthcheck.py as the container does (its own interpreter, no app)."""
    return subprocess.run([sys.executable, str(HEALTHCHECK), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def venv_path(env: dict[str, str]) -> dict[str, str]:
    """`env` with this interpreter's bin directory first on PATH (gunicorn, flask), as /opt/venv/bin in the image."""
    return {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of a Dockerfile: comments dropped, continuation lines joined."""
    lines: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        lines.append((keyword.upper(), rest.strip()))
        current = ""
    return lines


def redis_conf_directives(text: str) -> list[list[str]]:
    """The directives of a redis.conf, each split as Redis splits it (quoted "" kept as an empty string)."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        found.append([m.group(1) if m.group(1) is not None else m.group(2)
                      for m in re.finditer(r'"([^"]*)"|(\S+)', line)])
    return found
