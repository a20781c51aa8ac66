"""Cost of bad rows: validating a file of good rows against files whose rows all break a rule.

One run writes (under ``<workdir>``) a churn-demo ``events`` CSV of about ``--mb`` MB of good
rows, and files of the same rows where every row breaks one rule:

- ``bad amount``: every amount negative (caught by the schema's ``in_range`` check, pandera);
- ``bad time``: every ``event_time`` unparsable (caught while the text is typed, before pandera).

Then it times ``fti.validation.validate_file`` on each, side by side in the same run:

- the good file;
- each bad file with ``max_quarantine_share=0.2`` (what the feature pipeline passes: validation
  may stop as soon as the bad rows certainly exceed the share, keeping a sample of records);
- each bad file without a share (every quarantine record built, as ``fti quarantine`` and a
  file just under the share need).

Every case runs in a fresh spawned worker process (``benchmarks/workers.py``): time with
``time.perf_counter`` around the call, memory as the worker's own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, so it includes the interpreter and fti's
imports: the ``worker baseline`` row is a worker that only imports; the files are written by
a worker too, so the parent stays small: on Linux a child's peak RSS starts at what its parent
held when it started it). The ratios are each case over the good file.

Run it from the repository root (the work folder is git-ignored)::

    .venv/bin/python benchmarks/bench_bad_rows.py            # ~50 MB files
    .venv/bin/python benchmarks/bench_bad_rows.py --mb 5     # a quick run

Not run by pytest.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / "params.yaml"
DAY = date(2026, 3, 10)
SHARE = 0.2  # FTI_MAX_QUARANTINE_SHARE's order of magnitude

from workers import _baseline, _in_worker, _measure, log  # noqa: E402


@dataclass
class Row:
    case: str
    share: str
    rows_read: int
    rows_bad: int
    records: int
    seconds: float
    peak_rss_mib: float
    time_ratio: str = ""
    memory_ratio: str = ""


# ---- the files ----------------------------------------------------------------------------------
def _columns(n: int, seed: int = 0) -> dict[str, object]:
    """``n`` good events of DAY as text columns (numpy arrays of str)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    kinds = np.array(["login", "purchase", "support_ticket", "cancel"])
    kind = kinds[rng.choice(4, n, p=[0.6, 0.3, 0.08, 0.02])]
    seconds = np.sort(rng.integers(0, 86_400, n))
    times = pd.Timestamp(DAY) + pd.to_timedelta(seconds, unit="s")
    amount = np.char.mod("%.2f", np.round(rng.lognormal(3.0, 0.5, n), 2))
    signup = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    return {
        "event_id": np.char.add("e", np.arange(n).astype(str)),
        "customer_id": rng.integers(1, 200_000, n).astype(str),
        "event_time": np.asarray(times.strftime("%Y-%m-%dT%H:%M:%S+00:00")),
        "event_type": kind,
        "amount": np.where(kind == "purchase", amount, ""),
        "plan": np.array(["basic", "standard", "premium"])[rng.choice(3, n)],
        "signup_date": np.asarray(signup.strftime("%Y-%m-%d")),
        "_amount": amount,
    }


def _write(path: Path, columns: dict[str, object]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table({k: pa.array(v, pa.string()) for k, v in columns.items() if k[0] != "_"})
    options = pacsv.WriteOptions(quoting_style="needed")
    pacsv.write_csv(table, path, write_options=options)


def write_files(workdir: Path, megabytes: float) -> dict[str, Path]:
    """The good file and the bad files, each about ``megabytes`` MB (the same rows).

    Run in a worker: a process started later inherits, in its peak RSS, the memory its parent
    held when it started it (Linux keeps ``ru_maxrss`` across fork and exec).
    """
    import numpy as np

    sample = workdir / "sample.csv"
    _write(sample, _columns(2000))
    per_row = (sample.stat().st_size - 80) / 2000
    n = int(megabytes * 1e6 / per_row)
    good = _columns(n)
    paths = {"good": workdir / "good.csv", "bad amount": workdir / "bad_amount.csv"}
    paths["bad time"] = workdir / "bad_time.csv"
    _write(paths["good"], good)
    # every row gets a negative amount (a login's amount too: a value must still be in range)
    _write(paths["bad amount"], good | {"amount": np.char.add("-", good["_amount"])})
    _write(paths["bad time"], good | {"event_time": np.full(n, "yesterday-ish")})
    sample.unlink()
    return paths


# ---- what runs inside a fresh worker process ----------------------------------------------------
def _validate(path: str, share: float | None) -> dict[str, int]:
    from churn_demo.project import events
    from fti.validation import validate_file

    if "max_quarantine_share" in inspect.signature(validate_file).parameters:
        result = validate_file(Path(path), events, DAY, max_quarantine_share=share)
    else:  # before the share existed: always complete
        result = validate_file(Path(path), events, DAY)
    return {
        "rows_read": result.rows_read,
        "rows_bad": getattr(result, "rows_bad", result.rows_quarantined),
        "records": result.rows_quarantined,
    }


# ---- the run --------------------------------------------------------------------------------------
def markdown(rows: list[Row]) -> str:
    lines = [
        "| case | max share | rows read | bad rows | records built | seconds | peak RSS MiB "
        "| time / good | memory / good |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.case} | {r.share} | {r.rows_read:,} | {r.rows_bad:,} | {r.records:,} "
            f"| {r.seconds:.2f} | {r.peak_rss_mib:.0f} | {r.time_ratio} | {r.memory_ratio} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of each file (default 50)")
    parser.add_argument("--share", type=float, default=SHARE, help="max quarantine share")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / ".work" / "bad_rows")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workdir = args.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    os.environ["FTI_PARAMS_FILE"] = str(PARAMS_FILE)
    clock = time.perf_counter()
    log(f"writing ~{args.mb:g} MB files to {workdir}")
    paths = _in_worker(write_files, workdir, args.mb)
    _, _, baseline_rss = _measure(_baseline)
    rows = [Row("worker baseline (imports only)", "-", 0, 0, 0, 0.0, baseline_rss)]
    cases = [("good", None)]
    cases += [(kind, share) for kind in ("bad amount", "bad time") for share in (args.share, None)]
    for kind, share in cases:
        log(f"validating {kind} (max share {share})")
        counts, seconds, rss = _measure(_validate, str(paths[kind]), share)
        size = paths[kind].stat().st_size / 1e6
        label = f"{kind} ({size:.0f} MB)"
        shown = "-" if share is None else f"{share:g}"
        rows.append(Row(label, shown, counts["rows_read"], counts["rows_bad"], counts["records"],
                        seconds, rss))  # fmt: skip
    good = rows[1]
    for row in rows[1:]:
        row.time_ratio = f"{row.seconds / good.seconds:.2f}x"
        row.memory_ratio = f"{row.peak_rss_mib / good.peak_rss_mib:.2f}x"
    elapsed = time.perf_counter() - clock
    (workdir / "results.json").write_text(
        json.dumps({"elapsed_s": elapsed, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    print(markdown(rows))
    print(f"\nbenchmark wall time: {elapsed:.0f}s")


if __name__ == "__main__":
    main()
