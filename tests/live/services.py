"""The production shape's services as child processes of this machine: Redis, Airflow's
components (api-server, scheduler, dag-processor, triggerer) and Celery workers, configured as
docker-compose.yaml's services are, each a child process in its own process group.

Used by the live test (``tests/live/test_production.py``) and by the two-worker benchmark
(``benchmarks/bench_workers_kill.py``). Nothing here imports pytest: where a service fails,
exits or a wait times out, ``Children.fail`` is called with a message (the test passes
``pytest.fail``; the default raises ``ServiceFailure``).

Waits treat a request that times out or is refused, or a database that is not there yet, as
"not yet": a busy machine answers slowly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import psutil

from tests.process_tree import signal_tree

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE = REPO / "docker-compose.yaml"
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
ADMIN = "admin"
# Each worker records its own host name on its task instances (as containers would have).
HOSTNAME_CALLABLE = "tests.live.worker_hostname.worker_hostname"


class ServiceFailure(AssertionError):
    """A service exited, a command failed, or a wait timed out (when no ``fail`` is given)."""


def _raise(message: str) -> NoReturn:
    raise ServiceFailure(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    service: bool  # a long-running service (must stay up), not a one-shot command


@dataclass
class Children:
    """Child processes, each in its own process group, stopped together at the end."""

    logs: Path
    fail: Callable[[str], NoReturn] = _raise
    started: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str], service: bool = True) -> Child:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=self.logs,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, process, log, service)
        self.started.append(child)
        return child

    def finish(self, child: Child, seconds: float) -> None:
        """Wait for a one-shot command; fail with its log when it fails or hangs."""
        deadline = time.monotonic() + seconds
        while child.process.poll() is None:
            if time.monotonic() > deadline:
                self._signal(child, signal.SIGKILL)
                self.fail(f"{child.name} did not finish in {seconds:.0f}s:\n{tail(child.log)}")
            self.check()
            time.sleep(0.5)
        if child.process.returncode != 0:
            self.fail(f"{child.name} failed (exit {child.process.returncode}):\n{tail(child.log)}")

    def check(self) -> None:
        """Fail at once, with its log, when a service has exited."""
        for child in self.started:
            if child.service and child.process.poll() is not None:
                self.fail(
                    f"{child.name} exited with {child.process.returncode}:\n{tail(child.log)}"
                )

    def kill(self, child: Child) -> None:
        """SIGKILL a service's whole process group (it is no longer expected to be up)."""
        child.service = False
        self._signal(child, signal.SIGKILL)
        child.process.wait(timeout=30)

    @staticmethod
    def _signal(child: Child, signum: int) -> None:
        """The child's group and every process it started, also those in groups of their own
        (a task process of a killed worker dies with it, as in a killed container)."""
        signal_tree(child.process.pid, signum)

    def stop(self) -> None:
        """SIGTERM every group and tree (newest first), then SIGKILL what is left after 30 s."""
        members = [
            m
            for child in reversed(self.started)
            for m in signal_tree(child.process.pid, signal.SIGTERM)
        ]
        deadline = time.monotonic() + 30
        for child in reversed(self.started):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self._signal(child, signal.SIGKILL)  # the group: children of a finished leader too
            if child.process.poll() is None:
                child.process.wait(timeout=10)
        for member in members:  # what left the groups and outlived its leader
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                member.kill()


