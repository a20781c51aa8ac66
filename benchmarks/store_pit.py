"""Part 1 of ``bench_feature_store.py``: the point-in-time join, fti's against pandas'
``merge_asof`` and DuckDB's ``ASOF JOIN`` on the same generated data, each checked against a
brute-force oracle; and, with ``--profile``, seconds and RSS per statement of fti's join."""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from store_bench import Row, _in_worker, _spread, log
from workers import _cprofile, _peak_rss_mib, _reset_peak, _rss_mib, _timed

PIT_START = datetime(2026, 1, 1, tzinfo=UTC)
PIT_SPAN_DAYS = 90
PIT_MARGIN_DAYS = 5
PIT_TTL = timedelta(days=7)
PIT_FEATURES = ["f0", "f1", "f2", "f3"]


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
