"""The production description holds together: docker-compose.yaml, Dockerfile, .env.example,
.dockerignore, constraints.txt and fti's settings agree with each other.

No Docker needed: the files are parsed and cross-checked, so a broken reference, a secret written
into the compose file or a version drift fails here instead of at `docker compose up`.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from fti.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERIGNORE = REPO / ".dockerignore"
CONSTRAINTS = REPO / "constraints.txt"
PYPROJECT = REPO / "pyproject.toml"

# Words that make an environment variable a secret: its value must come from .env.
SECRET_WORDS = {"PASSWORD", "SECRET", "KEY", "TOKEN"}
# A secret's value: exactly one required interpolation, `${VAR}` or `${VAR:?message}`; never a
# `${VAR:-default}`, whose default would be a secret written in the file.
REQUIRED_VARIABLE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}")
# Compose interpolation: `${VAR}`, `${VAR:-x}`, `${VAR:?x}`, `$VAR` (after dropping `$$` escapes).
BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
BARE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# user:password@ in a URL.
URL_CREDENTIALS = re.compile(r"://(?P<user>[^/:@\s]*):(?P<password>\$\{[^}]*\}|[^@\s/]*)@")
# scheme://[credentials@]host[:port]
URL_HOST = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?:(?:[^@/\s$]|\$\{[^}]*\})*@)?(?P<host>[^:/\s]+)"
)


# ---- readers -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and data.get("services"), f"{COMPOSE}: no services"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), (
            f"{ENV_EXAMPLE}:{number}: expected NAME=value, got {line!r}"
        )
        assert name not in values, f"{ENV_EXAMPLE}:{number}: {name} listed twice"
        values[name] = value
    return values


@pytest.fixture(scope="module")
def airflow_pin() -> str:
    found = re.search(r"^apache-airflow==(\S+)$", CONSTRAINTS.read_text(), re.MULTILINE)
    assert found, f"{CONSTRAINTS}: no apache-airflow==X.Y.Z pin"
    return found.group(1)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever of compose's two forms it is written in."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {name: value for name, value in pairs}
    return {str(name): "" if value is None else str(value) for name, value in env.items()}


def strings(node: Any) -> list[str]:
    """Every string (keys and values) in a parsed YAML tree."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(key) + strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def interpolated(text: str) -> set[str]:
    unescaped = text.replace("$$", "")
    return set(BRACED.findall(unescaped)) | set(BARE.findall(unescaped))


def is_secret(name: str) -> bool:
    return bool(SECRET_WORDS & set(name.upper().split("_")))


def volume_source(entry: Any) -> tuple[str, str] | None:
    """(source, target) of a named-volume mount; None for bind mounts and tmpfs."""
    if isinstance(entry, dict):
        if entry.get("type", "volume") != "volume" or not entry.get("source"):
            return None
        return str(entry["source"]), str(entry.get("target", ""))
    source, _, rest = str(entry).partition(":")
    if not rest or source.startswith((".", "/", "~", "$")):
        return None
    return source, rest.split(":", 1)[0]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


# ---- references --------------------------------------------------------------------------------
def test_depends_on_names_existing_services(services: dict[str, dict[str, Any]]) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        targets = depends if isinstance(depends, list) else list(depends)
        for target in targets:
            assert target in services, (
                f"service {name} depends on {target!r}, which is not a service"
            )
            assert target != name, f"service {name} depends on itself"
            if isinstance(depends, dict):
                condition = (depends[target] or {}).get("condition", "service_started")
                assert condition in conditions, f"service {name}: unknown condition {condition!r}"
                if condition == "service_healthy":
                    assert "healthcheck" in services[target], (
                        f"service {name} waits for {target} to be healthy, but {target} has no healthcheck"
                    )


def test_named_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in compose["services"].items():
        for entry in service.get("volumes") or []:
            mount = volume_source(entry)
            if mount:
                assert mount[0] in declared, (
                    f"service {name} mounts volume {mount[0]!r}, not declared under volumes:"
                )
                used.add(mount[0])
    assert declared <= used, f"declared but never mounted: {sorted(declared - used)}"


def test_fti_home_is_one_named_volume_in_every_service_that_uses_it(
    services: dict[str, dict[str, Any]],
) -> None:
    homes = {}
    for name, service in services.items():
        home = environment(service).get("FTI_HOME")
        if home is None:
            continue
        mounts = {
            target: source
            for source, target in filter(None, map(volume_source, service.get("volumes") or []))
        }
        assert home in mounts, (
            f"service {name} sets FTI_HOME={home} but mounts no named volume there"
        )
        homes[name] = (home, mounts[home])
    assert homes, "no service sets FTI_HOME"
    assert len(set(homes.values())) == 1, f"services disagree on FTI_HOME or its volume: {homes}"


