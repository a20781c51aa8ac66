"""The `fti` command line: listings with --json, one-line errors with a non-zero exit code."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fti.cli import app
from tests.conftest import DEMO_END, PARAMS, demo_settings

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, demo_raw: Path, monkeypatch):  # type: ignore[no-untyped-def]
    settings = demo_settings(tmp_path / "home", demo_raw)
    # A promotion margin no candidate can clear: only the first version becomes champion by
    # itself, so the test decides every later alias change.
    params = yaml.safe_load(PARAMS.read_text())
    params["promote"]["margin"] = 1.0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for key, value in {
        "FTI_HOME": settings.home,
        "FTI_RAW_PATH": demo_raw,
        "FTI_PARAMS_FILE": tmp_path / "params.yaml",
    }.items():
        monkeypatch.setenv(key, str(value))
    return settings


def fti(*args: str, ok: bool = True) -> str:
    result = runner.invoke(app, list(args))
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def test_the_loop_through_the_cli(cli_env, history_start) -> None:  # type: ignore[no-untyped-def]
    last = DEMO_END - timedelta(days=1)
    published = json.loads(
        fti("features", "run", "--start", str(history_start), "--end", str(last), "--json")
    )
    assert published["version"] == 1
    fti("features", "run", "--date", str(DEMO_END))
    versions = json.loads(fti("features", "versions", "customer_activity", "--json"))
    assert [v["version"] for v in versions] == [1, 2] and versions[1]["max_date"] == str(DEMO_END)
    shown = json.loads(fti("features", "show", "customer_activity", "--version", "1", "--json"))
    assert shown["schema"]["plan"] and shown["statistics"]["logins_7d"]["max"] >= 0
    latest = json.loads(fti("features", "show", "customer_activity", "--json"))
    assert latest["version"] == 2 and latest["rows"] == versions[1]["rows"]
    diff = json.loads(fti("features", "diff", "customer_activity", "1", "latest", "--json"))
    assert (diff["from"], diff["to"], diff["changed_dates"]) == (1, 2, [str(DEMO_END)])
    assert diff["schema"] == {"added": {}, "removed": {}, "retyped": {}}
    assert diff["rows"]["change"] == versions[1]["rows"] - versions[0]["rows"] > 0
    assert diff["partitions"] == {
        "from": versions[0]["partitions"],
        "to": versions[1]["partitions"],
    }

    decision = json.loads(fti("train", "--model", "churn", "--json"))
    assert decision["promoted"]
    fti("train", "--model", "churn", "--feature-version", "1")
    models = json.loads(fti("models", "list", "--json"))
    assert [m["version"] for m in models] == [1, 2] and models[0]["aliases"] == ["champion"]
    assert json.loads(fti("models", "show", "churn", "--json"))["artifact_sha256"]

    scored = json.loads(fti("infer", "--model", "churn", "--date", str(DEMO_END), "--json"))
    runs = json.loads(fti("predictions", "runs", "--json"))
    assert runs[0]["row_count"] == scored["rows"] > 0 and runs[0]["status"] == "succeeded"

    fti("models", "promote", "churn", "2", "--reason", "try the newer one")
    history = json.loads(fti("models", "history", "churn", "--json"))
    assert [(h["from_version"], h["to_version"]) for h in history] == [(None, 1), (1, 2)]
    assert "re-scored 0 date(s)" in fti("models", "rollback", "churn", "--no-rescore")
    compared = json.loads(fti("models", "compare", "churn", "1", "2", "--json"))
    assert compared["feature_versions"] == {"v1": 2, "v2": 1} and "roc_auc" in compared["metrics"]
    assert "churn champion was v1" in fti("models", "history", "churn", "--at", "2999-01-01")

    rows = json.loads(fti("sql", "SELECT count(*) AS n FROM predictions", "--json"))
    assert rows == [{"n": scored["rows"]}]
    quarantined = json.loads(fti("quarantine", "list", "--json"))
    assert quarantined and {"file", "row_number", "column", "rule"} <= set(quarantined[0])
    shown = json.loads(fti("quarantine", "show", str(quarantined[0]["id"]), "--json"))
    assert shown["raw_values"] == quarantined[0]["raw_values"]
    assert shown["file_rows_read"] == shown["file_rows_accepted"] + shown["file_rows_quarantined"]
    assert "no quarantined row 999999" in fti("quarantine", "show", "999999", ok=False)


def test_errors_are_one_line_with_exit_code_1(cli_env) -> None:  # type: ignore[no-untyped-def]
    assert fti("sql", "DELETE FROM predictions", ok=False).startswith("error: fti sql is read-only")
    assert "no alias 'champion'" in fti(
        "infer", "--model", "churn", "--date", str(DEMO_END), ok=False
    )
    assert "not 'fraud'" in fti("train", "--model", "fraud", ok=False)
    assert "not a date" in fti("features", "run", "--date", "tomorrow", ok=False)
