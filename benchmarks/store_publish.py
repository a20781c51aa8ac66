"""Part 3 of ``bench_feature_store.py``: the cost of publishing one more day as the history grows,
``FeatureStore.publish`` split into its git and DVC steps, with and without the catalog row."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from store_bench import (
    GROUP,
    STORE_START,
    Row,
    _catalog_record,
    _catalog_url,
    _day_table,
    _dvc_modules,
    _in_worker,
    _new_store,
    _publish_days,
    _spread,
    _warm,
    log,
)
from workers import _cprofile, _timed

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