def test_urls_point_at_services(services: dict[str, dict[str, Any]]) -> None:
    """Every service URL in an environment names a service of this file (S3 URLs name buckets)."""
    for name, service in services.items():
        for key, value in environment(service).items():
            # Celery's result backend is an SQLAlchemy URL behind a `db+` prefix.
            found = URL_HOST.match(value.removeprefix("db+"))
            if found and found.group("scheme") != "s3":
                host = found.group("host")
                assert host in services or host == "localhost", (
                    f"service {name}: {key} points at {host!r}, which is not a service"
                )


# ---- secrets -----------------------------------------------------------------------------------
def test_secrets_come_from_env_file(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in environment(service).items():
            if is_secret(key):
                assert REQUIRED_VARIABLE.fullmatch(value), (
                    f"service {name}: {key} must be a required ${{VAR:?message}} from .env, got {value!r}"
                )
    for text in strings(services):
        for found in URL_CREDENTIALS.finditer(text):
            assert REQUIRED_VARIABLE.fullmatch(found.group("password")), (
                f"a URL carries a literal password: {text!r}; use ${{VAR:?message}} from .env"
            )


def test_env_example_holds_only_placeholders(env_example: dict[str, str]) -> None:
    for name, value in env_example.items():
        # Access key ids name an account (MinIO allows 3-20 characters); the keys are the secret.
        if is_secret(name) and not name.endswith("_ID"):
            assert value == "change-me", (
                f"{ENV_EXAMPLE}: {name} must be the placeholder change-me, not a value"
            )


def test_every_variable_is_listed_in_env_example(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    used = set().union(*(interpolated(text) for text in strings(compose)))
    assert used, "docker-compose.yaml interpolates nothing: where do its secrets come from?"
    missing = used - set(env_example)
    assert not missing, (
        f"used in docker-compose.yaml but missing from .env.example: {sorted(missing)}"
    )
    unused = set(env_example) - used
    assert not unused, (
        f"listed in .env.example but never used by docker-compose.yaml: {sorted(unused)}"
    )


# ---- fti settings ------------------------------------------------------------------------------
def serve_variables() -> set[str]:
    """The FTI_SERVE_* variables the scoring service reads (fti.serve.config), apart from
    fti.settings.Settings."""
    from fti.serve.config import serve_config

    read: set[str] = set()

    class Recording(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            read.add(key)
            return super().get(key, default)

    serve_config(Recording())
    return read


def test_fti_variables_are_settings_fields(services: dict[str, dict[str, Any]]) -> None:
    prefix = Settings.model_config.get("env_prefix", "")
    assert prefix == "FTI_"
    fields = {f"{prefix}{name}".upper() for name in Settings.model_fields} | serve_variables()
    assert "FTI_SERVE_TOKEN" in fields
    seen = set()
    for name, service in services.items():
        for key in environment(service):
            if key.upper().startswith(prefix):
                assert key in fields, (
                    f"service {name}: {key} is neither a field of fti.settings.Settings nor read "
                    f"by fti.serve.config ({sorted(fields)})"
                )
                seen.add(key)
    assert {"FTI_HOME", "FTI_DB_URL", "FTI_DVC_REMOTE"} <= seen


def test_fti_settings_point_at_postgres_and_s3(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        env = environment(service)
        if "FTI_DB_URL" in env:
            assert env["FTI_DB_URL"].startswith("postgresql+psycopg://"), (
                f"service {name}: FTI_DB_URL"
            )
        if name in airflow_services(services):  # fti-serve reads no feature-store version
            assert env.get("FTI_DVC_REMOTE", "").startswith("s3://"), (
                f"service {name}: FTI_DVC_REMOTE"
            )
        if "FTI_DVC_REMOTE" in env:
            assert env["FTI_DVC_REMOTE"].startswith("s3://"), f"service {name}: FTI_DVC_REMOTE"
            assert env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"), (
                f"service {name}: DVC's S3 remote needs an endpoint (AWS_ENDPOINT_URL_S3)"
            )


# ---- Airflow -----------------------------------------------------------------------------------
def test_airflow_components_run_and_share_their_keys(services: dict[str, dict[str, Any]]) -> None:
    airflow = {
        name: service
        for name, service in services.items()
        if environment(service).get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor"
    }
    commands = {str(service.get("command")) for service in airflow.values()}
    for component in ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker"):
        assert any(c.startswith(component) for c in commands), (
            f"no Airflow service runs `airflow {component}`"
        )
    # Every pipeline's queue (params.yaml, as the DAGs read it) has a worker service of its own.
    queues = yaml.safe_load((REPO / "params.yaml").read_text())["queues"]
    listening = {
        name: set(shlex.split(c)[shlex.split(c).index("--queues") + 1].split(","))
        for name, c in ((n, str(s.get("command"))) for n, s in airflow.items())
        if c.startswith("celery worker") and "--queues" in c
    }
    for pipeline, queue in queues.items():
        workers = [name for name, names in listening.items() if queue in names]
        assert workers == [f"airflow-worker-{pipeline}"], f"queue {queue!r}: workers {workers}"
    init = [
        name
        for name, service in airflow.items()
        if "airflow db migrate" in " ".join(strings(service.get("command")))
    ]
    assert len(init) == 1 and "fti init" in " ".join(strings(airflow[init[0]]["command"])), (
        "one service must run `airflow db migrate` and `fti init`"
    )
    shared = [
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__BROKER_URL",
        "FTI_DB_URL",
    ]
    for key in shared:
        values = {name: environment(service).get(key) for name, service in airflow.items()}
        assert len(set(values.values())) == 1 and None not in values.values(), (
            f"{key} must be set, and the same, in every Airflow service: {values}"
        )


def test_airflow_image_tag_matches_constraints(
    services: dict[str, dict[str, Any]], airflow_pin: str
) -> None:
    built = {
        name: service.get("image", "") for name, service in services.items() if "build" in service
    }
    assert built, "no service builds the fti image"
    for name, image in built.items():
        _, _, tag = image.rpartition(":")
        assert tag.split("-")[0] == airflow_pin, (
            f"service {name}: image {image!r} does not carry apache-airflow=={airflow_pin} from constraints.txt"
        )
    for name, service in services.items():
        image = service.get("image", "")
        if image.startswith("apache/airflow:"):
            assert image.split(":", 1)[1].split("-")[0] == airflow_pin, f"service {name}: {image}"


def test_dockerfile_base_matches_constraints_and_python(airflow_pin: str) -> None:
    # Stages other than the image: the project's files (`FROM scratch AS project`).
    bases = [
        arguments.split()[0]
        for instruction, arguments in dockerfile_instructions()
        if instruction == "FROM" and arguments.split()[0] != "scratch"
    ]
    assert len(bases) == 1, f"{DOCKERFILE}: expected one FROM of an image, got {bases}"
    requires = tomllib.loads(PYPROJECT.read_text())["project"]["requires-python"]
    python = re.search(r">=\s*(\d+\.\d+)", requires)
    assert python, f"{PYPROJECT}: requires-python has no lower bound"
    assert bases[0] == f"apache/airflow:{airflow_pin}-python{python.group(1)}", (
        f"{DOCKERFILE}: FROM {bases[0]}; constraints.txt pins apache-airflow=={airflow_pin}, "
        f"pyproject.toml requires python {requires}"
    )


def test_dockerfile_copies_what_the_context_sends() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", f"{DOCKERIGNORE}: start from '*' and re-include what the image needs"
    included = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    assert not {".env", ".venv", ".fti", ".git"} & included, f"{DOCKERIGNORE} sends {included}"
    copies = [
        arguments for instruction, arguments in dockerfile_instructions() if instruction == "COPY"
    ]
    assert copies, f"{DOCKERFILE}: copies nothing"
    for arguments in copies:
        if "--from=" in arguments:  # from a stage or a named context, not this one
            continue
        words = [word for word in arguments.split() if not word.startswith("--")]
        for source in words[:-1]:
            assert (REPO / source).exists(), (
                f"{DOCKERFILE}: COPY {source}: no such file in the repo"
            )
            assert source.rstrip("/") in included, (
                f"{DOCKERFILE}: COPY {source}, but {DOCKERIGNORE} leaves it out"
            )
    installed = " ".join(
        arguments for instruction, arguments in dockerfile_instructions() if instruction == "RUN"
    )
    assert re.search(r"pip install .*-c constraints\.txt \"?\.\[production\]", installed), (
        "the image must install fti with its production extra, pinned by constraints.txt"
    )
    pins = CONSTRAINTS.read_text()
    for package in PRODUCTION_PACKAGES:
        assert re.search(rf"^{re.escape(package)}==\d", pins, re.M | re.I), (
            f"constraints.txt must pin {package} (make constraints)"
        )


# ---- what the services run is installed -------------------------------------------------------
# The packages of the production extra (pyproject.toml), each pinned in constraints.txt.
PRODUCTION_PACKAGES = [
    "apache-airflow-providers-celery",
    "celery",
    "redis",
    "apache-airflow-providers-fab",
    "asyncpg",
    "psycopg2-binary",
    "dvc-s3",
]
# Compose's `${VAR:?message}` interpolations, replaced by a stand-in value to parse a URL.
INTERPOLATION = re.compile(r"\$\{[^}]*\}")


def airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in services.items()
        if environment(service).get("AIRFLOW__CORE__EXECUTOR")
    }


@functools.cache
def production_closure() -> frozenset[str]:
    """The installed distributions that `pip install ".[production]"` brings (normalised names)."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [("fti", frozenset({"production"}))]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        if key in seen and not extras:
            continue
        seen.add(key)
        for text in dist.requires or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras or {""}):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return frozenset(seen)


@functools.cache
def distributions_by_module() -> dict[str, set[str]]:
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    return {
        module: {canonicalize_name(d) for d in dists}
        for module, dists in packages_distributions().items()
    }


def distribution_of(module: str) -> set[str]:
    """The installed distributions that provide ``module``'s top-level package."""
    return distributions_by_module().get(module.split(".")[0], set())


def airflow_argv(service: dict[str, Any]) -> list[list[str]]:
    """The `airflow ...` command lines a service runs: its command (the image's entrypoint runs
    `airflow <command>`), the `airflow` lines of a bash command, and of its healthcheck."""
    command = service.get("command")
    lines: list[list[str]] = []
    if isinstance(command, str):
        lines.append(shlex.split(command))
    scripts = [s for s in strings(command) if "\n" in s or s.startswith("airflow ")]
    scripts += [
        s for s in strings((service.get("healthcheck") or {}).get("test")) if "airflow" in s
    ]
    for script in scripts:
        joined = script.replace("$$", "$").replace("\\\n", " ")
        for line in re.split(r"\n|&&|;", joined):
            words = shlex.split(line.strip()) if line.strip() else []
            if words[:1] == ["airflow"]:
                # Shell variables stand for values the parser only needs to be there.
                lines.append(["x" if "$" in word else word for word in words[1:]])
    return lines


def test_every_airflow_command_exists(services: dict[str, dict[str, Any]]) -> None:
    """Each `airflow` command line of compose parses with the installed Airflow and providers
    (`celery worker` needs the Celery provider, `users create` the FAB auth manager)."""
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    checked = 0
    for name, service in airflow_services(services).items():
        for argv in airflow_argv(service):
            try:
                parser.parse_args(argv)
            except SystemExit:
                pytest.fail(f"service {name}: `airflow {' '.join(argv)}` is not a valid command")
            checked += 1
    assert checked >= 8, "expected the components, airflow-init and the healthchecks"


def test_auth_manager_and_executor_are_installed(services: dict[str, dict[str, Any]]) -> None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.executors.base_executor import BaseExecutor
    from airflow.executors.executor_loader import ExecutorLoader

    closure = production_closure()
    for name, service in airflow_services(services).items():
        env = environment(service)
        manager = env.get("AIRFLOW__CORE__AUTH_MANAGER")
        assert manager, f"service {name}: no AIRFLOW__CORE__AUTH_MANAGER"
        executor = env["AIRFLOW__CORE__EXECUTOR"]
        executor = ExecutorLoader.executors.get(executor, executor)
        for path, base in ((manager, BaseAuthManager), (executor, BaseExecutor)):
            module, _, attribute = path.rpartition(".")
            # ImportError: the provider is missing, or broken (a Celery it does not fit)
            loaded = getattr(importlib.import_module(module), attribute)
            assert issubclass(loaded, base), f"service {name}: {path} is not a {base.__name__}"
            assert distribution_of(path) & closure, (
                f"service {name}: {path} comes from {distribution_of(path)}, which the "
                "production extra does not install"
            )


def test_celery_app_of_the_worker_healthcheck_imports(services: dict[str, dict[str, Any]]) -> None:
    found = 0
    for name, service in services.items():
        for text in strings((service.get("healthcheck") or {}).get("test")):
            for module in re.findall(r"--app\s+(\S+)\.app\b", text):
                assert importlib.import_module(module).app, f"service {name}: {module}.app"
                found += 1
    assert found, "the worker's healthcheck pings the Celery app"


def test_drivers_named_in_urls_are_installed(services: dict[str, dict[str, Any]]) -> None:
    """Every URL a service connects with loads its driver: the SQLAlchemy dialect and DBAPI
    (and the async driver Airflow derives from its metadata URL), Celery's broker transport,
    the DVC remote's filesystem; each from a package the production extra installs."""
    from sqlalchemy.engine import make_url

    closure = production_closure()

    def installed(module: str, why: str) -> None:
        __import__(module)  # ImportError: the driver is missing
        assert distribution_of(module) & closure, (
            f"{why}: {module} comes from {distribution_of(module)}, which the production "
            "extra does not install"
        )

    checked: set[str] = set()
    for name, service in airflow_services(services).items():
        env = {key: INTERPOLATION.sub("x", value) for key, value in environment(service).items()}
        sql = {key: env[key] for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "FTI_DB_URL")}
        sql["AIRFLOW__CELERY__RESULT_BACKEND"] = env[
            "AIRFLOW__CELERY__RESULT_BACKEND"
        ].removeprefix("db+")
        if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC" in env:
            sql["async metadata URL"] = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]
        else:  # what Airflow derives (airflow.settings._get_async_conn_uri_from_sync)
            scheme, rest = sql["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].split(":", 1)
            base = scheme.split("+", 1)[0]
            aio = {"postgresql": "asyncpg", "mysql": "aiomysql", "sqlite": "aiosqlite"}
            sql["async metadata URL"] = f"{base}+{aio[base]}:{rest}" if base in aio else scheme
        for key, url in sql.items():
            dialect = make_url(url).get_dialect()
            dialect.import_dbapi()  # ImportError: the driver is missing
            installed(dialect.driver, f"service {name}: {key} ({url.split(':')[0]})")
            checked.add(url.split(":")[0])
        broker = env["AIRFLOW__CELERY__BROKER_URL"].split(":")[0]
        from kombu.transport import resolve_transport

        transport = resolve_transport(broker)
        assert transport, f"service {name}: no Celery transport for {broker}://"
        installed(
            {"redis": "redis", "rediss": "redis"}.get(broker, broker), f"service {name}: broker"
        )
        if env.get("FTI_DVC_REMOTE", "").startswith("s3://"):
            import fsspec

            fsspec.get_filesystem_class("s3")
            installed("dvc_s3", f"service {name}: FTI_DVC_REMOTE")
    assert {
        "postgresql+psycopg2",
        "postgresql",
        "postgresql+asyncpg",
        "postgresql+psycopg",
    } <= checked


def test_shared_secrets_are_one_env_entry_each(services: dict[str, dict[str, Any]]) -> None:
    """Fernet key, JWT secret and API secret key: each one .env variable, the same in every
    Airflow service (tokens signed by one component are checked by the others)."""
    secrets = [
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
    ]
    variables = {}
    for key in secrets:
        values = {environment(service).get(key) for service in airflow_services(services).values()}
        assert len(values) == 1 and None not in values, f"{key} differs between services: {values}"
        (value,) = values
        assert REQUIRED_VARIABLE.fullmatch(value), f"{key}: {value!r} is not one required variable"
        variables[key] = BRACED.match(value).group(1)  # type: ignore[union-attr]
    assert len(set(variables.values())) == len(secrets), f"secrets share a variable: {variables}"


# ---- the project: built into the image, mounted into every fti container ---------------------
# Where the image holds the project (its package and params.yaml) and compose mounts it.
PROJECT_ROOT = PurePosixPath("/opt/fti/project")
# The compose variables that choose the project, with the churn demo as their defaults.
PROJECT_VARIABLES = {
    "FTI_PROJECT_DIR": ".",
    "FTI_PROJECT_PACKAGE": "churn_demo",
    "FTI_PROJECT": "churn_demo.project:project",
}
# Compose interpolation: `$$`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`.
INTERPOLATE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """``text`` as compose reads it with ``env`` as .env (a required variable that is missing
    fails the test, as compose stops)."""

    def value(found: re.Match[str]) -> str:
        if found.group(0) == "$$":
            return "$"
        name, colon, kind, rest = found.groups()
        current = env.get(name)
        unset = current is None or (colon == ":" and current == "")
        if kind == "-" and unset:
            return rest
        if kind == "?" and unset:
            pytest.fail(f"compose would stop: {name}: {rest}")
        return current or ""

    return INTERPOLATE.sub(value, text)


def fti_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run fti: the Airflow components and fti-serve."""
    return {name: s for name, s in services.items() if "FTI_HOME" in environment(s)}


def bind_mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        entry
        for entry in service.get("volumes") or []
        if isinstance(entry, dict) and entry.get("type") == "bind"
    ]


def project_mounts(service: dict[str, Any], env: dict[str, str]) -> dict[str, Path]:
    """Target inside PROJECT_ROOT (relative) -> host source, of the service's project mounts."""
    found = {}
    for entry in bind_mounts(service):
        target = PurePosixPath(interpolate(entry["target"], env))
        if target.is_relative_to(PROJECT_ROOT):
            source = Path(interpolate(entry["source"], env))
            found[str(target.relative_to(PROJECT_ROOT))] = (
                source if source.is_absolute() else COMPOSE.parent / source
            )
    return found


def dockerfile_stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """(stage name or base, its instructions) for each FROM of the Dockerfile."""
    stages: list[tuple[str, list[tuple[str, str]]]] = []
    for instruction, arguments in dockerfile_instructions():
        if instruction == "FROM":
            words = arguments.split()
            stages.append((words[2] if len(words) == 3 else words[0], []))
        elif stages:
            stages[-1][1].append((instruction, arguments))
    return stages


def key_values(arguments: str) -> dict[str, str]:
    """`A=1 B=2` (ENV, ARG) as a dict; a bare `A` maps to ''."""
    return dict((word.split("=", 1) + [""])[:2] for word in shlex.split(arguments))


def test_every_fti_container_runs_the_same_project(services: dict[str, dict[str, Any]]) -> None:
    """airflow-init (its `fti init` writes the manifest the DAG files read), every Airflow
    component and fti-serve: one FTI_PROJECT, PYTHONPATH on the project's folder, its
    params.yaml, and the same read-only mounts of the project's package and params.yaml."""
    fti = fti_services(services)
    assert set(airflow_services(services)) | {"fti-serve"} <= set(fti), sorted(fti)
    seen = set()
    for name, service in fti.items():
        env = environment(service)
        assert str(PROJECT_ROOT) in env.get("PYTHONPATH", "").split(":"), (
            f"service {name}: PYTHONPATH must hold {PROJECT_ROOT}, got {env.get('PYTHONPATH')!r}"
        )
        assert env.get("FTI_PARAMS_FILE") == str(PROJECT_ROOT / "params.yaml"), (
            f"service {name}: FTI_PARAMS_FILE must be the project's {PROJECT_ROOT}/params.yaml"
        )
        mounts = [
            entry
            for entry in bind_mounts(service)
            if entry["target"].startswith(f"{PROJECT_ROOT}/")
        ]
        for entry in mounts:
            assert entry.get("read_only") is True, f"service {name}: mount {entry['target']} rw"
            assert (entry.get("bind") or {}).get("create_host_path") is False, (
                f"service {name}: mount {entry['target']} must not create a missing source"
            )
        key = (
            env.get("FTI_PROJECT"),
            yaml.safe_dump(sorted(mounts, key=lambda e: e["target"])),
        )
        seen.add(key)
        targets = {str(PurePosixPath(e["target"]).relative_to(PROJECT_ROOT)) for e in mounts}
        assert targets == {"${FTI_PROJECT_PACKAGE:-churn_demo}", "params.yaml"}, (
            f"service {name}: mounts {sorted(targets)} into {PROJECT_ROOT}"
        )
    assert len(seen) == 1, f"fti's services disagree on FTI_PROJECT or the project's mounts: {seen}"
    ((project, _),) = seen
    assert project == f"${{FTI_PROJECT:-{PROJECT_VARIABLES['FTI_PROJECT']}}}", project


def test_image_carries_the_project_where_compose_mounts_it(
    services: dict[str, dict[str, Any]],
) -> None:
    """The image's copy (Dockerfile) comes from the folder compose mounts, lands at the same
    paths, under the same settings, with the same defaults: the churn demo."""
    stages = dict(dockerfile_stages())
    assert "project" in stages, f"{DOCKERFILE}: no stage `project` (the default project's files)"
    demo = {arguments.split()[-1] for i, arguments in stages["project"] if i == "COPY"}
    assert demo == {"/churn_demo", "/params.yaml"}, f"{DOCKERFILE}: stage project copies {demo}"
    image = dockerfile_stages()[-1][1]
    args = {k: v for i, a in image if i == "ARG" for k, v in key_values(a).items()}
    image_env = {k: v for i, a in image if i == "ENV" for k, v in key_values(a).items()}
    defaults = {k: v for k, v in PROJECT_VARIABLES.items() if k != "FTI_PROJECT_DIR"}
    assert args == defaults, f"{DOCKERFILE}: ARG defaults {args}, compose's {defaults}"
    copied = {
        interpolate(a.split()[-1].replace("${", "${X_"), {f"X_{k}": v for k, v in args.items()})
        for i, a in image
        if i == "COPY" and "--from=project" in a
    }
    assert any(
        i == "COPY"
        and "--from=project" in a
        and "params.yaml" in a.split()
        and a.split()[-1].rstrip("/") == str(PROJECT_ROOT)
        for i, a in image
    ), f"{DOCKERFILE}: the project's params.yaml must go into {PROJECT_ROOT}/"
    for name, service in fti_services(services).items():
        env = environment(service)
        assert image_env["PYTHONPATH"] == env["PYTHONPATH"], f"service {name}: PYTHONPATH"
        assert image_env["FTI_PARAMS_FILE"] == env["FTI_PARAMS_FILE"], f"service {name}"
        assert image_env["FTI_PROJECT"] == "${FTI_PROJECT}", f"{DOCKERFILE}: ENV FTI_PROJECT"
        mounted = {str(PROJECT_ROOT / t) for t in project_mounts(service, {})}
        # the image's params.yaml and requirements.txt go in with one COPY into the folder
        assert mounted - {str(PROJECT_ROOT / "params.yaml")} <= copied, (
            f"service {name} mounts {sorted(mounted)}; the image copies {sorted(copied)}"
        )
        build = service.get("build")
        if build:
            assert build["additional_contexts"]["project"] == "${FTI_PROJECT_DIR:-.}", name
            assert build["args"] == {k: f"${{{k}:-{v}}}" for k, v in defaults.items()}, name
            mount_dir = {
                str(e["source"]).rsplit("/", 1)[0]
                for e in bind_mounts(service)
                if e["target"].startswith(f"{PROJECT_ROOT}/")
            }
            assert mount_dir == {build["additional_contexts"]["project"]}, (
                f"service {name}: the image is built from one folder, {mount_dir} is mounted"
            )


def test_default_project_is_the_demo(
    services: dict[str, dict[str, Any]], env_example: dict[str, str]
) -> None:
    """With .env.example's values, or none, the mounts are the repository's churn_demo and
    params.yaml, and FTI_PROJECT loads."""
    from fti.definitions import load_project

    for name, values in {"no values": {}, ".env.example": env_example}.items():
        for service_name, service in fti_services(services).items():
            mounts = project_mounts(service, values)
            assert mounts == {
                "churn_demo": COMPOSE.parent / "./churn_demo",
                "params.yaml": COMPOSE.parent / "./params.yaml",
            }, f"{name}: service {service_name} mounts {mounts}"
            assert all(path.exists() for path in mounts.values())
            reference = interpolate(environment(service)["FTI_PROJECT"], values)
            assert load_project(reference).name == "churn"


def test_a_new_project_runs_from_the_mount(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """A project `fti new` writes, named in .env, as the containers see it: a stand-in for
    /opt/fti/project holding what compose mounts there, the services' environment with that
    folder for /opt/fti/project; airflow-init's `fti init` writes the new project's manifest,
    and fti-serve's settings load the same definition and params.yaml."""
    bin_dir = Path(sys.executable).parent
    name = "compose_sales"
    hang_guard = 1800
    (tmp_path / "teams").mkdir()
    made = subprocess.run(
        [str(bin_dir / "fti"), "new", str(tmp_path / "teams" / name)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=hang_guard,
    )
    assert made.returncode == 0, made.stderr
    dotenv = {
        "FTI_PROJECT_DIR": str(tmp_path / "teams" / name),
        "FTI_PROJECT_PACKAGE": name,
        "FTI_PROJECT": f"{name}.project:project",
        "POSTGRES_FTI_PASSWORD": "x",
        "FTI_SERVE_TOKEN": "x",
    }
    root = tmp_path / "opt-fti-project"  # stands for PROJECT_ROOT inside the containers
    home = tmp_path / "fti-home"
    outside = tmp_path / "cwd"  # no .env here: the containers' working folder has none
    outside.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FTI_", "PYTHON"))}

    def container_env(service: dict[str, Any]) -> dict[str, str]:
        root.mkdir(exist_ok=True)
        for target, source in project_mounts(service, dotenv).items():
            assert source.exists(), f"compose would stop: bind source {source} does not exist"
            if (root / target).exists():
                continue
            # A copy, not a symlink: settings resolve paths, and a bind mount has none.
            if source.is_dir():
                shutil.copytree(source, root / target)
            else:
                shutil.copy2(source, root / target)
        env = {
            key: interpolate(value, dotenv).replace(str(PROJECT_ROOT), str(root))
            for key, value in environment(service).items()
            if key.startswith("FTI_") or key == "PYTHONPATH"
        }
        # This machine's database and home instead of fti-db and the fti-home volume.
        env |= {"FTI_HOME": str(home), "FTI_DB_URL": f"sqlite:///{home / 'fti.db'}"}
        env.pop("FTI_DVC_REMOTE", None)  # S3 in compose: a local remote in FTI_HOME here
        return base | env

    init = services["airflow-init"]
    assert any(line.strip() == "fti init" for line in strings(init["command"])[-1].splitlines())
    done = subprocess.run(
        [str(bin_dir / "fti"), "init"],
        cwd=outside,
        env=container_env(init),
        capture_output=True,
        text=True,
        timeout=hang_guard,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (written,) = (home / "manifests").glob("*.json")  # the one project's
    manifest = json.loads(written.read_text())
    assert manifest["reference"] == f"{name}.project:project", manifest["reference"]

    probe = (
        "import json; from fti.definitions import load_project; "
        "from fti.settings import get_settings; s = get_settings(); "
        "print(json.dumps([load_project(s.project).name, str(s.params_file), "
        "s.params_file.is_file()]))"
    )
    serve = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=outside,
        env=container_env(services["fti-serve"]),
        capture_output=True,
        text=True,
        timeout=hang_guard,
    )
    assert serve.returncode == 0, serve.stderr
    assert json.loads(serve.stdout) == [name, str(root / "params.yaml"), True]


# ---- fti-serve ---------------------------------------------------------------------------------
def test_fti_serve_runs_the_serve_command(services: dict[str, dict[str, Any]]) -> None:
    """fti-serve: the fti image, `fti serve` with options the installed CLI accepts, its token
    from .env without a default, a healthcheck on /health at the port it listens on, started
    after fti-db and airflow-init, and no fixed host port (so it scales)."""
    import typer

    from fti.cli import app

    serve = services.get("fti-serve")
    assert serve, "no service fti-serve"
    built = {s.get("image") for s in services.values() if "build" in s}
    assert serve.get("image") in built, f"fti-serve runs {serve.get('image')}, not the fti image"
    entrypoint, command = serve.get("entrypoint") or [], serve.get("command") or []
    assert entrypoint[-1:] == ["fti"] and command[:1] == ["serve"], (entrypoint, command)

    cli = typer.main.get_command(app)  # a click group (typer's vendored click)
    parent = cli.context_class(cli, info_name="fti")
    command_of_serve = cli.get_command(parent, "serve")  # type: ignore[attr-defined]
    assert command_of_serve, (
        "`fti serve` does not exist in the installed CLI (fti/cli/); fti-serve runs it"
    )
    params = command_of_serve.make_context("serve", list(command[1:]), parent=parent).params
    helped = subprocess.run(
        [str(Path(sys.executable).parent / "fti"), "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert helped.returncode == 0, helped.stdout + helped.stderr
    port = int(params["port"])
    assert params["host"] == "0.0.0.0", "listen on every interface of the container"

    env = environment(serve)
    assert REQUIRED_VARIABLE.fullmatch(env.get("FTI_SERVE_TOKEN", "")), (
        f"fti-serve: FTI_SERVE_TOKEN must be a required ${{VAR:?message}}, got {env.get('FTI_SERVE_TOKEN')!r}"
    )
    leaked = {k for k in env if k.startswith(("AIRFLOW", "AWS_"))}
    assert not leaked, f"fti-serve needs no Airflow or S3 settings: {sorted(leaked)}"

    health = " ".join(strings((serve.get("healthcheck") or {}).get("test")))
    assert f"http://localhost:{port}/health" in health, f"fti-serve healthcheck: {health!r}"
    depends = serve.get("depends_on") or {}
    assert (depends.get("fti-db") or {}).get("condition") == "service_healthy", depends
    assert (depends.get("airflow-init") or {}).get("condition") == (
        "service_completed_successfully"
    ), depends

    for entry in serve.get("ports") or []:
        published, _, target = interpolate(str(entry), {}).rpartition(":")
        assert target == str(port), f"fti-serve publishes {target}, listens on {port}"
        low, _, high = published.rpartition(":")[2].partition("-")
        assert high and int(high) > int(low), (
            f"fti-serve publishes a fixed host port {published}: a second replica could not "
            "start; use a range or none"
        )
    homes = [
        (source, target)
        for source, target in filter(None, map(volume_source, serve.get("volumes") or []))
    ]
    assert homes and all(str(e).endswith(":ro") for e in serve["volumes"] if isinstance(e, str)), (
        f"fti-serve mounts fti-home read-only: {serve['volumes']}"
    )
