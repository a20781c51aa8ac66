"""The production description holds together: docker-compose.yaml, Dockerfile, .env.example,
.dockerignore, constraints.txt and fti's settings agree with each other.

No Docker needed: the files are parsed and cross-checked, so a broken reference, a secret written
into the compose file or a version drift fails here instead of at `docker compose up`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
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
def test_fti_variables_are_settings_fields(services: dict[str, dict[str, Any]]) -> None:
    prefix = Settings.model_config.get("env_prefix", "")
    assert prefix == "FTI_"
    fields = {f"{prefix}{name}".upper() for name in Settings.model_fields}
    seen = set()
    for name, service in services.items():
        for key in environment(service):
            if key.upper().startswith(prefix):
                assert key in fields, (
                    f"service {name}: {key} is not a field of fti.settings.Settings ({sorted(fields)})"
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
        assert component in commands, f"no Airflow service runs `airflow {component}`"
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
    bases = [
        arguments.split()[0]
        for instruction, arguments in dockerfile_instructions()
        if instruction == "FROM"
    ]
    assert len(bases) == 1, f"{DOCKERFILE}: expected one FROM, got {bases}"
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
    assert re.search(r"pip install .*-c constraints\.txt \"?\.(\[s3\])?", installed), (
        "the image must install fti with constraints.txt"
    )
    assert "[s3]" in installed, "the image needs the s3 extra (dvc-s3) for the S3 remote"
    pins = (REPO / "constraints.txt").read_text()
    assert re.search(r"^dvc-s3==\d", pins, re.M), (
        "constraints.txt must pin dvc-s3 (make constraints)"
    )
