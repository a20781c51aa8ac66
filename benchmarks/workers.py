"""What every benchmark worker process shares: settings, its peak memory, timing one step.

Each measured step runs in a fresh spawned worker so its peak RSS is its own.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"


def _settings(home: str, db_url: str | None = None) -> Any:
    from fti.settings import Settings

    values: dict[str, Any] = {"home": home, "params_file": str(PARAMS_FILE)}
    if db_url:
        values["db_url"] = db_url
    return Settings(**values)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _start_worker() -> None:
    """Every worker imports fti before it is timed, and prints (DVC's chatter) to stderr."""
    import fti.pipelines.features  # noqa: F401
    import fti.pipelines.inference  # noqa: F401
    import fti.pipelines.training  # noqa: F401

    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def _measured(step: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    """Time ``step(*args)``; return (result, seconds, peak RSS MiB of this process)."""
    clock = time.perf_counter()
    result = step(*args)
    return result, time.perf_counter() - clock, _peak_rss_mib()


def _baseline() -> int:
    return 0


def _in_worker(task: Callable[..., Any], *args: Any) -> Any:
    """Run ``task(*args)`` in a fresh spawned process and return what it returns."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker) as pool:
        return pool.submit(task, *args).result()


def _measure(task: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    return _in_worker(_measured, task, *args)


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)
