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
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
FEAST_VENV = REPO / "benchmarks" / ".feast-venv"
FEAST_CONSTRAINTS = REPO / "benchmarks" / "feast-constraints.txt"
FEAST_PYTHON = "python3.11"
START, END = "2026-01-01", "2026-06-30"  # the demo's raw history: project start .. last day
CUSTOMERS, SEED = 2000, 7
MODEL = "churn"
GROUPS = ("customer_activity", "customer_profile")
ONE_GROUP = GROUPS[0]  # the group of the feature-retrieval-only rows
SERVERS = ("baseline", "fti", "feast", "fti-features", "feast-1group")
PROCESS = {"fti-features": "fti", "feast-1group": "feast"}  # the process a row's requests go to
KEY = "customer_id"
TOKEN = "bench-serving-token-0123456789abcdef"  # a throwaway token for a loopback server
BATCH = 100  # entities of the many-entity request
SCENARIOS = {"c1": "1 entity, c=1", "c8": "1 entity, c=8", "batch": f"{BATCH} entities, c=1"}
HANG_GUARD_S = 600  # a server that is not up by then is broken, not slow

from workers import _settings, log  # noqa: E402


# ---- the FTI home: the demo's data, features and champion ---------------------------------------
def fti_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTI_")}
    return env | {
        "FTI_HOME": str(home),
        "FTI_PARAMS_FILE": str(REPO / "params.yaml"),
        "FTI_SERVE_TOKEN": TOKEN,
    }


def run(argv: list[str], env: dict[str, str] | None, logfile: Path, cwd: Path | None = None) -> str:
    """Run a command; its output goes to ``logfile`` (and its stdout is returned)."""
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    with logfile.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}\n")
    if done.returncode:
        raise SystemExit(f"{' '.join(argv[:4])} failed (exit {done.returncode}); see {logfile}")
    return done.stdout


def fti(*args: str, home: Path, logfile: Path) -> str:
    return run([str(VENV_BIN / "fti"), *args], fti_env(home), logfile)


def online_groups(db: Path) -> dict[str, int]:
    """The versions the online store holds per group ({} before migration 0009 or a
    materialisation)."""
    import sqlite3

    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(connection.execute("SELECT group_name, version FROM online_state"))
    except sqlite3.OperationalError:
        return {}
    finally:
        connection.close()


def ensure_home(work: Path) -> Path:
    """The demo's FTI home in ``work/home``: raw data, every group's features, the churn
    champion, the online store filled. Built once (a few minutes), reused while present."""
    home = work / "home"
    logfile = work / "setup.log"
    ready = home / ".bench-serving-ready"
    if not ready.exists():
        shutil.rmtree(home, ignore_errors=True)
        log(f"building the demo home in {home} ({CUSTOMERS} customers, {START}..{END})")
        fti("init", home=home, logfile=logfile)
        run(
            [
                sys.executable,
                "-m",
                "churn_demo.generate",
                *("--out", str(home / "raw"), "--start", START, "--end", END),
                *("--customers", str(CUSTOMERS), "--seed", str(SEED)),
            ],
            fti_env(home),
            logfile,
            cwd=REPO,
        )
        fti("features", "run", "--start", START, "--end", END, home=home, logfile=logfile)
        fti("train", "--model", MODEL, home=home, logfile=logfile)
        ready.write_text("built by benchmarks/bench_serving.py\n")
    db = home / "fti.db"
    if set(online_groups(db)) < set(GROUPS):
        log("filling the online store (fti init migrates, fti features materialise)")
        fti("init", home=home, logfile=logfile)
        if "materialise" in fti("features", "--help", home=home, logfile=logfile):
            fti("features", "materialise", home=home, logfile=logfile)
        else:  # the CLI command is not there yet: its function
            code = (
                "from fti.settings import Settings\n"
                "from fti.online.materialise import materialise_latest\n"
                "materialise_latest(Settings())"
            )
            run([sys.executable, "-c", code], fti_env(home), logfile, cwd=REPO)
    return home


@dataclass(frozen=True)
class Champion:
    version: int
    artifact: str
    features: list[tuple[str, str]]  # (group, feature) in training order


