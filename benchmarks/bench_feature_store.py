"""Point-in-time join, version read and publish costs of fti's feature store, against baselines.

Three sub-benchmarks, chosen with ``--only pit,read,publish`` (default: all three):

1. ``pit``: one synthetic data set per size N (``--pit-sizes``, label rows). It has N/10
   entities, 10-30 feature rows per entity (~2N rows), an entity id, a tz-aware UTC time and 4
   float64 feature columns. Labels fall at random times over the same 90 days, plus 5 days on
   either side, so some labels have no earlier feature row. Both frames are shuffled. Times are
   whole microseconds (DuckDB's resolution), so ties within an entity are practically absent.
   These joins run side by side on the same data, each in a fresh worker that first loads the
   two frames from Parquet (not timed):

   - fti ``point_in_time_join``, with no ttl and with ttl = 7 days;
   - the fair pandas baseline: sort each side once by time (counted), then
     ``pd.merge_asof(by=entity, direction="backward")``, with and without ``tolerance``. It
     does not restore the label order; fti does;
   - DuckDB ``ASOF LEFT JOIN`` on the same pandas frames (``SELECT l.*, f.* ... ON
     l.entity = f.entity AND l.t >= f.ft``), returning pandas (``.df()``) and, for
     information, Arrow.

   ratio = seconds / the fastest method at that size. check = the worker compares
   ``--pit-sample`` label rows with a brute-force numpy oracle that was built with the data
   (newest feature row of the entity at or before the label time, within the ttl for the ttl
   methods). It also checks every output row: the count of matched rows (the same for all no-ttl
   methods, and for both ttl methods), no feature time after the label time, and, for fti, that
   the label order and index are kept.
2. ``read``: a version of ``--read-rows`` rows over ``--read-days`` daily partitions (10
   columns) is published with ``FeatureStore.publish`` into a temp store. Then 3 of its 10
   columns are read with ``FeatureStore.scanner(...).to_table()`` and with streaming
   ``.to_batches()``. The bare baseline is ``pyarrow.dataset.dataset(<the same files in the
   DVC cache>, format="parquet")`` with the same columns and batch size. ratio = fti / bare
   (fti overhead). ``FeatureStore(path)`` plus its first ``scanner`` (the listing: the tag's
   ``.dvc`` file from git, its ``.dir`` manifest from the DVC cache) is timed on its own, in a
   fresh process and again in a process that has listed once, next to the bare
   ``ds.dataset(files)`` call.
3. ``publish``: for each N in ``--history``, a fresh store gets N daily partitions of
   ``--publish-rows`` rows x 10 columns (info), each version with its catalog row in a SQLite
   catalog. ``--history-shape nightly`` (default) publishes them as N versions of one day
   each, as nightly runs make them; ``bulk`` as one version. Then ONE more day is timed in
   two ways: ``FeatureStore.publish`` alone,
   split into its own steps by wrapping the store's git/DVC calls, and the
   ``publish_group`` path: the same publish with ``record_version`` writing the catalog
   row (statistics of the new partition merged with the kept ones), as
   ``fti.pipelines.features.publish_group`` does. ratio = seconds / seconds at the smallest N. These
   workers first import what a publish imports lazily (DVC, networkx, ...). One more run per
   N in a plain fresh process shows what a real CLI/Airflow task pays on top of that.

Every measured step runs in a fresh worker process (``spawn``). It times the call with
``time.perf_counter`` and reports its own peak RSS (``resource.getrusage(RUSAGE_SELF)
.ru_maxrss``). Just before the call it resets the kernel's high-water mark
(``/proc/self/clear_refs``, "5"), so "peak" is the peak during the step with the inputs already
loaded, and "+MiB" is peak minus the RSS just before the step: what the step itself needed.
git/dvc child processes are not counted. Each step runs ``--repeat`` times, alternating the
methods. The table shows the median seconds, the fastest and slowest run, and the largest
peak.

``--profile`` also profiles fti's join at the largest PIT size in one more worker. A tracer
stamps each statement of ``point_in_time_join``, and a sampler process reads the worker's RSS
every 2 ms, which gives seconds and peak RSS per statement. cProfile's top functions come from a
second run, and the read and publish paths get a cProfile too.

Run it from the repository root (all data goes under ``--workdir``)::

    .venv/bin/python benchmarks/bench_feature_store.py                  # all, default sizes
    .venv/bin/python benchmarks/bench_feature_store.py --only pit --pit-sizes 1e5 --repeat 1

Not run by pytest.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PIT_START = datetime(2026, 1, 1, tzinfo=UTC)
PIT_SPAN_DAYS = 90
PIT_MARGIN_DAYS = 5
PIT_TTL = timedelta(days=7)
PIT_FEATURES = ["f0", "f1", "f2", "f3"]
GROUP = "bench"
STORE_START = date(2025, 1, 1)
READ_COLUMNS = ["entity", "f0", "f3"]  # 3 of the 10 columns
BATCH_SIZE = 65_536  # FeatureStore.scanner's default; the bare scan gets the same


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


# ---- worker plumbing ---------------------------------------------------------------------------
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
    """Every worker imports what any step uses before it is timed; prints go to stderr."""
    import duckdb  # noqa: F401
    import pyarrow.dataset  # noqa: F401

    import fti.pipelines.features  # noqa: F401
    import fti.training.pit  # noqa: F401

    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def _in_worker(task: Callable[..., Any], *args: Any) -> Any:
    """Run ``task(*args)`` in a fresh spawned process and return what it returns."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker) as pool:
        return pool.submit(task, *args).result()


