"""One night on two Celery workers with a sharded group, and a worker SIGKILLed mid-shard.

The live test's production shape (``tests/live/services.py``: its own Redis on a free port,
Airflow's api-server, scheduler, dag-processor and triggerer, two Celery workers on queues:
worker 1 on ``features,training``, worker 2 on ``features,inference``), at a size that fits
CI: ``--customers`` (default 20,000) with ``customer_activity`` forced to ``--shards`` (default
4) shards. The night is run twice, each time on fresh databases and a fresh FTI_HOME over the
same raw files (``churn_demo.generate --scale``, written once):

- **without kill**: the DAGs are unpaused, the scheduled feature run of yesterday publishes
  every group, and both trainings and inferences follow from the assets;
- **with kill**: the same, but as soon as a worker runs a shard of ``build__customer_activity``
  (and ``--kill-after`` seconds into it), that worker's whole process group is SIGKILLed (the
  Celery worker, its pool and the task process); a worker with the same name and queues is
  started again. The scheduler finds the shard's heartbeat missing
  (``[scheduler] task_instance_heartbeat_timeout``, set to ``--heartbeat-timeout`` seconds here
  instead of Airflow's 300 so the benchmark is short), fails that try, and the DAG's retry
  (``retries: 2, retry_delay: 1 min``) runs the shard again.

Before either night, FTI_HOME holds ``--history-days`` of history (``fti features run``) and
both models (``fti train``), as in the live test; that set-up is not timed.

Checked, and printed as a table: both workers ran shards of the sharded group; each group
published exactly one version for the night (one catalog row, one git tag); the night's
version of every group has the same DVC md5 (and partition file md5s) with and without the
kill; the killed shard was retried (its try number > 1). Wall time is from unpausing the DAGs
to every run of the night finished (predictions of both models in PostgreSQL).

Run from the repository root (the workers import ``tests.live.worker_hostname``; this module
imports ``tests.live.services``); not run by pytest. Needs ``redis-server`` and PostgreSQL at
``--pg-url`` (trust auth)::

    .venv/bin/python -m benchmarks.bench_workers_kill                 # 20,000 customers, 4 shards
    .venv/bin/python -m benchmarks.bench_workers_kill --customers 2000 --keep
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

try:
    from benchmarks.databases import PG_SERVER, create_pg_database, drop_pg_database
    from tests.live import services
    from tests.live.services import REPO, Api, Children, Db, wait_for
except ModuleNotFoundError as missing:  # run as a script: the repository root is not on the path
    sys.exit(
        f"{missing}: run `.venv/bin/python -m benchmarks.bench_workers_kill` from the repository root"
    )

GROUP = "customer_activity"  # the sharded group
BUILD = f"build__{GROUP}"
WORKER_QUEUES = {"fti-worker-1": "features,training", "fti-worker-2": "features,inference"}
CONCURRENCY = 2
STARTUP_SECONDS = 300
RUN_SECONDS = 1200
PROJECT_START = date(2026, 1, 1)  # churn_demo.project's start_date: no raw file before it
RESULTS = REPO / "benchmarks" / ".work" / "bench_workers_kill_results.json"  # git-ignored


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


@dataclass
class Night:
    """What one run of the night did."""

    case: str
    wall_s: float = 0.0
    shards_per_worker: dict[str, int] = field(default_factory=dict)
    tries: list[tuple[int, int, str, str]] = field(default_factory=list)  # map, try, host, state
    killed: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, list[int]] = field(default_factory=dict)  # group -> catalog versions
    tags: dict[str, list[str]] = field(default_factory=dict)  # group -> git tags in the store
    md5: dict[str, str] = field(default_factory=dict)  # group -> the night's version's DVC md5
    partitions: dict[str, dict[str, str]] = field(default_factory=dict)  # group -> date -> md5
    predictions: dict[str, int] = field(default_factory=dict)


# ---- one deployment, one night -----------------------------------------------------------------
def run_night(case: str, kill: bool, args: argparse.Namespace, raw: Path, dates: dict) -> Night:
    """Fresh databases, Redis, FTI_HOME (history + models) and Airflow; the night; the facts."""
    folder = args.workdir / case.replace(" ", "-")
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "logs").mkdir(parents=True)
    children = Children(folder / "logs")
    suffix = uuid.uuid4().hex[:8]
    names = {"airflow": f"fti_bwk_airflow_{suffix}", "fti": f"fti_bwk_fti_{suffix}"}
    created = []
    night = Night(case)
    try:
        urls = {}
        for key, name in names.items():
            urls[key] = create_pg_database(args.pg_url, name)
            created.append(name)
        broker = services.start_redis(children, folder, args.redis_server)
        home, airflow_home = folder / "home", folder / "airflow"
        api_port = services.free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        airflow_db = urls["airflow"].replace("+psycopg", "+psycopg2", 1)
        env = services.airflow_environment(airflow_home, api_port, airflow_db, broker, CONCURRENCY)
        env |= {
            "FTI_HOME": str(home),
            "FTI_RAW_PATH": str(raw),
            "FTI_DB_URL": urls["fti"],
            "FTI_PARAMS_FILE": str(sharded_params(folder, args.shards)),
            "FTI_PROJECT": "churn_demo.project:project",
            "FTI_ALERT_WEBHOOK_URL": "",
            # A killed worker's task is found by its missing heartbeat after this many seconds.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(args.heartbeat_timeout),
        }
        password = secrets.token_hex(12)
        start, end = dates["history_start"], dates["history_end"]
        setup = services.start_fti_setup(children, env, start, end)
        children.finish(services.airflow_init(children, env, password), 600)
        services.start_components(children, env)
        workers = {
            hostname: services.start_worker(
                children,
                f"worker-{number}",
                services.worker_environment(env, hostname),
                hostname,
                queues,
                CONCURRENCY,
            )
            for number, (hostname, queues) in enumerate(WORKER_QUEUES.items(), start=1)
        }
        services.wait_healthy(children, api_url, STARTUP_SECONDS)
        for hostname, worker in workers.items():
            services.wait_worker_ready(children, worker, hostname, STARTUP_SECONDS)
        log(f"{case}: Airflow up; waiting for fti-setup (history, both models)")
        children.finish(setup, 1800)
        log(f"{case}: {tail_line(setup.log, 'fti-setup: models')}")
        api = Api(api_url, password)
        manifest = json.loads((home / "manifests" / "churn.json").read_text())
        models = [model["name"] for model in manifest["models"]]
        dags = [
            "churn_feature_pipeline",
            *(f"{m}_training" for m in models),
            *(f"{m}_inference" for m in models),
        ]
        services.wait_parsed(children, api, dags, 180)
        airflow, fti = Db(urls["airflow"]), Db(urls["fti"])

        clock = time.monotonic()
        for dag_id in dags:
            api.call("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        log(f"{case}: DAGs unpaused; the scheduled night {dates['night']} runs")
        if kill:
            night.killed = kill_mid_shard(children, airflow, workers, env, args)
        wait_for(
            f"the night's predictions of {models}",
            lambda: done(airflow, fti, models, dates["night"]),
            RUN_SECONDS,
            children,
            lambda: services.tail(next(c.log for c in children.started if c.name == "scheduler")),
            every=3,
        )
        night.wall_s = time.monotonic() - clock
        log(f"{case}: the night took {night.wall_s:.0f}s")
        facts(night, airflow, fti, home, models, dates["night"])
    finally:
        children.stop()
        for name in created:
            drop_pg_database(args.pg_url, name)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return night


def kill_mid_shard(
    children: Children,
    airflow: Db,
    workers: dict[str, services.Child],
    env: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """SIGKILL the first worker seen running a shard of ``BUILD`` (``--kill-after`` seconds
    into it), then start a worker of the same name and queues again."""

    def running() -> list[tuple[Any, ...]]:
        return airflow.rows(
            "SELECT map_index, hostname, try_number, start_date FROM task_instance "
            "WHERE dag_id = 'churn_feature_pipeline' AND task_id = :task AND state = 'running' "
            "AND hostname <> ''",
            task=BUILD,
        )

    first = wait_for(f"a running shard of {BUILD}", running, RUN_SECONDS, children, every=0.3)
    hostname = first[0][1]
    time.sleep(args.kill_after)
    shards = [m for m, host, *_ in running() if host == hostname]
    children.kill(workers[hostname])
    log(f"SIGKILLed {hostname}'s process group while it ran shard(s) {shards} of {GROUP}")
    number = list(WORKER_QUEUES).index(hostname) + 1
    again = services.start_worker(
        children,
        f"worker-{number}-restarted",
        services.worker_environment(env, hostname),
        hostname,
        WORKER_QUEUES[hostname],
        CONCURRENCY,
    )
    services.wait_worker_ready(children, again, f"{hostname} restarted", STARTUP_SECONDS)
    log(f"{hostname} restarted")
    return {"worker": hostname, "shards": shards or [first[0][0]]}


def done(airflow: Db, fti: Db, models: list[str], night: date) -> bool:
    """Both models scored the night and no DAG run is queued or running; fails on a failed
    DAG run (a failed try that is retried is not one)."""
    failed = airflow.rows("SELECT dag_id, run_id FROM dag_run WHERE state = 'failed'")
    if failed:
        raise services.ServiceFailure(f"DAG runs failed: {failed}")
    scored = fti.value(
        "SELECT count(DISTINCT model_name) FROM prediction_runs WHERE as_of_date = :d "
        "AND status = 'succeeded'",
        d=night,
    )
    active = airflow.value("SELECT count(*) FROM dag_run WHERE state IN ('queued', 'running')")
    return scored == len(models) and active == 0


def facts(night: Night, airflow: Db, fti: Db, home: Path, models: list[str], day: date) -> None:
    """Shards per worker, the tries of the sharded build, the versions, their tags and md5s."""
    from fti.store.versions import FeatureStore

    for host, count in airflow.rows(
        "SELECT hostname, count(*) FROM task_instance WHERE dag_id = 'churn_feature_pipeline' "
        "AND task_id = :task AND state = 'success' GROUP BY hostname ORDER BY hostname",
        task=BUILD,
    ):
        night.shards_per_worker[host] = count
    night.tries = sorted(
        airflow.rows(
            "SELECT map_index, try_number, hostname, state FROM task_instance_history "
            "WHERE dag_id = 'churn_feature_pipeline' AND task_id = :task "
            "UNION ALL SELECT map_index, try_number, hostname, state FROM task_instance "
            "WHERE dag_id = 'churn_feature_pipeline' AND task_id = :task",
            task=BUILD,
        )
    )
    store = FeatureStore(home / "store")
    for group, version, md5 in fti.rows(
        "SELECT group_name, version, dvc_md5 FROM feature_versions ORDER BY group_name, version"
    ):
        night.versions.setdefault(group, []).append(version)
        night.md5[group] = md5  # the newest: the night's
        # The partition files of the version (date -> object md5), from its DVC manifest.
        night.partitions[group] = {str(d): m for d, m in store._manifest(group, version)}
    tags = subprocess.run(
        ["git", "-C", str(home / "store"), "tag", "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for group in night.versions:
        night.tags[group] = sorted(t for t in tags if t.startswith(f"{group}/"))
    for model in models:
        night.predictions[model] = fti.value(
            "SELECT count(*) FROM predictions WHERE model_name = :m AND as_of_date = :d",
            m=model,
            d=day,
        )


def sharded_params(folder: Path, shards: int) -> Path:
    """params.yaml with ``shards.groups.<GROUP>`` set: that group's build runs as ``shards``
    mapped tasks whatever the size."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["shards"] = (params.get("shards") or {}) | {"groups": {GROUP: shards}}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def tail_line(path: Path, prefix: str) -> str:
    lines = [line for line in path.read_text().splitlines() if line.startswith(prefix)]
    return lines[-1] if lines else f"(no line {prefix!r} in {path})"


