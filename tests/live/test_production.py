"""The production shape, live: what docker-compose.yaml runs, as processes on this machine.

Docker does not run everywhere (not on CI's machines), so the test starts each service of the
compose file as a child process of its own (own process group, stopped in a ``finally`` even
when the test fails): Redis (the Celery broker) on a free port, an S3 emulator (moto) holding
the DVC remote, two fresh PostgreSQL databases on the server at ``FTI_TEST_PG_ADMIN_URL`` (one
for Airflow's metadata and Celery's results, one for fti), then ``airflow db migrate``, the
pool and the FAB admin user (compose's airflow-init), and the Airflow api-server, scheduler,
dag-processor, triggerer and two Celery workers, configured like compose's services (the keys
of compose's Airflow environment are checked against the test's). FTI_HOME is prepared like
an operator would: ``fti init``, a small churn history loaded with ``fti features run --start
--end`` and both models trained with ``fti train``.

Then the DAGs are unpaused and, each until it happens or Airflow stalls (a poll that times
out or is refused is "not yet"; a wait fails when no task instance or run changed state for
``RUN_SECONDS``, so a busy machine is slow, never failed):

1. the scheduled feature run (``@daily``, catchup off: yesterday) publishes a version of every
   group; each model's training starts from the assets (every group it reads), and inference
   scores yesterday: one prediction per entity in PostgreSQL; the version's DVC objects are in
   the bucket, and a ``git clone`` of the store with an empty cache reads it back from S3;
   fti's page inside Airflow refuses a request without the login and serves one with it;
2. a backfill of the two days before runs both dates at once, with tasks on both workers,
   and the versions stay contiguous; every task ran on its pipeline's queue (params.yaml
   ``queues``; worker 1 listens on features and training, worker 2 on features and inference)
   and the sharded groups' builds (``SHARDS``) ran one mapped task per shard, on both workers;
3. a backfill of the last two days, twice: no new feature version, no asset event, no
   training or inference run, no model version, and the prediction slices stay as they were;
4. access per team (params.yaml ``access.roles: [churn_team]``; airflow-init creates the
   roles, the FAB command line two users, each Viewer plus a team role): once the
   dag-processor has granted churn_team the project's DAGs, its member triggers
   churn_inference through the REST API and promotes a churn version from the fti page's
   form; a user of another team gets 403 on both and nothing changes.

A second team's project shares the deployment from the start: ``winback``
(tests/projects/churn_reader.py, in a folder of its own with its own params.yaml, operated by
other_team) builds nothing and reads churn's ``customer_activity`` and ``churned_30d``. Its
``fti check`` writes its manifest beside churn's and it has no feature pipeline; in phase 1
churn's scheduled run starts winback's training (an event of both groups it reads), which
registers a version owned by winback on the versions churn just published, and winback's
inference scores yesterday; in phase 4 a member of churn_team gets 403 promoting a winback
version, which other_team's user promotes.

How the services are started and waited for lives in ``tests/live/services.py``, shared with
``benchmarks/bench_workers_kill.py``.

Budget: about 15 minutes of one worker in the whole suite on a 2-core machine (the
other worker's tests beside it); each phase prints its time. Logs of every process
go to ``FTI_TEST_ARTIFACTS/live`` (default ``test-artifacts/live``). Quick local loop without it:
``pytest -m 'not live'``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PG_ADMIN_URL, REPO
from tests.live import services
from tests.live.services import (
    ADMIN,
    BIN,
    Api,
    Children,
    Db,
    compose_airflow_environment,
    tail,
    wait_for,
)

pytestmark = pytest.mark.live

ARTIFACTS = Path(os.environ.get("FTI_TEST_ARTIFACTS", REPO / "test-artifacts")) / "live"
BUCKET = "fti-dvc"
REMOTE = f"s3://{BUCKET}/feature-store"
CUSTOMERS = 300
# The second team's project: a copy of this module in a folder of its own (module READER_MODULE).
READER, READER_MODULE = "winback", "winback_team"
# The history: enough days before yesterday for a model's training window (labels mature 30
# days after their date; the spine's first 30 days warm up; two label dates a week apart).
HISTORY_DAYS = 80
PROJECT_START = date(2026, 1, 1)  # churn_demo.project's start_date: no raw file before it
GAP_DAYS = 2  # the days between the history and yesterday: the concurrent backfill's dates
WORKERS = ("fti-worker-1", "fti-worker-2")
# Both take the feature pipeline's shards; training and inference have a worker each (compose
# has a worker service per queue; here two processes share the three queues).
WORKER_QUEUES = {"fti-worker-1": "features,training", "fti-worker-2": "features,inference"}
SHARDS = {"customer_activity": 2}  # params.yaml shards.groups of the test
# Access per team: params.yaml access.roles of the test names TEAM, which may operate the
# project's DAGs; FAB users (Viewer plus a team role, as a team's members would be), one in
# TEAM, one in another team's role.
TEAM, OTHER_TEAM = "churn_team", "other_team"
USERS = {"churn_member": ("Viewer", TEAM), "outsider": ("Viewer", OTHER_TEAM)}
# What params.yaml access grants each listed role on each DAG of the project, in FAB's terms.
TEAM_GRANT = {"DAG:": {"can_read", "can_edit"}, "DAG Run:": {"can_read", "can_create"}}
WORKER_CONCURRENCY = 2
STARTUP_SECONDS = 240
RUN_SECONDS = 240
# Settings the test adds to compose's Airflow environment, and why (the others are compose's).
TEST_ONLY = {
    "AIRFLOW_HOME": "the image's /opt/airflow",
    "AIRFLOW__CORE__DAGS_FOLDER": "the image's default, where the Dockerfile copies dags/",
    "AIRFLOW__CORE__PLUGINS_FOLDER": "the image's default, where the Dockerfile copies plugins/",
    "AIRFLOW__API__PORT": "free port instead of the container's 8080",
    "AIRFLOW__API__BASE_URL": "free port instead of the container's 8080",
    "AIRFLOW__API__WORKERS": "one API worker process on a 2-core machine",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "two task slots per worker on a 2-core machine",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": "free port instead of 8974",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "free port per worker (one host)",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "free port instead of 8794",
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "each worker its own host name, as in containers",
}


# ---- helpers (starting and waiting for the services: tests/live/services.py) ---------------------
@dataclass
class Clock:
    """Phase timings, printed as they end (and kept for the summary)."""

    capsys: pytest.CaptureFixture[str]
    started: float = field(default_factory=time.monotonic)
    phases: list[tuple[str, float]] = field(default_factory=list)

    def say(self, text: str) -> None:
        with self.capsys.disabled():
            print(f"\n[live {time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        yield
        seconds = time.monotonic() - began
        self.phases.append((name, seconds))
        self.say(f"{name}: {seconds:.1f}s")


def admin_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def database_url(name: str, driver: str) -> str:
    """PG_ADMIN_URL's server and user, another database and driver."""
    return services.database_url(PG_ADMIN_URL, name, driver)


