"""Job functions for the worker tests (importable by real worker processes from the project root)."""

from __future__ import annotations

import time


def nap(seconds: float) -> float:
    """Sleep a moment (so a pool's workers overlap); returns how long."""
    time.sleep(seconds)
    return seconds


def fail(message: str) -> None:
    """Always fail, with a message a test can find in the failed registry."""
    raise RuntimeError(message)


def stall_first_time(marker: str) -> str:
    """The first run leaves a marker and hangs (to be killed); a retry finds the marker and finishes."""
    from pathlib import Path

    path = Path(marker)
    if not path.exists():
        path.write_text("started")
        time.sleep(120)
    return "finished on a retry"


def fail_and_record(path: str) -> None:
    """Note the time of this attempt in `path`, then fail (to watch the retry waits)."""
    with open(path, "a") as out:
        out.write(f"{time.time()}\n")
    raise RuntimeError("still failing")