def _timed(step: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """(result, seconds, peak RSS MiB, extra MiB over the RSS just before) of ``step()``."""
    before = _reset_peak()
    clock = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - clock
    peak = _peak_rss_mib()
    return result, seconds, peak, peak - before


def _baseline() -> tuple[float, float]:
    return _peak_rss_mib(), _rss_mib()


def log(message: str) -> None:
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"[{datetime.now():%H:%M:%S} load {load}] {message}", file=sys.stderr, flush=True)


# ---- 1. point-in-time join ---------------------------------------------------------------------
def _pit_generate(folder: str, n: int, sample: int, seed: int) -> dict[str, int]:
    """Write labels/features Parquet files and a brute-force oracle for ``sample`` label rows."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    entities = max(1, n // 10)
    counts = rng.integers(10, 31, size=entities)
    f_entity = np.repeat(np.arange(entities, dtype=np.int64), counts)
    start_us = int(pd.Timestamp(PIT_START).value // 1000)
    span_us = PIT_SPAN_DAYS * 86_400 * 10**6
    f_time = start_us + rng.integers(0, span_us, size=len(f_entity))  # microseconds
    f_values = {c: rng.standard_normal(len(f_entity)) for c in PIT_FEATURES}
    margin_us = PIT_MARGIN_DAYS * 86_400 * 10**6
    l_entity = rng.integers(0, entities, size=n).astype(np.int64)
    l_time = start_us - margin_us + rng.integers(0, span_us + 2 * margin_us, size=n)

    # Oracle first, from the unshuffled arrays: sort by (entity, time), search each label.
    order = np.lexsort((f_time, f_entity))
    e_sorted, t_sorted, v_sorted = f_entity[order], f_time[order], f_values["f0"][order]
    ids = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    lo = np.searchsorted(e_sorted, l_entity[ids], side="left")
    hi = np.searchsorted(e_sorted, l_entity[ids], side="right")
    oracle_ft = np.full(len(ids), -1, dtype=np.int64)
    oracle_f0 = np.full(len(ids), np.nan)
    for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
        k = np.searchsorted(t_sorted[a:b], l_time[ids[i]], side="right") - 1
        if k >= 0:
            oracle_ft[i] = t_sorted[a + k] * 1000  # ns
            oracle_f0[i] = v_sorted[a + k]
    ttl_ok = (oracle_ft >= 0) & (
        l_time[ids] * 1000 - oracle_ft <= PIT_TTL // timedelta(microseconds=1) * 1000
    )
    np.savez(root / "oracle.npz", label_id=ids, ft=oracle_ft, f0=oracle_f0, ttl_ok=ttl_ok)

    shuffle = rng.permutation(len(f_entity))
    features = pa.table(
        {
            "entity": f_entity[shuffle],
            "ft": pa.array(f_time[shuffle] * 1000, pa.timestamp("ns", tz="UTC")),
            **{c: v[shuffle] for c, v in f_values.items()},
        }
    )
    pq.write_table(features, root / "features.parquet", compression="lz4")
    del features, f_values, shuffle, order, e_sorted, t_sorted, v_sorted
    shuffle = rng.permutation(n)
    labels = pa.table(
        {
            "label_id": np.arange(n, dtype=np.int64)[shuffle],
            "entity": l_entity[shuffle],
            "t": pa.array(l_time[shuffle] * 1000, pa.timestamp("ns", tz="UTC")),
            "label": rng.integers(0, 2, size=n).astype(np.int8),
        }
    )
    pq.write_table(labels, root / "labels.parquet", compression="lz4")
    return {"labels": n, "features": len(f_entity), "entities": entities, "sample": len(ids)}


def _pit_load(folder: str) -> tuple[Any, Any]:
    import pandas as pd

    labels = pd.read_parquet(Path(folder) / "labels.parquet")
    features = pd.read_parquet(Path(folder) / "features.parquet")
    return labels, features


def _pit_loaded(folder: str) -> tuple[float, float]:
    """Worker baseline for a size: peak and current RSS after loading the two frames."""
    frames = _pit_load(folder)
    gc.collect()
    return _peak_rss_mib(), _rss_mib() + 0 * len(frames)


PIT_METHODS = [
    "fti point_in_time_join",
    "pandas merge_asof, sorted (baseline)",
    "duckdb ASOF JOIN -> pandas",
    "duckdb ASOF JOIN -> Arrow (info)",
    "fti point_in_time_join ttl=7d",
    "pandas merge_asof, sorted, tolerance=7d",
]
ORDER_KEEPING = {"fti point_in_time_join", "fti point_in_time_join ttl=7d"}
PIT_TTL_METHODS = {"fti point_in_time_join ttl=7d", "pandas merge_asof, sorted, tolerance=7d"}
DUCKDB_SQL = (
    "SELECT l.*, f.ft, {features} FROM labels l "
    "ASOF LEFT JOIN features f ON l.entity = f.entity AND l.t >= f.ft"
)


def _pit_join(method: str, labels: Any, features: Any) -> Any:
    import pandas as pd

    if method.startswith("fti"):
        from fti.training.pit import point_in_time_join

        ttl = PIT_TTL if method in PIT_TTL_METHODS else None
        return point_in_time_join(labels, features, "entity", "t", "ft", ttl=ttl)
    if method.startswith("pandas"):
        tolerance = pd.Timedelta(PIT_TTL) if method in PIT_TTL_METHODS else None
        left = labels.sort_values("t")
        right = features.sort_values("ft")
        return pd.merge_asof(
            left,
            right,
            left_on="t",
            right_on="ft",
            by="entity",
            direction="backward",
            tolerance=tolerance,
        )
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.register("labels", labels)
    connection.register("features", features)
    relation = connection.sql(DUCKDB_SQL.format(features=", ".join(f"f.{c}" for c in PIT_FEATURES)))
    result = relation.df() if method.endswith("pandas") else relation.to_arrow_table()
    connection.close()
    return result


def _pit_check(method: str, folder: str, labels: Any, out: Any) -> dict[str, Any]:
    """Compare the sampled rows with the oracle; count matches and later-than-label rows."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    oracle = np.load(Path(folder) / "oracle.npz")
    ids = oracle["label_id"]
    if isinstance(out, pa.Table):
        ft, t = out.column("ft"), out.column("t")
        matched = len(out) - ft.null_count
        later = int(pc.sum(pc.cast(pc.greater(ft, t), pa.int64())).as_py() or 0)
        sub = out.filter(pc.is_in(out.column("label_id"), pa.array(ids))).to_pandas()
    else:
        matched = int(out["ft"].notna().sum())
        later = int((out["ft"] > out["t"]).sum())
        sub = out.loc[out["label_id"].isin(ids), ["label_id", "ft", "f0"]]
    sub = sub.set_index("label_id").reindex(ids)
    times = pd.to_datetime(sub["ft"], utc=True).dt.as_unit("ns")
    naive = times.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    got_ft = np.where(times.isna(), -1, naive.view("int64"))
    want_ft = oracle["ft"].copy()
    want_f0 = oracle["f0"].copy()
    if method in PIT_TTL_METHODS:
        want_ft[~oracle["ttl_ok"]] = -1
        want_f0[~oracle["ttl_ok"]] = np.nan
    got_f0 = sub["f0"].to_numpy(dtype="float64")
    same = (got_ft == want_ft) & ((got_f0 == want_f0) | (np.isnan(got_f0) & np.isnan(want_f0)))
    result: dict[str, Any] = {
        "rows": len(out),
        "matched": matched,
        "later": later,
        "sample_ok": int(same.sum()),
        "sample": len(ids),
    }
    if method in ORDER_KEEPING:
        result["order_kept"] = bool(
            out.index.equals(labels.index)
            and np.array_equal(out["label_id"].to_numpy(), labels["label_id"].to_numpy())
        )
    return result


