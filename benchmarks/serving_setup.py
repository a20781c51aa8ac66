"""What ``bench_serving.py`` serves from: the churn demo's FTI home (its raw history, every
group's features, the churn champion, the online store filled), built once and reused while
present; and Feast's virtual environment and a feature repository over the same rows,
applied and materialised (redone when the rows change)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers import REPO, _settings, log

VENV_BIN = Path(sys.executable).parent
FEAST_VENV = REPO / "benchmarks" / ".feast-venv"
FEAST_CONSTRAINTS = REPO / "benchmarks" / "feast-constraints.txt"
FEAST_PYTHON = "python3.11"
START, END = "2026-01-01", "2026-06-30"  # the demo's raw history: project start .. last day
CUSTOMERS, SEED = 2000, 7
MODEL = "churn"
GROUPS = ("customer_activity", "customer_profile")
KEY = "customer_id"
TOKEN = "bench-serving-token-0123456789abcdef"  # a throwaway token for a loopback server


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
