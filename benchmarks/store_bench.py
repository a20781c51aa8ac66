"""What the three parts of ``bench_feature_store.py`` share: the rows of its table, its worker
processes (which import the join's and the store's dependencies before anything is timed), its
log lines (with the machine's load), and the stores that its read and publish parts measure:
synthetic daily partitions published into a fresh store, with their SQLite catalog rows."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import workers

GROUP = "bench"
STORE_START = date(2025, 1, 1)


@dataclass
class Row:
    bench: str
    size: int
    step: str
    rows: int
    seconds: float
    peak_rss_mib: float
    extra_mib: float | None = None  # peak minus RSS just before the step
    ratio: str = ""
    check: str = ""
    detail: dict[str, float] = field(default_factory=dict)
    spread: str = ""  # fastest-slowest of the repeats (seconds), the machine is noisy

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 and self.rows else 0.0


def _spread(results: list[dict[str, Any]]) -> str:
    times = [r["seconds"] for r in results]
    if len(times) < 2:
        return ""
    digits = 1 if max(times) >= 10 else 3 if max(times) < 1 else 2
    return f"{min(times):.{digits}f}-{max(times):.{digits}f}"


# ---- worker plumbing ---------------------------------------------------------------------------
def _start_worker() -> None:
    """Every worker imports what any step uses before it is timed; prints go to stderr."""
    import duckdb  # noqa: F401
    import pyarrow.dataset  # noqa: F401

    import fti.pipelines.features  # noqa: F401
    import fti.pipelines.inference  # noqa: F401
    import fti.pipelines.training  # noqa: F401
    import fti.training.pit  # noqa: F401

    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def _in_worker(task: Callable[..., Any], *args: Any) -> Any:
    """Run ``task(*args)`` in a fresh spawned process (``_start_worker`` first) and return
    what it returns."""
    return workers._in_worker(task, *args, initializer=_start_worker)


def log(message: str) -> None:
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"[{datetime.now():%H:%M:%S} load {load}] {message}", file=sys.stderr, flush=True)


# ---- stores for read and publish ---------------------------------------------------------------
def _day_table(day: date, rows: int, seed: int) -> Any:
    """One partition: 10 columns (entity, feature_date, 6 floats, a count, a plan string)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed + day.toordinal())
    plans = np.array(["basic", "plus", "pro", "team"])
    return pa.table(
        {
            "entity": np.arange(rows, dtype=np.int64),
            "feature_date": pa.array([day] * rows, pa.date32()),
            **{f"f{i}": rng.standard_normal(rows) for i in range(6)},
            "n_events": rng.integers(0, 100, size=rows),
            "plan": pa.array(plans[rng.integers(0, len(plans), size=rows)], pa.string()),
        }
    )


def _new_store(folder: str) -> Path:
    from fti.store.registry_repo import init_store

    root = Path(folder)
    shutil.rmtree(root, ignore_errors=True)
    init_store(root / "store", str(root / "remote"))
    return root / "store"


def _publish_days(
    store: str, first: int, days: int, rows: int, seed: int, with_record: bool = False
) -> dict[str, Any]:
    from fti.store.versions import FeatureStore

    partitions = {
        STORE_START + timedelta(days=i): _day_table(STORE_START + timedelta(days=i), rows, seed)
        for i in range(first, first + days)
    }
    fs = FeatureStore(Path(store))
    record = _catalog_record(fs, partitions) if with_record else None
    clock = time.perf_counter()
    published = fs.publish(GROUP, partitions, f"bench {days} day(s)", record=record)
    return {"version": published.version, "seconds": time.perf_counter() - clock}


def _cache_files(store: str, group: str, version: int) -> list[str]:
    """The version's Parquet files in the DVC cache, from its .dvc file and .dir manifest."""
    import subprocess

    import yaml

    root = Path(store)
    text = subprocess.run(
        ["git", "show", f"{group}/v{version}:data/{group}.dvc"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    md5 = yaml.safe_load(text)["outs"][0]["md5"]  # "<hash>.dir"
    cache = root / ".dvc" / "cache" / "files" / "md5"
    manifest = json.loads((cache / md5[:2] / md5[2:]).read_text())
    return [
        str(cache / e["md5"][:2] / e["md5"][2:])
        for e in sorted(manifest, key=lambda e: e["relpath"])
        if e["relpath"].endswith(".parquet")
    ]


def _dvc_modules(folder: str, seed: int) -> list[str]:
    """Modules that a first publish and read import lazily (DVC, networkx, ...)."""
    from fti.db.migrate import upgrade
    from fti.store.versions import FeatureStore

    before = set(sys.modules)
    store = _new_store(folder)
    upgrade(_catalog_url(str(store)))
    _publish_days(str(store), 0, 1, 10, seed, with_record=True)
    published = _publish_days(str(store), 1, 1, 10, seed, with_record=True)  # a 2nd version
    FeatureStore(store).read(GROUP, published["version"])
    shutil.rmtree(folder, ignore_errors=True)
    return sorted(set(sys.modules) - before)


def _warm(modules: list[str]) -> None:
    """Import ``modules`` now, so a timed step does not pay one-time imports."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - some are private submodules; best effort
            pass


def _catalog_url(store: str) -> str:
    return f"sqlite:///{Path(store).parent / 'fti.db'}"


def _catalog_record(store: Any, partitions: dict[date, Any]) -> Callable[[Any], None]:
    """The ``record`` step of ``fti.pipelines.features.publish_group``: the version's catalog row."""
    from fti.db.engine import session_scope
    from fti.store.catalog import record_version
    from fti.store.versions import read_partition_in_work_tree

    def record(published: Any) -> None:
        with session_scope(_catalog_url(str(store.path)), write=True) as session:
            record_version(
                session,
                published,
                partitions,
                "bench",
                lambda day: read_partition_in_work_tree(store, GROUP, day),
            )

    return record