def _pit_run(folder: str, method: str) -> dict[str, Any]:
    labels, features = _pit_load(folder)
    out, seconds, peak, extra = _timed(lambda: _pit_join(method, labels, features))
    check = _pit_check(method, folder, labels, out)
    return {"seconds": seconds, "peak": peak, "extra": extra, **check}


def _pit_check_text(result: dict[str, Any], reference: dict[str, int]) -> str:
    parts = [f"sample {result['sample_ok']}/{result['sample']}"]
    key = "ttl" if result["ttl"] else "plain"
    parts.append(
        f"matched {result['matched']:,}"
        + ("" if result["matched"] == reference[key] else f" != {reference[key]:,}")
    )
    if result["later"]:
        parts.append(f"{result['later']} LATER rows")
    if "order_kept" in result:
        parts.append("order kept" if result["order_kept"] else "ORDER LOST")
    ok = (
        result["sample_ok"] == result["sample"]
        and result["matched"] == reference[key]
        and not result["later"]
        and result.get("order_kept", True)
        and result["rows"] == result["labels"]
    )
    return ("ok: " if ok else "FAIL: ") + ", ".join(parts)


def bench_pit(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for n in args.pit_sizes:
        folder = str(args.workdir / "pit" / str(n))
        shutil.rmtree(folder, ignore_errors=True)
        log(f"PIT N={n:,}: generating")
        info = _in_worker(_pit_generate, folder, n, args.pit_sample, args.seed)
        loaded_peak, loaded_rss = _in_worker(_pit_loaded, folder)
        log(
            f"PIT N={n:,}: {info['features']:,} feature rows, {info['entities']:,} entities; "
            f"loaded frames: RSS {loaded_rss:.0f} MiB"
        )
        rows.append(
            Row(
                "pit",
                n,
                f"worker after loading inputs ({info['features']:,} feature rows)",
                0,
                0.0,
                loaded_peak,
                check=f"RSS now {loaded_rss:.0f} MiB",
            )
        )
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in PIT_METHODS}
        for attempt in range(args.repeat):
            for method in PIT_METHODS:
                result = _in_worker(_pit_run, folder, method)
                result.update(ttl=method in PIT_TTL_METHODS, labels=n)
                runs[method].append(result)
                log(
                    f"PIT N={n:,} #{attempt + 1} {method}: {result['seconds']:.2f}s, "
                    f"peak {result['peak']:.0f} MiB (+{result['extra']:.0f})"
                )
        reference = {
            "plain": runs["fti point_in_time_join"][0]["matched"],
            "ttl": runs["fti point_in_time_join ttl=7d"][0]["matched"],
        }
        medians = {m: statistics.median(r["seconds"] for r in rs) for m, rs in runs.items()}
        fastest = min(medians.values())
        for method, results in runs.items():
            rows.append(
                Row(
                    "pit",
                    n,
                    method,
                    n,
                    medians[method],
                    max(r["peak"] for r in results),
                    max(r["extra"] for r in results),
                    f"{medians[method] / fastest:.2f}x",
                    "; ".join(sorted({_pit_check_text(r, reference) for r in results})),
                    spread=_spread(results),
                )
            )
    return rows