def same_keys_as_compose(env: dict[str, str]) -> None:
    """The test sets what compose's Airflow services set, and more only where TEST_ONLY says."""
    compose = set(compose_airflow_environment())
    ours = {key for key in env if key.startswith(("AIRFLOW", "FTI_", "AWS_", "PYTHONPATH"))}
    assert not compose - ours, (
        f"docker-compose.yaml sets {sorted(compose - ours)}, which the live test does not"
    )
    assert not ours - compose - set(TEST_ONLY), (
        f"the live test sets {sorted(ours - compose - set(TEST_ONLY))}, which compose does not"
    )


# ---- the test ----------------------------------------------------------------------------------
@dataclass
class Deployment:
    children: Children
    api: Api
    airflow: Db
    fti: Db
    home: Path
    airflow_home: Path
    env: dict[str, str]
    s3_env: dict[str, str]
    dags: list[str]  # churn's
    reader_dags: list[str]  # winback's (it has no feature pipeline)
    user_password: str  # of every user in USERS
    reads: dict[str, list[str]]  # model -> the groups it reads (its training's AssetAll)
    yesterday: date


def not_across_midnight(clock: Clock) -> None:
    """The @daily schedule makes a new run at 00:00 UTC: start after it, not just before."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    if midnight - now < timedelta(minutes=10):
        wait = (midnight - now).total_seconds() + 30
        clock.say(f"waiting {wait:.0f}s for 00:00 UTC: a new scheduled run would land mid-test")
        time.sleep(wait)


def live_params(folder: Path) -> Path:
    """The repository's params.yaml with ``SHARDS`` set (the groups' builds run as mapped tasks
    on both workers although the test's customer base would fit one shard) and TEAM operating
    the project's DAGs (``access``)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["shards"] = (params.get("shards") or {}) | {"groups": SHARDS}
    params["access"] = {"roles": [TEAM]}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def reader_folder(tmp: Path) -> Path:
    """The second team's folder, outside the repository: its definition and params.yaml (its
    model's hyper-parameters; OTHER_TEAM operates its DAGs; its own drift threshold: the
    scores of a linear model on 300 customers move more from night to night than churn's
    trees' do, PSI 0.21 three days after training)."""
    folder = tmp / READER
    folder.mkdir()
    shutil.copy(REPO / "tests" / "projects" / "churn_reader.py", folder / f"{READER_MODULE}.py")
    params = {
        "train": {READER: {"C": 0.5}},
        "monitor": {"psi_threshold": 0.5},
        "access": {"roles": [OTHER_TEAM]},
    }
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def check_shards_and_queues(d: Any) -> None:
    """Each pipeline's tasks ran on its queue, on workers listening on it; the sharded groups'
    builds ran one mapped task per shard, and both workers took shards."""
    queues = yaml.safe_load((REPO / "params.yaml").read_text())["queues"]
    ran = d.airflow.rows(
        "SELECT dag_id, task_id, map_index, queue, hostname FROM task_instance "
        "WHERE state = 'success'"
    )
    for dag_id, task_id, _, queue, host in ran:
        pipeline = (
            "features"
            if dag_id == "churn_feature_pipeline"
            else "training"
            if dag_id.endswith("_training")
            else "inference"
        )
        assert queue == queues[pipeline], (dag_id, task_id, queue)
        assert queue in WORKER_QUEUES[host].split(","), (dag_id, task_id, queue, host)
    for group, count in SHARDS.items():
        shards = [(m, h) for dag, t, m, _, h in ran if t == f"build__{group}"]
        assert {m for m, _ in shards} == set(range(count)), (group, shards)
    builders = {h for _, t, m, _, h in ran if t.startswith("build__") and m >= 0}
    assert builders == set(WORKERS), f"shards ran on {builders} only"