# ---- the report --------------------------------------------------------------------------------
def table(nights: list[Night]) -> str:
    base = nights[0]
    lines = [
        "| | " + " | ".join(n.case for n in nights) + " |",
        "|---" + "|---" * len(nights) + "|",
    ]

    def row(name: str, cells: list[str]) -> None:
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    row("night wall time (unpause -> predictions)", [f"{n.wall_s:.0f} s" for n in nights])
    row(
        f"{GROUP} shards per worker (successful tries)",
        [", ".join(f"{h}: {c}" for h, c in n.shards_per_worker.items()) for n in nights],
    )
    row(
        f"{BUILD} tries (shard/try host state)",
        ["; ".join(f"{m}/{t} {h} {s}" for m, t, h, s in n.tries) for n in nights],
    )
    row("killed", [json.dumps(n.killed) if n.killed else "-" for n in nights])
    row(
        "versions per group (catalog; git tags)",
        [
            "; ".join(f"{g} {v} {len(n.tags.get(g, []))} tags" for g, v in n.versions.items())
            for n in nights
        ],
    )
    row("predictions of the night", [json.dumps(n.predictions) for n in nights])
    row(
        "the night's version: DVC md5 equal to without kill",
        [
            "; ".join(
                f"{g} {'yes' if n.md5.get(g) == base.md5.get(g) else 'NO'} ({n.md5.get(g, '')[:8]})"
                for g in base.md5
            )
            for n in nights
        ],
    )
    row(
        "partition files equal to without kill",
        [
            f"{sum(n.partitions.get(g) == base.partitions.get(g) for g in base.partitions)}"
            f" of {len(base.partitions)} groups"
            for n in nights
        ],
    )
    return "\n".join(lines)