def champion(home: Path, logfile: Path) -> Champion:
    shown = json.loads(fti("models", "show", MODEL, "--json", home=home, logfile=logfile))
    features = [tuple(f.split(".", 1)) for f in shown["features"]]
    return Champion(shown["version"], shown["artifact_uri"], features)  # type: ignore[arg-type]


def feature_rows(home: Path) -> dict[str, Any]:
    """Each group's newest row per customer in its newest version (what the online store
    holds), as pandas frames with ``feature_date``."""
    from fti.store.versions import DATE_COLUMN, FeatureStore

    store = FeatureStore(_settings(str(home)).store_path)
    frames = {}
    for group in GROUPS:
        version = store.versions(group)[-1]
        frame = store.read(group, version).to_pandas()
        frame = frame.sort_values([KEY, DATE_COLUMN], kind="stable").drop_duplicates(
            KEY, keep="last"
        )
        frames[group] = frame.reset_index(drop=True)
        frames[group].attrs["version"] = version
    return frames


# ---- Feast: its venv, a feature repository, apply + materialize ---------------------------------
def ensure_feast_venv(logfile: Path) -> Path:
    feast = FEAST_VENV / "bin" / "feast"
    if not feast.exists():
        log(f"creating {FEAST_VENV} from {FEAST_CONSTRAINTS.name} (a few minutes)")
        run([FEAST_PYTHON, "-m", "venv", str(FEAST_VENV)], None, logfile)
        pip = str(FEAST_VENV / "bin" / "pip")
        run([pip, "install", "-c", str(FEAST_CONSTRAINTS), "feast"], None, logfile)
    return feast


def _feast_type(column: Any) -> str:
    import pandas as pd

    if pd.api.types.is_integer_dtype(column):
        return "Int64"
    if pd.api.types.is_float_dtype(column):
        return "Float64"
    if pd.api.types.is_string_dtype(column):
        return "String"
    raise SystemExit(f"no Feast type for {column.name} ({column.dtype}) in this benchmark")


FEATURE_STORE_YAML = """\
project: fti_bench
provider: local
registry: data/registry.db
online_store:
  type: sqlite
  path: data/online_store.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""


def _definitions(frames: dict[str, Any]) -> str:
    """Feast's definitions: the customer entity, one FileSource + FeatureView per group."""
    lines = [
        "from datetime import timedelta",
        "",
        "from feast import Entity, FeatureView, Field, FileSource",
        "from feast.types import Float64, Int64, String",
        "",
        f'customer = Entity(name="customer", join_keys=["{KEY}"])',
    ]
    for group, frame in frames.items():
        fields = ", ".join(
            f'Field(name="{c}", dtype={_feast_type(frame[c])})'
            for c in frame.columns
            if c not in (KEY, "event_timestamp")
        )
        lines += [
            "",
            f"{group}_source = FileSource(",
            f'    path="{group}.parquet", timestamp_field="event_timestamp"',
            ")",
            f"{group} = FeatureView(",
            f'    name="{group}",',
            "    entities=[customer],",
            "    ttl=timedelta(days=3650),",
            f"    schema=[{fields}],",
            f"    source={group}_source,",
            "    online=True,",
            ")",
        ]
    return "\n".join(lines) + "\n"


def ensure_feast_repo(work: Path, frames: dict[str, Any], feast: Path, logfile: Path) -> Path:
    """Write the repository (Parquets of the same rows), ``feast apply``, ``feast materialize``;
    redone whenever the rows differ from the last time."""
    import hashlib

    import pandas as pd

    repo = work / "feast_repo"
    feast_frames = {}
    for group, frame in frames.items():
        out = frame.drop(columns="feature_date").copy()
        out.insert(
            1, "event_timestamp", pd.to_datetime(frame["feature_date"]).dt.tz_localize("UTC")
        )
        feast_frames[group] = out
    digest = hashlib.sha256(
        b"".join(
            pd.util.hash_pandas_object(f, index=False).to_numpy().tobytes()
            for f in feast_frames.values()
        )
        + FEATURE_STORE_YAML.encode()
        + _definitions(feast_frames).encode()
    ).hexdigest()
    marker = repo / ".bench-serving-ready"
    if marker.exists() and marker.read_text() == digest:
        return repo
    log(f"writing the Feast repository {repo}, feast apply, feast materialize")
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "data").mkdir(parents=True)
    for group, frame in feast_frames.items():
        frame.to_parquet(repo / f"{group}.parquet", index=False)
    (repo / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    (repo / "definitions.py").write_text(_definitions(feast_frames))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTI_")} | {
        "FEAST_USAGE": "False"
    }
    run([str(feast), "apply"], env, logfile, cwd=repo)
    run(
        [str(feast), "materialize", f"{START}T00:00:00", "2026-07-01T00:00:00"],
        env,
        logfile,
        cwd=repo,
    )
    marker.write_text(digest)
    return repo