def test_production_shape(
    tmp_path: Path, postgres_server: None, capsys: pytest.CaptureFixture[str]
) -> None:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        message = "no redis-server here: `apt-get install redis-server`, as .ci/run does"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    clock = Clock(capsys)
    not_across_midnight(clock)
    logs = tmp_path / "logs"
    logs.mkdir()
    children = Children(logs, fail=pytest.fail)
    suffix = uuid.uuid4().hex[:10]
    databases = {"airflow": f"fti_live_airflow_{suffix}", "fti": f"fti_live_fti_{suffix}"}
    admin = admin_engine()
    created: list[str] = []
    airflow_home = tmp_path / "airflow"
    passed = False
    try:
        from sqlalchemy import text

        with admin.connect() as connection:
            for name in databases.values():
                connection.execute(text(f'CREATE DATABASE "{name}"'))
                created.append(name)
        deployment = start_services(tmp_path, children, databases, redis_server, clock)
        run_scenario(deployment, clock)
        passed = True
    finally:
        children.stop()
        with admin.connect() as connection:
            for name in created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for child in children.started:
            if child.log.exists():
                shutil.copy(child.log, ARTIFACTS / child.log.name)
        if not passed and (airflow_home / "logs").exists():
            shutil.rmtree(ARTIFACTS / "task-logs", ignore_errors=True)
            shutil.copytree(airflow_home / "logs", ARTIFACTS / "task-logs")
        summary = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in clock.phases)
        clock.say(f"total {time.monotonic() - clock.started:.0f}s ({summary})")


def start_services(
    tmp: Path,
    children: Children,
    databases: dict[str, str],
    redis_server: str,
    clock: Clock,
) -> Deployment:
    """Redis and the S3 emulator, then FTI_HOME and Airflow's database side by side, then
    Airflow's components; returns once every component is healthy and the DAGs are parsed."""
    services_started = time.monotonic()
    broker_url = services.start_redis(children, tmp, redis_server)
    s3_port = services.free_port()
    children.start(
        "s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)], dict(os.environ)
    )
    # The standard AWS variables DVC's S3 remote reads (compose: AWS_* from .env); dummy
    # credentials, in this test's processes only.
    s3_env = {
        "AWS_ACCESS_KEY_ID": "fti-live-test",
        "AWS_SECRET_ACCESS_KEY": secrets.token_hex(16),
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{s3_port}",
        "AWS_REGION": "us-east-1",
    }

    def bucket() -> bool:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=s3_env["AWS_ENDPOINT_URL_S3"],
            region_name=s3_env["AWS_REGION"],
            aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
        )
        try:
            client.create_bucket(Bucket=BUCKET)
        except Exception:  # noqa: BLE001 - the emulator is not listening yet
            return False
        return True

    wait_for("the S3 emulator", bucket, 60, children)
    clock.phases.append(("databases, Redis, S3", time.monotonic() - services_started))
    clock.say(f"PostgreSQL databases, Redis, S3 emulator and bucket: {clock.phases[-1][1]:.1f}s")

    home, airflow_home = tmp / "home", tmp / "airflow"
    api_port = services.free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    admin_password = secrets.token_hex(12)
    user_password = secrets.token_hex(12)
    airflow_db = database_url(databases["airflow"], "postgresql+psycopg2")
    # Everything compose's Airflow services share, with this machine's hosts and ports.
    env = services.airflow_environment(
        airflow_home, api_port, airflow_db, broker_url, WORKER_CONCURRENCY
    )
    env |= s3_env | {
        "FTI_HOME": str(home),
        "FTI_DB_URL": database_url(databases["fti"], "postgresql+psycopg"),
        "FTI_DVC_REMOTE": REMOTE,
        "FTI_PARAMS_FILE": str(live_params(tmp)),
        "FTI_PROJECT": "churn_demo.project:project",  # compose's default (the image's project)
        "FTI_ALERT_WEBHOOK_URL": "",  # compose's default: no alerts
    }
    same_keys_as_compose(env)

    # FTI_HOME (`fti init`, a small history, both models) and Airflow's database (compose's
    # airflow-init: migrations, the publish pool, the admin user) side by side.
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    history_end = yesterday - timedelta(days=GAP_DAYS + 1)
    history_start = yesterday - timedelta(days=HISTORY_DAYS)
    # Raw files from 30 days before the history (the label group's first dates need them) to
    # tomorrow (a run for today, should the test cross midnight after all, finds its files).
    raw_start = max(history_start - timedelta(days=30), PROJECT_START)
    reader = reader_folder(tmp)
    setup = services.start_fti_setup(
        children,
        env,
        history_start,
        history_end,
        raw=f'python -m churn_demo.generate --out "$FTI_HOME/raw" --start {raw_start} '
        f"--end {today + timedelta(days=1)} --customers {CUSTOMERS} --seed 3",
        # The second team, from its folder: its manifest beside churn's, its first model.
        then=f"""
        cd "{reader}"
        export FTI_PROJECT={READER_MODULE}:project FTI_PARAMS_FILE="{reader}/params.yaml"
        export PYTHONPATH="{reader}"
        fti check
        fti train --model {READER}
        echo "fti-setup: project {READER} (check, model) ${{SECONDS}}s"
        """,
    )
    init = services.airflow_init(children, env, admin_password, roles=(TEAM, OTHER_TEAM))
    with clock.phase("airflow-init (db migrate on PostgreSQL, pool, FAB admin user, roles)"):
        children.finish(init, 300)
    wait_for(
        "fti init's manifest", lambda: (home / "manifests" / "churn.json").exists(), 120, children
    )

    with clock.phase(
        "Airflow components up (api-server, scheduler, dag-processor, triggerer, 2 workers)"
    ):
        services.start_components(children, env)
        users = services.start_users(children, env, USERS, user_password)
        workers = []
        for number, hostname in enumerate(WORKERS, start=1):
            worker_env = services.worker_environment(env, hostname)
            same_keys_as_compose(worker_env)
            workers.append(
                services.start_worker(
                    children,
                    f"worker-{number}",
                    worker_env,
                    hostname,
                    WORKER_QUEUES[hostname],
                    WORKER_CONCURRENCY,
                )
            )
        services.wait_healthy(children, api_url, STARTUP_SECONDS)
        for number, worker in enumerate(workers, start=1):
            services.wait_worker_ready(children, worker, f"Celery worker {number}", STARTUP_SECONDS)

    with clock.phase("fti-setup (fti init, raw data, history, both models), FAB users: done"):
        children.finish(setup, 600)
        children.finish(users, 300)
    for line in setup.log.read_text().splitlines():
        if line.startswith("fti-setup: "):
            clock.say(line)

    api = Api(api_url, admin_password)
    import json

    manifest = json.loads((home / "manifests" / "churn.json").read_text())
    models = [model["name"] for model in manifest["models"]]
    dags = [
        "churn_feature_pipeline",
        *(f"{model}_training" for model in models),
        *(f"{model}_inference" for model in models),
    ]
    read = json.loads((home / "manifests" / f"{READER}.json").read_text())
    reader_dags = [f"{READER}_training", f"{READER}_inference"]

    with clock.phase("DAGs parsed"):
        services.wait_parsed(children, api, [*dags, *reader_dags, f"{READER}_retention"], 120)
    listed = {
        dag["dag_id"] for dag in api.call("GET", "/api/v2/dags", params={"limit": 100})["dags"]
    }
    assert f"{READER}_feature_pipeline" not in listed, listed  # it builds nothing
    return Deployment(
        children=children,
        api=api,
        airflow=Db(database_url(databases["airflow"], "postgresql+psycopg")),
        fti=Db(env["FTI_DB_URL"]),
        home=home,
        airflow_home=airflow_home,
        env=env,
        s3_env=s3_env,
        dags=dags,
        reader_dags=reader_dags,
        user_password=user_password,
        reads={
            model["name"]: [*model["groups"], model["label"]]
            for model in [*manifest["models"], *read["models"]]
        },
        yesterday=yesterday,
    )