def verdicts(nights: list[Night]) -> list[str]:
    base, *others = nights
    found = []
    for n in nights:
        both = len(n.shards_per_worker) == len(WORKER_QUEUES)
        found.append(f"{n.case}: both workers ran shards of {GROUP}: {'yes' if both else 'NO'}")
        one = all(
            len(v) == len(set(v)) and v == list(range(1, len(v) + 1)) and len(n.tags[g]) == len(v)
            for g, v in n.versions.items()
        )
        found.append(
            f"{n.case}: one catalog version and one git tag each: {'yes' if one else 'NO'}"
        )
    for n in others:
        same = n.md5 == base.md5 and n.partitions == base.partitions
        found.append(
            f"{n.case}: every group's version equals {base.case}'s: {'yes' if same else 'NO'}"
        )
        retried = any(t > 1 and s == "success" for _, t, _, s in n.tries)
        found.append(
            f"{n.case}: the killed shard retried and succeeded: {'yes' if retried else 'NO'}"
        )
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=lambda t: int(float(t)), default=20_000)
    parser.add_argument("--shards", type=int, default=4, help=f"{GROUP}'s shards (default 4)")
    parser.add_argument(
        "--history-days", type=int, default=75, help="days of history before the night (>= 68)"
    )
    parser.add_argument(
        "--kill-after",
        type=float,
        default=1.0,
        help="seconds after a shard is seen running before its worker is killed (default 1)",
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=int,
        default=60,
        help="[scheduler] task_instance_heartbeat_timeout, seconds (default 60; Airflow's 300)",
    )
    parser.add_argument("--workdir", type=Path, help="where the homes go (default: a tmp folder)")
    parser.add_argument("--keep", action="store_true", help="keep homes and logs")
    parser.add_argument("--pg-url", default=PG_SERVER, help="PostgreSQL server, no database")
    parser.add_argument("--redis-server", default=shutil.which("redis-server"))
    args = parser.parse_args(argv)
    if not args.redis_server:
        parser.error("no redis-server here (apt-get install redis-server) nor --redis-server")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    temporary = args.workdir is None
    args.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="fti-bench-workers-")).resolve()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the workers' fits on a shared 2-core box
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    if midnight - now < timedelta(minutes=45):  # the scheduled night must stay yesterday
        sys.exit("within 45 minutes of 00:00 UTC: the scheduled night would change mid-run")
    yesterday = now.date() - timedelta(days=1)
    dates = {
        "night": yesterday,
        "history_start": yesterday - timedelta(days=args.history_days),
        "history_end": yesterday - timedelta(days=1),
    }
    raw = args.workdir / "raw"
    raw_start = max(dates["history_start"] - timedelta(days=30), PROJECT_START)
    log(f"{args.customers:,} customers, raw {raw_start}..{now.date()}, night {yesterday}")
    from churn_demo.generate import generate_at_scale

    generate_at_scale(raw, raw_start, now.date(), args.customers)
    nights = []
    clock = time.monotonic()
    try:
        for case, kill in (("without kill", False), ("with kill", True)):
            nights.append(run_night(case, kill, args, raw, dates))
    finally:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {"args": vars(args), "nights": [n.__dict__ for n in nights]}, indent=2, default=str
            )
        )
        if temporary and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    print(table(nights))
    print()
    print("\n".join(f"- {line}" for line in verdicts(nights)))
    print(
        f"\n{args.customers:,} customers, {args.shards} shards of {GROUP}, "
        f"{args.history_days} days of history; benchmark wall time {time.monotonic() - clock:.0f}s"
    )


if __name__ == "__main__":
    main()