def wait_for(
    what: str,
    check: Callable[[], Any],
    seconds: float,
    children: Children,
    why: Callable[[], str] | None = None,
    every: float = 2.0,
    progress: Callable[[], Any] | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy; fail saying what (and ``why()``).

    A busy machine answers slowly: a request that times out or is refused, or a database that
    is not there yet, is "not yet". With ``progress`` (a value that changes while the work moves,
    such as task instances' states), ``seconds`` counts from the last change: a slow machine
    that is still working is "not yet", only a stall fails. A service that exited fails at once.
    """
    from sqlalchemy.exc import DBAPIError

    def observed(probe: Callable[[], Any]) -> Any:
        try:
            return probe()
        except (httpx.HTTPError, DBAPIError, OSError):
            return None

    started = time.monotonic()
    deadline = started + seconds
    last = observed(progress) if progress else None
    while True:
        children.check()
        result = observed(check)
        if result:
            return result
        if progress is not None:
            now = observed(progress)
            if now is not None and now != last:
                last, deadline = now, time.monotonic() + seconds
        if time.monotonic() > deadline:
            stalled = f"nothing moved for {seconds:.0f}s, " if progress else ""
            children.fail(
                f"timed out ({stalled}{time.monotonic() - started:.0f}s in all) waiting for "
                f"{what}\n{why() if why else ''}"
            )
        time.sleep(every)


class Api:
    """Airflow's REST API as a FAB user, the admin unless told (a JWT from /auth/token, renewed
    on 401)."""

    def __init__(self, url: str, password: str, username: str = ADMIN) -> None:
        self.url = url
        self.password = password
        self.username = username
        self.token: str | None = None

    def _headers(self) -> dict[str, str]:
        if self.token is None:
            response = httpx.post(
                f"{self.url}/auth/token",
                json={"username": self.username, "password": self.password},
                timeout=30,
            )
            response.raise_for_status()
            self.token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self.token}"}

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """The response as it came (a refusal too), with the user's token."""
        for _ in range(2):
            response = httpx.request(
                method,
                f"{self.url}{path}",
                headers=self._headers() | (headers or {}),
                timeout=30,
                **kwargs,
            )
            if response.status_code != 401:
                break
            self.token = None
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code >= 500:  # a busy server: a poll tries again
            response.raise_for_status()
        if response.is_error:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def page(self, path: str, login: bool, html: bool = False) -> httpx.Response:
        """A GET as a script (or a browser: ``html``), with the admin's token or without."""
        headers = self._headers() if login else {}
        if html:
            headers["Accept"] = "text/html"
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30)


class Db:
    """Plain SQL against one PostgreSQL database (no pool: a fresh connection per query)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self.engine = create_engine(url, poolclass=NullPool)

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]

    def value(self, sql: str, **params: Any) -> Any:
        rows = self.rows(sql, **params)
        return rows[0][0] if rows else None


def database_url(admin_url: str, name: str, driver: str) -> str:
    """``admin_url``'s server and user, another database and driver."""
    from sqlalchemy.engine import make_url

    return (
        make_url(admin_url)
        .set(drivername=driver, database=name)
        .render_as_string(hide_password=False)
    )


def compose_airflow_environment() -> dict[str, str]:
    """The environment every Airflow service of docker-compose.yaml shares."""
    import yaml

    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    return {str(k): str(v) for k, v in services["airflow-scheduler"]["environment"].items()}


# ---- starting the services ---------------------------------------------------------------------
def start_redis(children: Children, folder: Path, redis_server: str) -> str:
    """Redis with a password, set through a config file as compose does (not on the command
    line), on a free port; returns the Celery broker URL."""
    import secrets

    port, password = free_port(), secrets.token_hex(16)
    conf = folder / "redis.conf"
    conf.write_text(
        f'bind 127.0.0.1\nport {port}\nrequirepass {password}\nsave ""\nappendonly no\n'
    )
    children.start("redis", [redis_server, str(conf)], dict(os.environ))
    return f"redis://:{password}@127.0.0.1:{port}/0"


def airflow_environment(
    airflow_home: Path, api_port: int, airflow_db: str, broker_url: str, concurrency: int
) -> dict[str, str]:
    """Everything compose's Airflow services share, with this machine's hosts and ports, on
    this environment without its AIRFLOW*, FTI_* and AWS_* variables (the caller adds fti's).
    ``airflow_db`` is a ``postgresql+psycopg2`` URL (metadata and Celery's results)."""
    import secrets

    from cryptography.fernet import Fernet

    api_url = f"http://127.0.0.1:{api_port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "FTI_", "AWS_"))
    }
    return env | {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # The project's folder (compose's /opt/fti/project: churn_demo and params.yaml), and
        # tests.live.worker_hostname for the workers.
        "PYTHONPATH": str(REPO),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": FAB,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + airflow_db.replace("+psycopg2", "", 1),
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(20),
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "true",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }


def airflow_init(
    children: Children, env: dict[str, str], admin_password: str, roles: tuple[str, ...] = ()
) -> Child:
    """Compose's airflow-init: migrations, the feature-store pool, the FAB admin user; and
    ``roles``, empty FAB roles (teams' roles: params.yaml ``access`` grants them the project's
    DAGs), made before any DAG is parsed: a DAG naming a role FAB lacks fails to import."""
    teams = f"airflow roles create {' '.join(roles)}" if roles else ""
    return children.start(
        "airflow-init",
        [
            "bash",
            "-euc",
            f"""
            airflow db migrate
            echo "airflow-init: migrated ${{SECONDS}}s"
            airflow pools set fti_feature_store 1 "one feature-store publisher at a time"
            airflow users create --role Admin --username {ADMIN} --password "$ADMIN_PASSWORD" \
              --firstname fti --lastname admin --email admin@example.com
            {teams}
            echo "airflow-init: done ${{SECONDS}}s"
            """,
        ],
        env | {"ADMIN_PASSWORD": admin_password},
        service=False,
    )