# ---- the scenario ------------------------------------------------------------------------------
def run_scenario(d: Deployment, clock: Clock) -> None:
    groups = [row[0] for row in d.fti.rows("SELECT DISTINCT group_name FROM feature_versions")]
    models = [dag.removesuffix("_training") for dag in d.dags if dag.endswith("_training")]
    assert len(groups) == 4 and models == ["churn", "spend"], (groups, models)
    assert versions(d) == {group: [1] for group in groups}
    assert model_versions(d) == {model: [1] for model in [*models, READER]}
    y = d.yesterday

    # 1. The scheduled run of yesterday, the training it starts (churn's models and the second
    # team's), the scoring of yesterday.
    with clock.phase(f"scheduled feature run {y} -> training of three models -> inference"):
        for dag_id in [*d.dags, *d.reader_dags]:
            d.api.call("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        scheduled = wait_for_run(
            d, "the scheduled feature run", "churn_feature_pipeline", "run_type = 'scheduled'"
        )
        assert scheduled["logical_date"].date() == y, scheduled
        for model in [*models, READER]:
            training = wait_for_run(
                d,
                f"{model}'s asset-triggered training",
                f"{model}_training",
                "run_type = 'asset_triggered'",
            )
            # Started by AssetAll: an event of every group the model reads.
            consumed = {
                row[0]
                for row in d.airflow.rows(
                    "SELECT a.name FROM dag_run r "
                    "JOIN dagrun_asset_event x ON x.dag_run_id = r.id "
                    "JOIN asset_event e ON e.id = x.event_id JOIN asset a ON a.id = e.asset_id "
                    "WHERE r.dag_id = :dag AND r.run_id = :run",
                    dag=f"{model}_training",
                    run=training["run_id"],
                )
            }
            assert consumed == {f"fti_group_{g}" for g in d.reads[model]}, (model, consumed)
        for model in [*models, READER]:
            until(
                d,
                f"{model}'s predictions for {y}",
                lambda model=model: d.fti.value(
                    "SELECT count(*) FROM prediction_runs WHERE model_name = :m "
                    "AND as_of_date = :y AND status = 'succeeded'",
                    m=model,
                    y=y,
                ),
            )
        settle(d)
    assert versions(d) == {group: [1, 2] for group in groups}
    # Training read the versions the run published (the asset events name them).
    for model in [*models, READER]:
        newest = d.fti.rows(
            "SELECT version, feature_versions, label_version FROM model_versions "
            "WHERE name = :m ORDER BY version DESC LIMIT 1",
            m=model,
        )[0]
        assert newest[0] >= 2 and newest[2] == 2, (model, newest)
        assert set(newest[1].values()) == {2}, (model, newest)
    # The second team's version is its own, on churn's versions (the ones churn's run published).
    assert d.fti.value(
        "SELECT project FROM owners WHERE kind = 'model' AND name = :m", m=READER
    ) == (READER)
    spine_rows = check_predictions(d, models, y)
    check_bucket_and_clone(d, groups, y, spine_rows, clock)
    check_fti_pages(d, y)
    started_by_the_night = set(
        d.airflow.rows(
            "SELECT dag_id, run_id FROM dag_run WHERE dag_id <> 'churn_feature_pipeline'"
        )
    )

    # 2. Two dates at once (a backfill runs up to max_active_runs of them side by side).
    first, last = y - timedelta(days=GAP_DAYS), y - timedelta(days=1)
    with clock.phase(f"backfill {first}..{last}: two feature runs at once"):
        pair = backfill(d, first, last, "none", max_active_runs=2)
        assert len(pair) == GAP_DAYS, pair
        settle(d)
    (a_start, a_end), (b_start, b_end) = ((r["start_date"], r["end_date"]) for r in pair)
    assert max(a_start, b_start) < min(a_end, b_end), f"the two runs did not overlap: {pair}"
    assert versions(d) == {group: [1, 2, 3, 4] for group in groups}, versions(d)
    # Each group's versions stay contiguous: the two runs published v3 and v4 of every group.
    pair_runs = {f"churn_feature_pipeline/{r['run_id']}" for r in pair}
    by_group: dict[str, list[tuple[int, str]]] = {}
    for group, version, run in d.fti.rows(
        "SELECT group_name, version, run_id FROM feature_versions ORDER BY version"
    ):
        if run in pair_runs:
            by_group.setdefault(group, []).append((version, run))
    for group in groups:
        published = by_group.get(group, [])
        assert [v for v, _ in published] == [3, 4], (group, published)
        assert {run for _, run in published} == pair_runs, (group, published)
    hosts = d.airflow.rows(
        "SELECT hostname, count(*) FROM task_instance WHERE state = 'success' GROUP BY hostname"
    )
    pair_hosts = d.airflow.rows(
        "SELECT task_id, hostname FROM task_instance WHERE dag_id = 'churn_feature_pipeline' "
        "AND run_id = ANY(:runs) ORDER BY start_date",
        runs=[r["run_id"] for r in pair],
    )
    clock.say(f"tasks per worker: {dict(hosts)}; the two runs' tasks: {pair_hosts}")
    assert set(WORKERS) <= {host for host, _ in hosts}, f"not every worker ran tasks: {hosts}"
    assert set(WORKERS) <= {host for _, host in pair_hosts}, (
        f"the two concurrent runs did not use both workers: {pair_hosts}"
    )
    check_predictions(d, models, y)
    check_shards_and_queues(d)

    # 3. A backfill of published dates (the pair's last and the scheduled one), twice: nothing
    # new, nothing duplicated.
    before = state(d)
    for attempt in (1, 2):
        with clock.phase(f"backfill {last}..{y} again (pass {attempt})"):
            runs = backfill(d, last, y, "completed", max_active_runs=2)
            assert len(runs) == 2, runs
            settle(d)
        after = state(d)
        for key in before:
            assert after[key] == before[key], (
                f"backfill pass {attempt} changed {key}:\nbefore {before[key]}\nafter  {after[key]}"
            )
    check_predictions(d, models, y)
    with clock.phase("fti monitor runs --json"):
        check_monitor_runs(d, [first, last, y], started_by_the_night)

    # 4. Access per team: a member of TEAM triggers and promotes churn; an outsider cannot.
    with clock.phase("access per team: trigger and promote as a member and as an outsider"):
        check_team_access(d, y)


