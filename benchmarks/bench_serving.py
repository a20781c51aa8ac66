"""Real-time serving: fti serve against a bare FastAPI scorer and Feast's feature server.

One run starts three HTTP servers on this machine over the same features of the churn demo
(the newest row per customer of ``customer_activity`` and ``customer_profile``) and times the
same requests against each, side by side:

- ``baseline``: ``benchmarks/serving_baseline.py`` under uvicorn (the project's venv): a
  minimal FastAPI endpoint that does one SQL lookup of the entities' rows in fti's online
  table (``online_rows`` of the same SQLite file, read with ``sqlite3``), puts the rows'
  values into a DataFrame and calls ``predict_proba`` of the same estimator (the champion's
  skops artifact). No fti code, no auth, no lineage, no checks. It sets one OpenMP thread
  (see its docstring: with one thread per core a single row's ``predict_proba`` is many times
  slower on this loaded 2-core machine);
- ``fti``: ``fti serve``, ``POST /models/churn/predict`` with the bearer token: the full
  predict path (auth, the champion's model, the online read, skew/staleness checks, scoring,
  the answer with lineage, its metrics), as shipped: its environment is the FTI home's plus
  whatever ``--fti-env NAME=VALUE`` adds (e.g. ``OMP_NUM_THREADS=1`` to compare);
- ``feast``: Feast's own Python feature server (``feast serve``, in its own virtual
  environment ``benchmarks/.feast-venv``, made from ``benchmarks/feast-constraints.txt`` when
  missing) over a feature repository this script writes into the work folder: SQLite online
  store, one ``FileSource`` per group over a Parquet of the same rows, the ``customer``
  entity and two feature views, ``feast apply`` and ``feast materialize``.
  ``POST /get-online-features`` for the model's 11 features. Feast serves features, not
  predictions: its rows measure **feature retrieval only** (no model), so they are a lower
  bound of what scoring behind Feast would cost; fti's rows include the model.

Feature retrieval like for like (no model on either side), one group per request:

- ``fti-features``: the same ``fti serve`` process, ``POST /features/customer_activity`` with
  the bearer token: every feature of the group (8) with ``feature_date``, as records, the
  answer ``fti features get --json`` prints;
- ``feast-1group``: the same Feast process, ``POST /get-online-features`` for the same 8
  features of ``customer_activity`` only (the ``feast`` row asks for both groups' 11).

Each row's ratios are against its reference (the ``vs`` column): the baseline for the
predict and the two-group Feast rows, ``feast-1group`` for ``fti-features``.

Scenarios (the same entity sequence for every server, drawn with a fixed seed from the
customers whose rows of both groups are on the last feature date):

- ``1 entity, c=1``: ``--requests`` single-entity requests, one connection, back to back;
- ``1 entity, c=8``: the same count over 8 keep-alive connections at once;
- ``100 entities, c=1``: ``--batch-requests`` requests naming 100 distinct entities each.

Every server first answers ``--warmup`` untimed requests per scenario. The servers run one
process each (uvicorn with its defaults for the baseline and fti, so uvloop + httptools and
an access log to the server's log file; Feast's gunicorn with one worker, its access log on,
and ``--max-requests 0``: Feast's default recycles the worker every ~1000 requests, a restart
no long-lived server would pay on every 1000th request); the two rows of one process (``fti``
and ``fti-features``, ``feast`` and ``feast-1group``) are timed in turn like any two rows.
All three processes stay up for the whole run, idle but for the row being measured; each scenario is split into ``--rounds`` rounds and the
servers take turns per round (the order rotates), so a busier minute of this shared machine
falls on all of them alike.

The load generator is this process: asyncio with raw keep-alive HTTP/1.1 connections (h11 to
frame requests and parse answers), requests pre-built, latency = ``perf_counter`` from
writing the request to the last byte of the answer; p50/p99 over all timed requests of the
scenario, req/s = timed requests / the scenario's summed wall time. Every answer must be
200; before timing, one request per server is checked (the baseline's and fti's probability
for the same customer agree; Feast returns the Parquet's values). Ratios are the server's
figure divided by the baseline's (for req/s: the baseline's rate divided by the server's, so
above 1 means slower everywhere).

Run from the repository root (the work folder is git-ignored and reused when present)::

    .venv/bin/python benchmarks/bench_serving.py                      # 10,000 requests
    .venv/bin/python benchmarks/bench_serving.py --requests 1000 --batch-requests 100

``--servers`` picks some of baseline,fti,feast,fti-features,feast-1group. Not run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving_load import load, request_events
from serving_servers import PROCESS, Server, make_servers
from serving_setup import (
    GROUPS,
    KEY,
    champion,
    ensure_feast_repo,
    ensure_feast_venv,
    ensure_home,
    feature_rows,
    online_groups,
)
from workers import WORK, log, workdir

SERVERS = ("baseline", "fti", "feast", "fti-features", "feast-1group")
BATCH = 100  # entities of the many-entity request
SCENARIOS = {"c1": "1 entity, c=1", "c8": "1 entity, c=8", "batch": f"{BATCH} entities, c=1"}


# ---- checks before timing ----------------------------------------------------------------------
def check_answers(servers: list[Server], entity: str, frames: dict[str, Any]) -> dict[str, str]:
    """One request per server for ``entity``; what each answered, checked against the others
    and the Parquet rows. Returns one line per server for the report."""
    import httpx

    seen: dict[str, Any] = {}
    notes = {}
    for server in servers:
        path, body = server.single(entity)
        answer = httpx.post(
            f"http://127.0.0.1:{server.port}{path}",
            content=body,
            headers=dict(server.headers) | {"content-type": "application/json"},
            timeout=60,
        )
        if answer.status_code != 200:
            raise SystemExit(f"{server.name} answered {answer.status_code}: {answer.text[:300]}")
        data = answer.json()
        if server.name == "fti-features":
            row = data["rows"][0]
            wrong = [
                f"{feature}: {row.get(feature)!r} != {want!r}"
                for group, feature in server.features
                if not _same(row.get(feature), want := _parquet(frames, group, feature, entity))
            ]
            if not row["found"] or wrong:
                raise SystemExit(f"fti served other features for {entity}: {row}; {wrong}")
            notes[server.name] = (
                f"{len(server.features)} features of {data['group']} v{data['version']} "
                "equal to the Parquet rows"
            )
        elif server.name in ("baseline", "fti"):
            prediction = data["predictions"][0]
            seen[server.name] = prediction["probability"]
            notes[server.name] = f"probability {prediction['probability']:.6f}" + (
                f", model v{data.get('model_version')}, stale {prediction.get('stale')}"
                if server.name == "fti"
                else ""
            )
        else:
            got = dict(zip(data["metadata"]["feature_names"], data["results"], strict=True))
            wrong = []
            for group, feature in server.features:
                want = _parquet(frames, group, feature, entity)
                value = got[feature]["values"][0]
                if not _same(value, want):
                    wrong.append(f"{feature}: {value!r} != {want!r}")
            if wrong:
                raise SystemExit(f"feast served other values for {entity}: {'; '.join(wrong)}")
            notes[server.name] = f"{len(got) - 1} features equal to the Parquet rows"
    if "baseline" in seen and "fti" in seen and abs(seen["baseline"] - seen["fti"]) > 1e-9:
        raise SystemExit(f"baseline and fti disagree for {entity}: {seen}")
    return notes


def _parquet(frames: dict[str, Any], group: str, feature: str, entity: str) -> Any:
    frame = frames[group]
    return frame.loc[frame[KEY] == int(entity), feature].iloc[0]


def _same(value: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(value, int | float):
        return abs(value - want) < 1e-9
    return bool(value == want)


# ---- the run -----------------------------------------------------------------------------------
@dataclass
class Result:
    server: str
    scenario: str
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0

    def quantile(self, q: float) -> float:
        import numpy as np

        return float(np.percentile(self.latencies, q * 100))

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0


def pick_entities(frames: dict[str, Any], seed: int = 0) -> list[str]:
    """Customers with a row of every group on the last feature date (fresh everywhere)."""
    fresh = None
    for frame in frames.values():
        last = frame["feature_date"].max()
        keys = set(frame.loc[frame["feature_date"] == last, KEY])
        fresh = keys if fresh is None else fresh & keys
    assert fresh, "no customer has rows of every group on the last date"
    return [str(k) for k in sorted(fresh)]


def measure(servers: list[Server], entities: list[str], args: argparse.Namespace) -> list[Result]:
    rng = random.Random(0)
    plans = {
        "c1": (1, [[rng.choice(entities)] for _ in range(args.requests)]),
        "c8": (8, [[rng.choice(entities)] for _ in range(args.requests)]),
        "batch": (1, [rng.sample(entities, BATCH) for _ in range(args.batch_requests)]),
    }
    results: list[Result] = []
    for scenario, (concurrency, picks) in plans.items():
        found = {s.name: Result(s.name, scenario) for s in servers}
        framed = {}
        for server in servers:
            framed[server.name] = [
                request_events(
                    server, *(server.many(p) if scenario == "batch" else server.single(p[0]))
                )
                for p in picks
            ]
            warm = framed[server.name][: min(args.warmup, len(picks))]
            load(server.port, warm, concurrency)
        per_round = -(-len(picks) // args.rounds)
        for r in range(args.rounds):
            chunk = slice(r * per_round, (r + 1) * per_round)
            for server in servers[r % len(servers) :] + servers[: r % len(servers)]:
                latencies, wall = load(server.port, framed[server.name][chunk], concurrency)
                found[server.name].latencies += latencies
                found[server.name].wall += wall
        for result in found.values():
            log(
                f"{result.server:12} {SCENARIOS[scenario]:18} p50 {result.quantile(0.5) * 1e3:7.2f} ms "
                f"p99 {result.quantile(0.99) * 1e3:7.2f} ms {result.rate:8.0f} req/s"
            )
        results += found.values()
    return results


def table(results: list[Result], servers: list[Server]) -> str:
    """One row per server and scenario; ratios against the row's reference (``vs``)."""
    by = {(r.server, r.scenario): r for r in results}
    lines = [
        "| server | scenario | requests | p50 ms | p99 ms | req/s | vs | p50 ÷ vs | p99 ÷ vs "
        "| vs req/s ÷ req/s |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    order = {s.name: i for i, s in enumerate(servers)}
    reference = {s.name: s.reference for s in servers}
    for r in sorted(results, key=lambda r: (list(SCENARIOS).index(r.scenario), order[r.server])):
        ref = reference[r.server]
        b = by.get((ref, r.scenario)) if ref else None
        ratios = (
            [
                f"{r.quantile(0.5) / b.quantile(0.5):.2f}x",
                f"{r.quantile(0.99) / b.quantile(0.99):.2f}x",
                f"{b.rate / r.rate:.2f}x",
            ]
            if b
            else ["-", "-", "-"]
        )
        lines.append(
            f"| {r.server} | {SCENARIOS[r.scenario]} | {len(r.latencies):,} "
            f"| {r.quantile(0.5) * 1e3:.2f} | {r.quantile(0.99) * 1e3:.2f} | {r.rate:,.0f} "
            f"| {ref if b else '-'} | {' | '.join(ratios)} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=10_000,
        help="single-entity requests per server and concurrency",
    )
    parser.add_argument(
        "--batch-requests", type=int, default=500, help=f"{BATCH}-entity requests per server"
    )
    parser.add_argument(
        "--warmup", type=int, default=200, help="untimed requests per server and scenario"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds the servers take turns in")
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        type=lambda t: [s.strip() for s in t.split(",") if s.strip()],
    )
    parser.add_argument(
        "--fti-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra environment variable for fti serve (repeatable), e.g. OMP_NUM_THREADS=1",
    )
    parser.add_argument("--workdir", type=Path, default=WORK / "serving")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        raise SystemExit(
            f"--servers: unknown {', '.join(sorted(unknown))}; pick from {','.join(SERVERS)}"
        )
    args.workdir = workdir(args.workdir)
    logdir = args.workdir / "logs"
    logdir.mkdir(exist_ok=True)
    setup_log = args.workdir / "setup.log"
    clock = time.perf_counter()
    home = ensure_home(args.workdir)
    model = champion(home, setup_log)
    frames = feature_rows(home)
    online = online_groups(home / "fti.db")
    versions = {g: int(frames[g].attrs["version"]) for g in GROUPS}
    if online != versions:
        raise SystemExit(
            f"the online store holds {online}, the store's newest versions are {versions}: "
            f"run `fti features materialise` with FTI_HOME={home}"
        )
    feast = feast_repo = None
    if {"feast", "feast-1group"} & set(args.servers):
        feast = ensure_feast_venv(setup_log)
        feast_repo = ensure_feast_repo(args.workdir, frames, feast, setup_log)
    entities = pick_entities(frames)
    fti_extra = dict(item.split("=", 1) for item in args.fti_env)
    servers = make_servers(args.servers, home, model, frames, feast, feast_repo, fti_extra)
    load_before = os.getloadavg()
    try:
        for server in servers:
            server.start(logdir)
        for server in servers:
            server.wait_ready(logdir)
        log("servers up: " + ", ".join(f"{s.name} :{s.port}" for s in servers))
        notes = check_answers(servers, entities[0], frames)
        results = measure(servers, entities, args)
    finally:
        for server in servers:
            server.stop()
    elapsed = time.perf_counter() - clock
    (args.workdir / "results.json").write_text(
        json.dumps(
            [
                {
                    "server": r.server,
                    "scenario": r.scenario,
                    "requests": len(r.latencies),
                    "p50_ms": r.quantile(0.5) * 1e3,
                    "p99_ms": r.quantile(0.99) * 1e3,
                    "req_per_s": r.rate,
                }
                for r in results
            ],
            indent=2,
        )
    )
    print(
        f"churn model v{model.version} ({len(model.features)} features from {len(GROUPS)} groups), "
        f"online store {online}, {len(entities):,} fresh customers drawn from; "
        f"{args.requests:,} single-entity requests per server and concurrency, "
        f"{args.batch_requests:,} {BATCH}-entity requests, {args.warmup} warm-up, "
        f"{args.rounds} rounds; load average (1 min) {load_before[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores\n"
    )
    for server in servers:
        fti_row = PROCESS.get(server.name, server.name) == "fti"
        extra = f" (with {' '.join(args.fti_env)})" if fti_row and args.fti_env else ""
        print(f"- {server.name}{extra}: {server.measures}; check: {notes[server.name]}")
    print()
    print(table(results, servers))
    print(f"\nbenchmark wall time: {elapsed:.0f}s")


if __name__ == "__main__":
    main()