def start_users(
    children: Children, env: dict[str, str], users: dict[str, tuple[str, ...]], password: str
) -> Child:
    """FAB users with the FAB command line, each with its roles (``users``: name -> roles, the
    first given at ``users create``, the others added) and ``password``."""
    lines = []
    for name, (first, *others) in users.items():
        lines.append(
            f'airflow users create --role {first} --username {name} --password "$USER_PASSWORD"'
            f" --firstname {name} --lastname team --email {name}@example.com"
        )
        lines += [f"airflow users add-role --username {name} --role {role}" for role in others]
    return children.start(
        "airflow-users",
        ["bash", "-euc", "\n".join([*lines, 'echo "airflow-users: done ${SECONDS}s"'])],
        env | {"USER_PASSWORD": password},
        service=False,
    )


def start_components(children: Children, env: dict[str, str]) -> None:
    """The api-server (on ``AIRFLOW__API__PORT``), scheduler, dag-processor and triggerer."""
    port = env["AIRFLOW__API__PORT"]
    children.start("api-server", ["airflow", "api-server", "--port", port], env)
    children.start("scheduler", ["airflow", "scheduler"], env)
    children.start("dag-processor", ["airflow", "dag-processor"], env)
    children.start("triggerer", ["airflow", "triggerer"], env)


def worker_environment(env: dict[str, str], hostname: str) -> dict[str, str]:
    """A Celery worker's environment: its own host name and log server port."""
    return env | {
        "LIVE_WORKER_HOSTNAME": hostname,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
    }


def start_worker(
    children: Children, name: str, env: dict[str, str], hostname: str, queues: str, concurrency: int
) -> Child:
    """A Celery worker on ``queues`` (comma-separated), with a ``worker_environment``."""
    return children.start(
        name,
        [
            "airflow",
            "celery",
            "worker",
            "--celery-hostname",
            f"{hostname}@%h",
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
        ],
        env,
    )


def wait_healthy(children: Children, api_url: str, seconds: float) -> None:
    """Until the api-server reports its database, scheduler, triggerer and dag-processor
    healthy."""
    logs = {child.name: child.log for child in children.started}

    def healthy() -> bool:
        health = httpx.get(f"{api_url}/api/v2/monitor/health", timeout=10).json()
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(part) or {}).get("status") == "healthy" for part in parts)

    wait_for(
        "Airflow's health (database, scheduler, triggerer, dag-processor)",
        healthy,
        seconds,
        children,
        lambda: tail(logs["api-server"]) + "\n" + tail(logs["scheduler"]),
    )


def wait_worker_ready(children: Children, worker: Child, what: str, seconds: float) -> None:
    """Until the Celery worker's log says it is ready (its log is new for each start)."""
    wait_for(
        what,
        lambda: " ready." in worker.log.read_text(errors="replace"),
        seconds,
        children,
        lambda: tail(worker.log),
    )


def wait_parsed(children: Children, api: Api, dags: list[str], seconds: float) -> None:
    """Until every DAG of ``dags`` is parsed (and no DAG file has an import error)."""
    log = next(child.log for child in children.started if child.name == "dag-processor")

    def parsed() -> bool:
        errors = api.call("GET", "/api/v2/importErrors")
        assert errors["total_entries"] == 0, f"DAG import errors: {errors}"
        known = {
            d["dag_id"] for d in api.call("GET", "/api/v2/dags", params={"limit": 100})["dags"]
        }
        return set(dags) <= known

    wait_for("the DAGs to be parsed", parsed, seconds, children, lambda: tail(log))


def start_fti_setup(
    children: Children,
    env: dict[str, str],
    start: object,
    end: object,
    raw: str = "",
    then: str = "",
) -> Child:
    """compose's ``fti-setup``: ``fti init``, then ``raw`` (a shell command that writes the raw
    files, if any), the feature runs of ``start``..``end``, both demo models, then ``then``
    (more shell, if any); each step echoes its seconds into the log."""
    script = f"""
        fti init
        echo "fti-setup: init ${{SECONDS}}s"
        {raw}
        {'echo "fti-setup: raw data ${SECONDS}s"' if raw else ""}
        fti features run --start {start} --end {end}
        echo "fti-setup: history {start}..{end} ${{SECONDS}}s"
        fti train --model churn
        fti train --model spend
        echo "fti-setup: models ${{SECONDS}}s"
        {then}
        """
    return children.start("fti-setup", ["bash", "-euc", script], env, service=False)