# ---- profiling of the join (--profile) ------------------------------------------------------------
SAMPLER = """
import signal, sys, time
pid, out = sys.argv[1], sys.argv[2]
samples = []
def stop(*_):
    with open(out, "w") as f:
        f.writelines(f"{t} {r}\\n" for t, r in samples)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
page = 4096 / 2**20
while True:
    try:
        with open(f"/proc/{pid}/statm") as s:
            samples.append((time.perf_counter(), int(s.read().split()[1]) * page))
    except OSError:
        stop()
    time.sleep(0.002)
"""


def _statement_lines(function: Callable[..., Any]) -> dict[int, tuple[int, str]]:
    """Map each line of ``function`` to (first line, source) of the simple statement holding it."""
    import ast
    import inspect
    import textwrap

    source, first = inspect.getsourcelines(function)
    tree = ast.parse(textwrap.dedent("".join(source)))
    lines: dict[int, tuple[int, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not isinstance(
            node, (ast.FunctionDef, ast.If, ast.For, ast.While, ast.With, ast.Try)
        ):
            text = " ".join(ast.get_source_segment(textwrap.dedent("".join(source)), node).split())
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                lines[line + first - 1] = (node.lineno + first - 1, text)
    return lines


def _pit_profile(folder: str, ttl: bool) -> dict[str, Any]:
    """Seconds and peak RSS per statement of point_in_time_join (line tracer + RSS sampler)."""
    import subprocess

    from fti.training import pit

    labels, features = _pit_load(folder)
    before = _reset_peak()
    samples_file = Path(folder) / "rss_samples.txt"
    sampler = subprocess.Popen([sys.executable, "-c", SAMPLER, str(os.getpid()), str(samples_file)])
    time.sleep(0.3)
    code = pit.point_in_time_join.__code__
    marks: list[tuple[int, float, float]] = []

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            marks.append((frame.f_lineno, time.perf_counter(), _rss_mib()))
        elif event == "return":
            marks.append((-1, time.perf_counter(), _rss_mib()))
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        return local if frame.f_code is code else None

    start = time.perf_counter()
    sys.settrace(tracer)
    try:
        pit.point_in_time_join(labels, features, "entity", "t", "ft", ttl=PIT_TTL if ttl else None)
    finally:
        sys.settrace(None)
    total = time.perf_counter() - start
    peak = _peak_rss_mib()
    time.sleep(0.3)
    sampler.terminate()
    sampler.wait()
    samples = [tuple(map(float, line.split())) for line in samples_file.read_text().splitlines()]
    statements = _statement_lines(pit.point_in_time_join)
    per: dict[int, dict[str, Any]] = {}
    for (line, begin, rss_begin), (_, end, rss_end) in zip(marks, marks[1:], strict=False):
        first, text = statements.get(line, (line, "?"))
        entry = per.setdefault(
            first, {"line": first, "code": text, "seconds": 0.0, "peak": 0.0, "rss_after": 0.0}
        )
        entry["seconds"] += end - begin
        during = [r for t, r in samples if begin <= t <= end] + [rss_begin, rss_end]
        entry["peak"] = max(entry["peak"], max(during))
        entry["rss_after"] = rss_end
    return {
        "total": total,
        "peak": peak,
        "before": before,
        "statements": sorted(per.values(), key=lambda e: e["line"]),
    }


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


def _pit_cprofile(folder: str) -> str:
    labels, features = _pit_load(folder)
    return _cprofile(lambda: _pit_join("fti point_in_time_join", labels, features), 18)


def profile_pit(args: argparse.Namespace) -> str:
    n = max(args.pit_sizes)
    folder = str(args.workdir / "pit" / str(n))
    if not (Path(folder) / "labels.parquet").exists():
        _in_worker(_pit_generate, folder, n, args.pit_sample, args.seed)
    log(f"profiling fti point_in_time_join at N={n:,}")
    report = [f"### fti point_in_time_join at N={n:,}: seconds and RSS per statement\n"]
    for ttl in (False, True):
        found = _in_worker(_pit_profile, folder, ttl)
        report.append(
            f"ttl={'7d' if ttl else 'None'}: {found['total']:.2f}s under the tracer, "
            f"RSS before {found['before']:.0f} MiB, peak {found['peak']:.0f} MiB "
            f"(+{found['peak'] - found['before']:.0f})\n"
        )
        report.append("| line | statement | seconds | peak RSS MiB during | RSS after |")
        report.append("|---:|---|---:|---:|---:|")
        for e in found["statements"]:
            code = e["code"] if len(e["code"]) < 110 else e["code"][:107] + "..."
            report.append(
                f"| {e['line']} | `{code}` | {e['seconds']:.2f} | {e['peak']:.0f} "
                f"| {e['rss_after']:.0f} |"
            )
        report.append("")
    report.append("cProfile (no ttl), top functions by own time:\n```")
    report.append(_in_worker(_pit_cprofile, folder))
    report.append("```")
    return "\n".join(report)


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


# ---- 2. read throughput ------------------------------------------------------------------------
def _read_setup(folder: str, rows: int, days: int, seed: int) -> dict[str, Any]:
    store = _new_store(folder)
    per_day = rows // days
    published = _publish_days(str(store), 0, days, per_day, seed)
    files = _cache_files(str(store), GROUP, published["version"])
    # Warm the page cache for both readers (every later worker reads warm files).
    for path in files:
        Path(path).read_bytes()
    size = sum(Path(p).stat().st_size for p in files)
    return {**published, "files": files, "bytes": size, "rows": per_day * days}


def _read_fti(store: str, version: int, mode: str) -> dict[str, Any]:
    from fti.store.versions import FeatureStore

    def cold() -> int:
        scanner = FeatureStore(Path(store)).scanner(GROUP, version, columns=READ_COLUMNS)
        return len(scanner.projected_schema)

    if mode == "cold":  # a fresh process: includes DVC's lazy imports
        _, seconds, peak, extra = _timed(cold)
        return {"seconds": seconds, "peak": peak, "extra": extra, "rows": 0}
    if mode == "listing":  # a new FeatureStore in a process that has listed once before
        cold()
        _, seconds, peak, extra = _timed(cold)
        return {"seconds": seconds, "peak": peak, "extra": extra, "rows": 0}
    scanner = FeatureStore(Path(store)).scanner(GROUP, version, columns=READ_COLUMNS)
    rows, seconds, peak, extra = _timed(lambda: _consume(scanner, mode))
    return {"seconds": seconds, "peak": peak, "extra": extra, "rows": rows}


def _read_bare(files: list[str], mode: str) -> dict[str, Any]:
    import pyarrow.dataset as ds

    def scanner() -> Any:
        return ds.dataset(files, format="parquet").scanner(
            columns=READ_COLUMNS, batch_size=BATCH_SIZE
        )

    if mode in ("cold", "listing"):
        if mode == "listing":
            scanner()
        _, seconds, peak, extra = _timed(lambda: len(scanner().projected_schema))
        return {"seconds": seconds, "peak": peak, "extra": extra, "rows": 0}
    made = scanner()
    rows, seconds, peak, extra = _timed(lambda: _consume(made, mode))
    return {"seconds": seconds, "peak": peak, "extra": extra, "rows": rows}


def _consume(scanner: Any, mode: str) -> int:
    if mode == "to_table":
        return scanner.to_table().num_rows
    return sum(batch.num_rows for batch in scanner.to_batches())


def _read_cprofile(store: str, version: int) -> str:
    from fti.store.versions import FeatureStore

    scanner = FeatureStore(Path(store)).scanner(GROUP, version, columns=READ_COLUMNS)
    listing = _cprofile(
        lambda: FeatureStore(Path(store)).scanner(GROUP, version, columns=READ_COLUMNS),
        20,
        "cumulative",
    )
    reading = _cprofile(lambda: scanner.to_table(), 20, "cumulative")
    return f"cold FeatureStore + scanner:\n{listing}\n\nscanner.to_table():\n{reading}"


def bench_read(args: argparse.Namespace) -> tuple[list[Row], str]:
    folder = str(args.workdir / "read")
    log(f"read: publishing {args.read_rows:,} rows over {args.read_days} days")
    info = _in_worker(_read_setup, folder, args.read_rows, args.read_days, args.seed)
    store = str(Path(folder) / "store")
    n = info["rows"]
    log(f"read: published in {info['seconds']:.1f}s, {info['bytes'] / 2**20:.1f} MiB of Parquet")
    steps = [
        (
            "cold",
            "fti: FeatureStore() + scanner, fresh process (listing + imports)",
            "bare: ds.dataset(files) + scanner, fresh process",
        ),
        (
            "listing",
            "fti: FeatureStore() + scanner, 2nd time in a process (listing)",
            "bare: ds.dataset(files) + scanner, 2nd time",
        ),
        ("to_table", "fti: scanner(3 of 10 cols).to_table()", "bare: dataset scan .to_table()"),
        (
            "to_batches",
            "fti: scanner(3 of 10 cols).to_batches()",
            "bare: dataset scan .to_batches()",
        ),
    ]
    rows = [
        Row(
            "read",
            n,
            f"publish {args.read_days} partitions, 10 cols (info)",
            n,
            info["seconds"],
            0.0,
            check=f"{info['bytes'] / 2**20:.1f} MiB Parquet (zstd)",
        ),
    ]
    for mode, fti_name, bare_name in steps:
        who_runs: dict[str, tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]] = {
            "fti": (_read_fti, (store, info["version"], mode)),
            "bare": (_read_bare, (info["files"], mode)),
        }
        names = {"fti": fti_name, "bare": bare_name}
        runs: dict[str, list[dict[str, Any]]] = {who: [] for who in who_runs}
        for _ in range(args.repeat):
            for who, (task, task_args) in who_runs.items():
                runs[who].append(_in_worker(task, *task_args))
        medians = {who: statistics.median(r["seconds"] for r in rs) for who, rs in runs.items()}
        log(f"read {mode}: " + ", ".join(f"{who} {t:.3f}s" for who, t in medians.items()))
        for who, results in runs.items():
            got = {r["rows"] for r in results}
            rows.append(
                Row(
                    "read",
                    n,
                    names[who],
                    n if mode not in ("cold", "listing") else 0,
                    medians[who],
                    max(r["peak"] for r in results),
                    max(r["extra"] for r in results),
                    f"{medians[who] / medians['bare']:.2f}x",
                    ""
                    if mode in ("cold", "listing")
                    else ("ok: rows " + f"{n:,}" if got == {n} else f"FAIL: rows {got}"),
                    spread=_spread(results),
                )
            )
    profile = ""
    if args.profile:
        log("read: cProfile of the fti read")
        profile = _in_worker(_read_cprofile, store, info["version"])
    return rows, profile


# ---- 3. publish cost vs history ------------------------------------------------------------------
PUBLISH_STEPS = [  # column order of the split table
    "_recover",
    "_published_schema",
    "git tag --list",
    "dvc Repo()",
    "dvc add",
    "dvc push",
    "git add",
    "git commit",
    "record",
    "git tag -a",
    "git rev-parse",
    "git show",
]
PUBLISH_HELPERS = ["_recover", "_published_schema"]


def _split_publish(split: dict[str, float]) -> None:
    """Time FeatureStore.publish by step in this worker: wrap its git/DVC calls and helpers.

    Only the outermost timed call counts, so ``_recover`` includes its own git/DVC calls.
    "dvc push" is DVC's push of the version's objects (``repo.cloud.transfer``/``push``, or
    ``repo.push``).
    "other" is the rest: lock, Parquet writes of the new partition, renames, manifest reads.
    """
    import fti.store.versions as versions

    depth = [0]

    def timed(name: str, call: Callable[..., Any], *a: Any, **k: Any) -> Any:
        depth[0] += 1
        clock = time.perf_counter()
        try:
            return call(*a, **k)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                split[name] = split.get(name, 0.0) + time.perf_counter() - clock

    git = versions.git
    open_dvc = versions.open_dvc

    def git_timed(store: Path, *a: str) -> str:
        name = " ".join(a[:2]) if a[0] == "tag" else a[0]
        return timed(f"git {name}", git, store, *a)

    def open_dvc_timed(store: Path) -> Any:
        repo = timed("dvc Repo()", open_dvc, store)
        for owner, method in (
            (repo, "add"),
            (repo, "push"),
            (repo, "checkout"),
            (repo.cloud, "push"),
            (repo.cloud, "transfer"),
        ):
            bound = getattr(owner, method)
            name = "dvc push" if owner is repo.cloud else f"dvc {method}"
            setattr(owner, method, lambda *a, _b=bound, _n=name, **k: timed(_n, _b, *a, **k))
        return repo

    versions.git = git_timed
    versions.open_dvc = open_dvc_timed
    for method in PUBLISH_HELPERS:  # those this version of fti has
        original = getattr(versions.FeatureStore, method, None)
        if original is None:
            continue
        setattr(
            versions.FeatureStore,
            method,
            lambda self, *a, _o=original, _m=method, **k: timed(_m, _o, self, *a, **k),
        )


def _catalog_url(store: str) -> str:
    return f"sqlite:///{Path(store).parent / 'fti.db'}"


def _catalog_record(store: Any, partitions: dict[date, Any]) -> Callable[[Any], None]:
    """``fti.pipelines.features.publish_group``'s ``record`` step: the version's catalog row."""
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


def _history_setup(
    folder: str, days: int, rows: int, seed: int, shape: str, modules: list[str]
) -> dict[str, Any]:
    from fti.db.migrate import upgrade

    _warm(modules)
    store = _new_store(folder)
    upgrade(_catalog_url(str(store)))
    if shape == "bulk":
        history = _publish_days(str(store), 0, days, rows, seed, with_record=True)
    else:  # nightly: one version per day
        clock = time.perf_counter()
        for day in range(days):
            history = _publish_days(str(store), day, 1, rows, seed, with_record=True)
        history["seconds"] = time.perf_counter() - clock
    # One more day, untimed: the first publish after a store's first version pays one-time
    # costs on disk (DVC's state and index databases, git's index) that later ones do not.
    _publish_days(str(store), days, 1, rows, seed, with_record=True)
    return history


def _publish_next(
    store: str, day_index: int, rows: int, seed: int, with_record: bool, modules: list[str]
) -> dict[str, Any]:
    """Publish one more day; time FeatureStore.publish by step (with the catalog row or not).

    ``modules`` are imported first (DVC's lazy imports); an empty list times a cold process.
    """
    from fti.store.versions import FeatureStore

    _warm(modules)
    day = STORE_START + timedelta(days=day_index)
    partitions = {day: _day_table(day, rows, seed)}
    fs = FeatureStore(Path(store))
    split: dict[str, float] = {}
    _split_publish(split)
    record = None
    if with_record:
        real = _catalog_record(fs, partitions)

        def record(published: Any) -> None:
            clock = time.perf_counter()
            real(published)
            split["record"] = split.get("record", 0.0) + time.perf_counter() - clock

    def run() -> dict[str, Any]:
        clock = time.perf_counter()
        fs.publish(GROUP, partitions, f"bench day {day}", record=record)
        return {"publish": time.perf_counter() - clock}

    times, seconds, peak, extra = _timed(run)
    split["other"] = times["publish"] - sum(split.values())
    return {"seconds": seconds, "peak": peak, "extra": extra, "times": times, "split": split}


def _publish_cprofile(store: str, day_index: int, rows: int, seed: int, modules: list[str]) -> str:
    from fti.store.versions import FeatureStore

    _warm(modules)
    day = STORE_START + timedelta(days=day_index)
    partitions = {day: _day_table(day, rows, seed)}
    fs = FeatureStore(Path(store))
    return _cprofile(lambda: fs.publish(GROUP, partitions, f"bench day {day}"), 30, "cumulative")


def bench_publish(args: argparse.Namespace) -> tuple[list[Row], str, str]:
    rows: list[Row] = []
    splits: list[tuple[int, Row, Row]] = []
    base: dict[str, float] = {}
    profile = ""
    modules = _in_worker(_dvc_modules, str(args.workdir / "publish" / "warmup"), args.seed)
    for n in args.history:
        folder = str(args.workdir / "publish" / str(n))
        log(f"publish: {args.history_shape} history of {n} day(s) x {args.publish_rows:,} rows")
        setup = _in_worker(
            _history_setup, folder, n, args.publish_rows, args.seed, args.history_shape, modules
        )
        store = str(Path(folder) / "store")
        shape = "as one version" if args.history_shape == "bulk" else f"as {n} nightly version(s)"
        rows.append(
            Row(
                "publish",
                n,
                f"publish the {n}-day history {shape} (info)",
                n * args.publish_rows,
                setup["seconds"],
                0.0,
            )
        )
        runs: dict[str, list[dict[str, Any]]] = {"plain": [], "record": [], "cold": []}
        day = n + 1  # the setup published days 0..n (the last one as a warm-up)
        for attempt in range(args.repeat):
            for kind in runs:
                if kind == "cold" and attempt:
                    continue  # one cold-process run per N, for information
                warm = [] if kind == "cold" else modules
                runs[kind].append(
                    _in_worker(
                        _publish_next,
                        store,
                        day,
                        args.publish_rows,
                        args.seed,
                        kind == "record",
                        warm,
                    )
                )
                day += 1
        for kind, name in (
            ("plain", "FeatureStore.publish of one more day"),
            ("record", "publish_group path: publish + catalog row (SQLite)"),
            ("cold", "FeatureStore.publish, fresh process incl. DVC imports (1 run)"),
        ):
            results = runs[kind]
            seconds = statistics.median(r["seconds"] for r in results)
            base.setdefault(kind, seconds)
            detail: dict[str, float] = {}
            for key in results[0]["times"]:
                detail[key] = statistics.median(r["times"][key] for r in results)
            for key in dict.fromkeys(k for r in results for k in r["split"]):
                detail[f"publish:{key}"] = statistics.median(
                    r["split"].get(key, 0.0) for r in results
                )
            rows.append(
                Row(
                    "publish",
                    n,
                    name,
                    args.publish_rows,
                    seconds,
                    max(r["peak"] for r in results),
                    max(r["extra"] for r in results),
                    f"{seconds / base[kind]:.2f}x",
                    detail=detail,
                    spread=_spread(results),
                )
            )
            log(f"publish N={n} {kind}: {seconds:.2f}s ({seconds / base[kind]:.2f}x)")
        splits.append((n, rows[-3], rows[-2]))
        if args.profile and n == max(args.history):
            log(f"publish: cProfile of one publish at N={n}")
            profile = _in_worker(
                _publish_cprofile, store, day, args.publish_rows, args.seed, modules
            )
    return rows, _split_table(splits), profile


def _split_table(splits: list[tuple[int, Row, Row]]) -> str:
    """Seconds by step (medians) of the plain publish and of the publish_group path."""
    seen = [
        k.split(":", 1)[1] for _, *rows in splits for row in rows for k in row.detail if ":" in k
    ]
    steps = [k for k in PUBLISH_STEPS if k in seen]
    steps += [k for k in dict.fromkeys(seen) if k not in steps and k != "other"] + ["other"]
    lines = [
        "| N days | path | seconds | " + " | ".join(steps) + " |",
        "|---:|---|---:|" + "---:|" * len(steps),
    ]
    for n, plain, record in splits:
        for name, row in (("publish", plain), ("+ catalog row", record)):
            lines.append(
                f"| {n} | {name} | {row.seconds:.3f} | "
                + " | ".join(f"{row.detail.get(f'publish:{k}', 0.0):.3f}" for k in steps)
                + " |"
            )
    return "\n".join(lines)


# ---- the run ---------------------------------------------------------------------------------------
def _spread(results: list[dict[str, Any]]) -> str:
    times = [r["seconds"] for r in results]
    if len(times) < 2:
        return ""
    digits = 1 if max(times) >= 10 else 3 if max(times) < 1 else 2
    return f"{min(times):.{digits}f}-{max(times):.{digits}f}"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| bench | size | step | rows | seconds (median) | min-max s | rows/s | peak RSS MiB "
        "| +MiB | ratio | check |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        rate = f"{r.rate:,.0f}" if r.rate else "-"
        extra = f"{r.extra_mib:.0f}" if r.extra_mib is not None else "-"
        peak = f"{r.peak_rss_mib:.0f}" if r.peak_rss_mib else "-"
        seconds = f"{r.seconds:.3f}" if r.seconds < 10 else f"{r.seconds:.1f}"
        lines.append(
            f"| {r.bench} | {r.size:,} | {r.step} | {r.rows:,} | {seconds} | {r.spread} | {rate} "
            f"| {peak} "
            f"| {extra} | {r.ratio} | {r.check} |"
        )
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="pit,read,publish", help="comma-separated sub-benchmarks")
    parser.add_argument("--pit-sizes", type=_ints, default=_ints("1e5,1e6,1e7"), help="label rows")
    parser.add_argument("--pit-sample", type=int, default=10_000, help="label rows checked")
    parser.add_argument("--read-rows", type=lambda s: int(float(s)), default=2_000_000)
    parser.add_argument("--read-days", type=int, default=30)
    parser.add_argument("--history", type=_ints, default=_ints("1,30,365"), help="days published")
    parser.add_argument(
        "--history-shape",
        choices=["nightly", "bulk"],
        default="nightly",
        help="the history as one version per day (nightly) or as one version (bulk)",
    )
    parser.add_argument("--publish-rows", type=int, default=2_000, help="rows per daily partition")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step (median)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="also profile the fti paths")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / ".work" / "store")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - {"pit", "read", "publish"}
    if unknown:
        parser.error(f"unknown sub-benchmark(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    import fti

    log(f"fti from {fti.__file__}")
    clock = time.perf_counter()
    baseline_peak, _ = _in_worker(_baseline)
    rows = [Row("-", 0, "worker baseline (imports only)", 0, 0.0, baseline_peak)]
    extras: list[str] = []
    if "pit" in args.only:
        rows += bench_pit(args)
        if args.profile:
            extras.append(profile_pit(args))
    if "read" in args.only:
        read_rows, read_profile = bench_read(args)
        rows += read_rows
        if read_profile:
            extras.append(f"### cProfile of the fti read\n```\n{read_profile}\n```")
    if "publish" in args.only:
        publish_rows, split, publish_profile = bench_publish(args)
        rows += publish_rows
        extras.insert(0, "### publish, seconds by step (medians)\n\n" + split)
        if publish_profile:
            extras.append(f"### cProfile of one publish\n```\n{publish_profile}\n```")
    elapsed = time.perf_counter() - clock
    (args.workdir / "results.json").write_text(
        json.dumps(
            {"elapsed_s": elapsed, "rows": [asdict(r) for r in rows], "extras": extras}, indent=2
        )
    )
    print(markdown(rows))
    for extra in extras:
        print("\n" + extra)
    print(f"\nbenchmark wall time: {elapsed:.0f}s")


if __name__ == "__main__":
    main()