def versions(d: Deployment) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for group, version in d.fti.rows(
        "SELECT group_name, version FROM feature_versions ORDER BY group_name, version"
    ):
        found.setdefault(group, []).append(version)
    return found


def model_versions(d: Deployment) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for name, version in d.fti.rows(
        "SELECT name, version FROM model_versions ORDER BY name, version"
    ):
        found.setdefault(name, []).append(version)
    return found


def state(d: Deployment) -> dict[str, Any]:
    """What a backfill of published dates must leave as it was."""
    return {
        "feature versions": versions(d),
        "model versions": model_versions(d),
        "prediction slices": d.fti.rows(
            "SELECT model_name, as_of_date, count(*), count(DISTINCT entity_id), "
            "min(model_version), max(model_version), min(run_id), max(run_id) "
            "FROM predictions GROUP BY model_name, as_of_date ORDER BY 1, 2"
        ),
        "prediction runs": d.fti.value("SELECT count(*) FROM prediction_runs"),
        "asset events": d.airflow.rows(
            "SELECT a.name, count(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "GROUP BY a.name ORDER BY 1"
        ),
        "training and inference runs": d.airflow.rows(
            "SELECT dag_id, count(*) FROM dag_run WHERE dag_id <> 'churn_feature_pipeline' "
            "GROUP BY dag_id ORDER BY 1"
        ),
    }


def failed_runs(d: Deployment) -> str:
    """Failed or retried task instances, each with the tail of its log."""
    lines = []
    for dag_id, run_id, task_id, map_index, task_state, try_number in d.airflow.rows(
        "SELECT dag_id, run_id, task_id, map_index, state, try_number FROM task_instance "
        "WHERE state IN ('failed', 'up_for_retry', 'upstream_failed') ORDER BY start_date"
    ):
        lines.append(f"{dag_id} {run_id} {task_id}[{map_index}] {task_state} try {try_number}")
        for log in sorted(
            (d.airflow_home / "logs").glob(
                f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/**/*.log"
            )
        ):
            lines.append(tail(log, 25))
    active = d.airflow.rows(
        "SELECT dag_id, run_id, state FROM dag_run WHERE state IN ('queued', 'running')"
    )
    return "\n".join([f"active runs: {active}", *lines])