# ---- the servers -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    measures: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    health: str
    single: Callable[[str], tuple[str, bytes]]  # entity -> (path, JSON body)
    many: Callable[[list[str]], tuple[str, bytes]]
    headers: list[tuple[str, str]] = field(default_factory=list)
    features: list[tuple[str, str]] = field(default_factory=list)  # (group, feature) answered
    reference: str | None = None  # the row its ratios are against
    owner: bool = True  # False: another row's server process answers (it starts and stops it)
    process: subprocess.Popen[bytes] | None = None

    def start(self, logdir: Path) -> None:
        if not self.owner:
            return
        out = (logdir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own argv
            self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=out, start_new_session=True
        )

    def wait_ready(self, logdir: Path) -> None:
        """Poll the health path until it answers 200 (hang guard only)."""
        import httpx

        if not self.owner:
            return

        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited; see {logdir / (self.name + '.log')}")
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{self.port}{self.health}", timeout=5).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"{self.name} did not answer {self.health} in {HANG_GUARD_S}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # its own session: the server and workers
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()


def _feast_request(refs: list[str], *entities: str) -> tuple[str, bytes]:
    body = {"features": refs, "entities": {KEY: [int(e) for e in entities]}}
    return "/get-online-features", _json(body)


def _feast_many(refs: list[str], entities: list[str]) -> tuple[str, bytes]:
    return _feast_request(refs, *entities)


def make_servers(
    names: list[str],
    home: Path,
    model: Champion,
    frames: dict[str, Any],
    feast: Path | None,
    feast_repo: Path | None,
    fti_extra: dict[str, str],
) -> list[Server]:
    env = fti_env(home)
    servers = []
    ports: dict[str, int] = {}  # process kind -> its port (rows of one kind share the process)
    one_group = [
        (ONE_GROUP, c) for c in frames[ONE_GROUP].columns if c not in (KEY, "feature_date")
    ]
    fti_argv = [str(VENV_BIN / "fti"), "serve", "--host", "127.0.0.1"]
    feast_argv = [str(feast), "serve", "--host", "127.0.0.1"]
    feast_env = {k: v for k, v in os.environ.items() if not k.startswith("FTI_")} | {
        "FEAST_USAGE": "False"
    }
    for name in names:
        kind = PROCESS.get(name, name)
        owner = kind not in ports
        port = ports.setdefault(kind, free_port())
        if name == "baseline":
            servers.append(
                Server(
                    "baseline",
                    "HTTP + SQL lookup of the rows + predict_proba (no fti)",
                    [
                        str(VENV_BIN / "uvicorn"),
                        *("--app-dir", str(REPO / "benchmarks"), "serving_baseline:app"),
                        *("--host", "127.0.0.1", "--port", str(port)),
                    ],
                    env
                    | {
                        "BENCH_DB": str(home / "fti.db"),
                        "BENCH_ARTIFACT": model.artifact,
                        "BENCH_FEATURES": json.dumps(model.features),
                    },
                    REPO,
                    port,
                    "/health",
                    lambda e: ("/predict", _json({"entities": [e]})),
                    lambda es: ("/predict", _json({"entities": es})),
                )
            )
        elif name == "fti":
            servers.append(
                Server(
                    "fti",
                    "fti serve: the full predict (auth, champion, online read, checks, lineage)",
                    [*fti_argv, "--port", str(port)],
                    env | fti_extra,
                    REPO,
                    port,
                    "/health",
                    lambda e: (f"/models/{MODEL}/predict", _json({"entities": [e]})),
                    lambda es: (f"/models/{MODEL}/predict", _json({"entities": es})),
                    [("authorization", f"Bearer {TOKEN}")],
                    reference="baseline",
                    owner=owner,
                )
            )
        elif name == "fti-features":
            servers.append(
                Server(
                    "fti-features",
                    f"fti serve: feature retrieval only, POST /features/{ONE_GROUP} "
                    f"({len(one_group)} features, auth, records as `fti features get --json`)",
                    [*fti_argv, "--port", str(port)],
                    env | fti_extra,
                    REPO,
                    port,
                    "/health",
                    lambda e: (f"/features/{ONE_GROUP}", _json({"entities": [e]})),
                    lambda es: (f"/features/{ONE_GROUP}", _json({"entities": es})),
                    [("authorization", f"Bearer {TOKEN}")],
                    features=one_group,
                    reference="feast-1group",
                    owner=owner,
                )
            )
        elif name == "feast":
            assert feast is not None and feast_repo is not None
            refs = [f"{g}:{f}" for g, f in model.features]
            servers.append(
                Server(
                    "feast",
                    f"Feast feature server: feature retrieval only (no model), the model's "
                    f"{len(refs)} features of {len(GROUPS)} groups",
                    [*feast_argv, "--port", str(port), "--workers", "1", "--max-requests", "0"],
                    feast_env,
                    feast_repo,
                    port,
                    "/health",
                    partial(_feast_request, refs),
                    partial(_feast_many, refs),
                    features=list(model.features),
                    reference="baseline",
                    owner=owner,
                )
            )
        elif name == "feast-1group":
            assert feast is not None and feast_repo is not None
            refs = [f"{g}:{f}" for g, f in one_group]
            servers.append(
                Server(
                    "feast-1group",
                    f"Feast feature server: feature retrieval only, the {len(refs)} features "
                    f"of {ONE_GROUP}",
                    [*feast_argv, "--port", str(port), "--workers", "1", "--max-requests", "0"],
                    feast_env,
                    feast_repo,
                    port,
                    "/health",
                    partial(_feast_request, refs),
                    partial(_feast_many, refs),
                    features=one_group,
                    owner=owner,
                )
            )
    return servers


