"""The servers ``bench_serving.py`` times, one process each: the bare baseline, ``fti serve`` and
Feast's feature server, started in their own session, polled until healthy and stopped; and
the requests each row sends (its path and JSON body for one entity or many)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from serving_setup import GROUPS, KEY, MODEL, TOKEN, VENV_BIN, Champion, fti_env
from workers import REPO

ONE_GROUP = GROUPS[0]  # the group of the feature-retrieval-only rows
PROCESS = {"fti-features": "fti", "feast-1group": "feast"}  # the process a row's requests go to
HANG_GUARD_S = 600  # a server that is not up by then is broken, not slow


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