def no_failures(d: Deployment) -> None:
    """Fail at once when a task failed or waits for a retry (nothing here should need one)."""
    if d.airflow.value(
        "SELECT count(*) FROM task_instance "
        "WHERE state IN ('failed', 'up_for_retry', 'upstream_failed')"
    ) or d.airflow.value("SELECT count(*) FROM dag_run WHERE state = 'failed'"):
        pytest.fail(f"a task failed:\n{failed_runs(d)}")


def wait_for_run(d: Deployment, what: str, dag_id: str, where: str) -> dict[str, Any]:
    """The first run of ``dag_id`` matching ``where`` once it succeeded; fail if it failed."""

    def done() -> dict[str, Any] | None:
        rows = d.airflow.rows(
            "SELECT run_id, state, logical_date, start_date, end_date FROM dag_run "
            f"WHERE dag_id = :dag AND {where} ORDER BY id LIMIT 1",
            dag=dag_id,
        )
        if not rows:
            return None
        run_id, run_state, logical, start, end = rows[0]
        if run_state != "success":
            return None
        return {"run_id": run_id, "logical_date": logical, "start_date": start, "end_date": end}

    return until(d, what, done)


def until(d: Deployment, what: str, check: Callable[[], Any], every: float = 2.0) -> Any:
    """``wait_for`` a DAG-run outcome: fails at once when a task fails or is retried, and when
    no task instance or run changed state for RUN_SECONDS (a busy machine is slow, not stuck)."""

    def checked() -> Any:
        no_failures(d)
        return check()

    return wait_for(
        what, checked, RUN_SECONDS, d.children, lambda: failed_runs(d), every, airflow_moves(d)
    )


def airflow_moves(d: Deployment) -> Callable[[], Any]:
    """What changes while Airflow works: how many task instances and runs are in each state."""

    def states() -> tuple[Any, ...]:
        return tuple(
            d.airflow.rows(
                "SELECT 'task', state, count(*) FROM task_instance GROUP BY state "
                "UNION ALL SELECT 'run', state, count(*) FROM dag_run GROUP BY state "
                "ORDER BY 1, 2"
            )
        )

    return states


def settle(d: Deployment) -> None:
    """Until nothing runs and nothing is queued: every run that events started is done."""
    quiet: list[bool] = []

    def idle() -> bool:
        active = d.airflow.value(
            "SELECT count(*) FROM dag_run WHERE state IN ('queued', 'running')"
        )
        quiet.append(active == 0)
        return len(quiet) >= 2 and quiet[-1] and quiet[-2]

    until(d, "every DAG run to finish", idle, every=3)


def backfill(
    d: Deployment, first: date, last: date, reprocess: str, max_active_runs: int
) -> list[dict[str, Any]]:
    """A backfill of the feature pipeline over [first, last] through the REST API (what
    `airflow backfill create` does); returns its runs once the backfill completed."""
    created = d.api.call(
        "POST",
        "/api/v2/backfills",
        json={
            "dag_id": "churn_feature_pipeline",
            "from_date": f"{first.isoformat()}T00:00:00Z",
            "to_date": f"{last.isoformat()}T00:00:00Z",
            "max_active_runs": max_active_runs,
            "reprocess_behavior": reprocess,
            "run_backwards": False,
        },
    )
    backfill_id = created["id"]

    until(
        d,
        f"backfill {backfill_id} ({first}..{last})",
        lambda: d.api.call("GET", f"/api/v2/backfills/{backfill_id}")["completed_at"],
    )
    rows = d.airflow.rows(
        "SELECT run_id, state, logical_date, start_date, end_date FROM dag_run "
        "WHERE backfill_id = :b ORDER BY logical_date",
        b=backfill_id,
    )
    assert all(row[1] == "success" for row in rows), rows
    return [
        {"run_id": r[0], "logical_date": r[2], "start_date": r[3], "end_date": r[4]} for r in rows
    ]


def check_predictions(d: Deployment, models: list[str], day: date) -> int:
    """One prediction per entity of the spine's partition of ``day``, for every model."""
    from fti.store.versions import FeatureStore

    store = FeatureStore(d.home / "store")
    spine = "customer_activity"
    rows = store.read(spine, store.resolve(spine, "latest"), dates=[day]).num_rows
    assert rows > 0
    for model in models:
        count, distinct = d.fti.rows(
            "SELECT count(*), count(DISTINCT entity_id) FROM predictions "
            "WHERE model_name = :m AND as_of_date = :y",
            m=model,
            y=day,
        )[0]
        assert count == distinct == rows, (model, day, count, distinct, rows)
    return rows


def check_fti_pages(d: Deployment, day: date) -> None:
    """fti's pages inside Airflow need the UI's login (here FAB's): refused without it."""
    refused = d.api.page("/fti/", login=False)
    assert refused.status_code == 401, (refused.status_code, refused.text[:300])
    browser = d.api.page("/fti/", login=False, html=True)
    assert browser.status_code == 303 and "/auth/login" in browser.headers["location"], (
        browser.status_code,
        browser.headers,
    )
    served = d.api.page("/fti/", login=True)
    assert served.status_code == 200, (served.status_code, served.text[:300])
    for shown in ("customer_activity", "churned_30d", "churn", "spend", day.isoformat()):
        assert shown in served.text, shown


