"""What the benchmarks share: settings, the work folder, and measuring a step in a worker process
(its time, its peak memory and what the step itself added to it, a cProfile of it).

Each measured step runs in a fresh spawned worker so its peak RSS is its own.
"""

from __future__ import annotations

import gc
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

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / "params.yaml"
WORK = REPO / "benchmarks" / ".work"  # git-ignored


def workdir(path: Path) -> Path:
    """A benchmark's work folder (``--workdir``), absolute and created."""
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _settings(home: str, db_url: str | None = None) -> Any:
    from fti.settings import Settings

    values: dict[str, Any] = {"home": home, "params_file": str(PARAMS_FILE)}
    if db_url:
        values["db_url"] = db_url
    return Settings(**values)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak() -> float:
    """Reset this process's RSS high-water mark to the current RSS (Linux >= 4.0); return it."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass  # then the peak also covers loading the inputs
    return _rss_mib()


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


def _timed(step: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """(result, seconds, peak RSS MiB, extra MiB over the RSS just before) of ``step()``."""
    before = _reset_peak()
    clock = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - clock
    peak = _peak_rss_mib()
    return result, seconds, peak, peak - before


def _cprofile(task: Callable[[], Any], top: int, order: str = "tottime") -> str:
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    task()
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(order)
    stats.print_stats(top)
    return "\n".join(line for line in text.getvalue().splitlines() if line.strip())


def _baseline() -> int:
    return 0


def _in_worker(
    task: Callable[..., Any], *args: Any, initializer: Callable[[], None] = _start_worker
) -> Any:
    """Run ``task(*args)`` in a fresh spawned process and return what it returns; the process
    runs ``initializer`` first (what it imports before anything is timed)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=initializer) as pool:
        return pool.submit(task, *args).result()


def _measure(task: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    return _in_worker(_measured, task, *args)


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)