# ---- the load generator ------------------------------------------------------------------------
def request_events(server: Server, path: str, body: bytes) -> tuple[Any, ...]:
    """The h11 events of one POST (built before the clock starts)."""
    import h11

    headers = [
        ("host", f"127.0.0.1:{server.port}"),
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        *server.headers,
    ]
    return (h11.Request(method="POST", target=path, headers=headers), h11.Data(data=body))


class Failed(Exception):
    pass


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: Any, request: bytes
) -> tuple[int, bytes]:
    """Send one framed request on a keep-alive connection; read its whole answer."""
    import h11

    writer.write(request)
    status, body = 0, bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            if not data:
                raise Failed("the server closed the connection")
            connection.receive_data(data)
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            connection.start_next_cycle()
            return status, bytes(body)


async def _load(
    port: int, requests: list[tuple[Any, ...]], concurrency: int
) -> tuple[list[float], float]:
    """Send ``requests`` over ``concurrency`` keep-alive connections; each connection sends
    its next request when its previous answer is in. Returns latencies (s) and wall time."""
    import h11

    latencies = [0.0] * len(requests)
    cursor = iter(range(len(requests)))

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = h11.Connection(h11.CLIENT)
        try:
            for i in cursor:
                head, data = requests[i]
                framed = (
                    connection.send(head)
                    + connection.send(data)
                    + connection.send(h11.EndOfMessage())
                )
                clock = time.perf_counter()
                status, body = await _exchange(reader, writer, connection, framed)
                latencies[i] = time.perf_counter() - clock
                if status != 200:
                    raise Failed(f"HTTP {status}: {body[:300].decode(errors='replace')}")
        finally:
            writer.close()

    clock = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, time.perf_counter() - clock


def load(port: int, requests: list[tuple[Any, ...]], concurrency: int) -> tuple[list[float], float]:
    return asyncio.run(_load(port, requests, concurrency))


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
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / ".work" / "serving")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        raise SystemExit(
            f"--servers: unknown {', '.join(sorted(unknown))}; pick from {','.join(SERVERS)}"
        )
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
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