def check_monitor_runs(
    d: Deployment, nights: list[date], started_by_the_night: set[tuple[str, str]]
) -> None:
    """`fti monitor runs --json` against the api-server, as an operator runs it (the FAB
    admin's credentials in its environment only): every run succeeded and has a duration;
    the scheduled night lists its feature run and the training and inference runs it started,
    each backfilled night its feature run. A run started by asset events belongs to the night
    of the run that started it: the backfill's training and inference runs to the backfilled
    nights, though queued on the same day as the scheduled night's. The health page lists them
    too."""
    import json
    from urllib.parse import quote

    env = d.env | {
        "FTI_AIRFLOW_API_URL": d.api.url,
        "FTI_AIRFLOW_API_USERNAME": ADMIN,
        "FTI_AIRFLOW_API_PASSWORD": d.api.password,
    }
    done = subprocess.run(
        [str(BIN / "fti"), "monitor", "runs", "--json", "--nights", str(len(nights))],
        env=env,
        cwd=d.home.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed["dags"] == d.dags and listed["unresolved_failures"] == 0, listed
    nights_of: dict[tuple[str, str], str] = {}
    for run in listed["runs"]:
        assert run["state"] == "success" and run["duration_seconds"] > 0, run
        nights_of[(run["dag_id"], run["run_id"])] = run["night"]
    scheduled = {dag_id for (dag_id, _), night in nights_of.items() if night == str(nights[-1])}
    assert scheduled == set(d.dags), scheduled  # the feature, training and inference runs
    feature_nights = {
        night for (dag_id, _), night in nights_of.items() if dag_id == "churn_feature_pipeline"
    }
    assert feature_nights == {night.isoformat() for night in nights}, feature_nights
    # Every training and inference run so far, each in the night of the run that started it.
    started = {key: night for key, night in nights_of.items() if key[0] != "churn_feature_pipeline"}
    every = d.airflow.rows(  # churn's (the second team's are not this project's)
        "SELECT dag_id, run_id FROM dag_run "
        "WHERE dag_id = ANY(:dags) AND dag_id <> 'churn_feature_pipeline'",
        dags=d.dags,
    )
    assert set(started) == set(every), (started, every)
    for key, night in started.items():
        expected = (
            {str(nights[-1])} if key in started_by_the_night else {str(n) for n in nights[:-1]}
        )
        assert night in expected, (key, night, expected)
    # The health page (inside the api-server) reads the same runs through the REST API of the
    # server it runs in, as the viewing user: each run linked to its page.
    page = d.api.page("/fti/health", login=True)
    assert page.status_code == 200, page.text[:300]
    assert "DAG runs are not shown" not in page.text, page.text
    for dag_id, run_id in nights_of:
        assert f'href="/dags/{dag_id}/runs/{quote(run_id, safe="")}"' in page.text, run_id


def check_bucket_and_clone(
    d: Deployment, groups: list[str], day: date, spine_rows: int, clock: Clock
) -> None:
    """The new versions' DVC objects are in the bucket; a clone with an empty cache reads
    the new version of the spine from S3."""
    import boto3

    from fti.store.versions import FeatureStore

    client = boto3.client(
        "s3",
        endpoint_url=d.s3_env["AWS_ENDPOINT_URL_S3"],
        region_name=d.s3_env["AWS_REGION"],
        aws_access_key_id=d.s3_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=d.s3_env["AWS_SECRET_ACCESS_KEY"],
    )
    for _group, md5 in d.fti.rows(
        "SELECT group_name, dvc_md5 FROM feature_versions WHERE version = 2"
    ):
        key = f"feature-store/files/md5/{md5[:2]}/{md5[2:]}"
        client.head_object(Bucket=BUCKET, Key=key)  # raises when it is not there
    objects = client.list_objects_v2(Bucket=BUCKET, Prefix="feature-store/")["KeyCount"]
    clock.say(f"{objects} DVC objects in s3://{BUCKET}/feature-store")

    clone = d.home.parent / "clone"
    subprocess.run(
        ["git", "clone", "-q", str(d.home / "store"), str(clone)], check=True, timeout=60
    )
    assert not (clone / ".dvc" / "cache").exists()
    original = FeatureStore(d.home / "store").read("customer_activity", 2, dates=[day])
    saved = {key: os.environ.get(key) for key in d.s3_env}
    os.environ.update(d.s3_env)  # the clone's DVC reads the remote with these
    try:
        fetched = FeatureStore(clone).read("customer_activity", 2, dates=[day])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert fetched.num_rows == spine_rows
    assert fetched.sort_by("customer_id").equals(original.sort_by("customer_id"))
    assert any((clone / ".dvc" / "cache").rglob("*")), "the clone read without fetching"


def team_grants(d: Deployment) -> set[tuple[str, str, str]]:
    """(role, action, resource) of every per-DAG FAB permission TEAM and OTHER_TEAM hold
    (what access_control grants; FAB also gives every custom role "can read on Website", the
    UI's home page)."""
    return set(
        d.airflow.rows(
            "SELECT r.name, a.name, v.name FROM ab_permission_view_role pr "
            "JOIN ab_role r ON r.id = pr.role_id "
            "JOIN ab_permission_view pv ON pv.id = pr.permission_view_id "
            "JOIN ab_permission a ON a.id = pv.permission_id "
            "JOIN ab_view_menu v ON v.id = pv.view_menu_id "
            "WHERE r.name IN (:team, :other) AND (v.name LIKE :dag OR v.name LIKE :run)",
            team=TEAM,
            other=OTHER_TEAM,
            dag="DAG:%",
            run="DAG Run:%",
        )
    )


def champion(d: Deployment, model: str) -> tuple[int, int]:
    """The version ``model``'s champion alias points at, and how many changes it has had."""
    version = d.fti.value(
        "SELECT version FROM model_aliases WHERE name = :m AND alias = 'champion'", m=model
    )
    changes = d.fti.value(
        "SELECT count(*) FROM alias_events WHERE name = :m AND alias = 'champion'", m=model
    )
    return version, changes


def check_team_access(d: Deployment, day: date) -> None:
    """params.yaml ``access.roles: [TEAM]``, applied by Airflow's dag-processor through the FAB
    auth manager: TEAM holds read and edit on every DAG of the project and read and create on
    its runs, nothing else; OTHER_TEAM the same on the second team's DAGs (its params.yaml). A
    member of TEAM triggers churn_inference through the REST API and makes another churn
    version champion from the fti page's form (303, recorded with the member's name); an
    outsider (Viewer and OTHER_TEAM) gets 403 on the trigger, the promotion and the rollback,
    and nothing changes. The other way round on the second team's model: the member gets 403,
    the outsider, its team's, promotes."""
    expected = {
        (role, action, f"{prefix}{dag_id}")
        for role, dag_ids in (
            (TEAM, [*d.dags, "churn_retention"]),  # every DAG of each project
            (OTHER_TEAM, [*d.reader_dags, f"{READER}_retention"]),
        )
        for dag_id in dag_ids
        for prefix, actions in TEAM_GRANT.items()
        for action in actions
    }
    wait_for(
        f"the dag-processor to grant {TEAM} and {OTHER_TEAM} their projects' DAGs",
        lambda: team_grants(d) == expected,
        RUN_SECONDS,
        d.children,
        lambda: f"{TEAM} and {OTHER_TEAM} hold {sorted(team_grants(d))}",
    )
    member, outsider = (Api(d.api.url, d.user_password, name) for name in USERS)
    runs = "SELECT count(*) FROM dag_run WHERE dag_id = :dag"
    trigger = {"logical_date": None, "conf": {"as_of_date": day.isoformat(), "dry_run": True}}

    trigger_path = "/api/v2/dags/churn_inference/dagRuns"
    before = d.airflow.value(runs, dag="churn_inference")
    refused = outsider.request("POST", trigger_path, json=trigger)
    assert refused.status_code == 403, (refused.status_code, refused.text)
    assert d.airflow.value(runs, dag="churn_inference") == before

    def member_triggers() -> dict[str, Any] | None:
        """The member's new run; None on 403: FAB caches a user's permissions for [fab]
        cache_ttl (30 s), so a refusal may be "not yet"."""
        response = member.request("POST", trigger_path, json=trigger)
        if response.status_code == 403:
            return None
        assert response.status_code == 200, (response.status_code, response.text)
        return dict(response.json())

    run_id = wait_for(
        f"{member.username} to trigger churn_inference", member_triggers, 60, d.children
    )["dag_run_id"]
    done = wait_for_run(d, f"{member.username}'s dry run", "churn_inference", "run_type = 'manual'")
    assert done["run_id"] == run_id, (done, run_id)

    # The fti page's forms: a user of the other team sees none and is refused; the model's
    # team promotes. Churn's model, then the second team's.
    promote_as(d, "churn", refused=outsider, allowed=member)
    promote_as(d, READER, refused=member, allowed=outsider)


def promote_as(d: Deployment, model: str, refused: Api, allowed: Api) -> None:
    """On the fti page of a version of ``model`` that is not champion: ``refused`` sees no form
    and gets 403 on promote and rollback, nothing changes; ``allowed`` promotes it (303), and
    the alias event names that user."""
    held, changes = champion(d, model)
    versions = model_versions(d)[model]
    target = max(v for v in versions if v != held)
    page = f"/fti/models/{model}/{target}"
    origin = {"Origin": d.api.url}
    seen = refused.request("GET", page)
    assert seen.status_code == 200 and "<form" not in seen.text, seen.text[:300]
    # (Refused before the token is looked at: the permission is checked first.)
    for path in (f"{page}/promote", f"/fti/models/{model}/{held}/rollback"):
        response = refused.request(
            "POST", path, data={"reason": "not mine", "token": "0" * 64}, headers=origin
        )
        assert response.status_code == 403 and "Forbidden" in response.text, response.text
    assert champion(d, model) == (held, changes)

    form = re.search(
        r'<form method="post" action="[^"]*/promote".*?name="token" value="([0-9a-f]+)"',
        allowed.request("GET", page).text,
        re.S,
    )
    assert form, f"{allowed.username} sees no promote form on {page}"
    token = form.group(1)
    promoted = allowed.request(
        "POST", f"{page}/promote", data={"reason": "team decision", "token": token}, headers=origin
    )
    assert promoted.status_code == 303, (promoted.status_code, promoted.text)
    assert champion(d, model) == (target, changes + 1)
    actor = d.fti.value(
        "SELECT actor FROM alias_events WHERE name = :m ORDER BY id DESC LIMIT 1", m=model
    )
    assert actor == allowed.username, actor
