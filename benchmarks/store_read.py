"""Part 2 of ``bench_feature_store.py``: reading a published version, ``FeatureStore.scanner``
against a bare ``pyarrow.dataset`` over the same files in the DVC cache (the listing, a whole
table, streamed batches)."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from store_bench import (
    GROUP,
    Row,
    _cache_files,
    _in_worker,
    _new_store,
    _publish_days,
    _spread,
    log,
)
from workers import _cprofile, _timed

READ_COLUMNS = ["entity", "f0", "f3"]  # 3 of the 10 columns
BATCH_SIZE = 65_536  # FeatureStore.scanner's default; the bare scan gets the same


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
