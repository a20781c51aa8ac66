"""The `fti` command line: listings with --json, one-line errors with a non-zero exit code."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from churn_demo import project as demo
from fti.cli import app
from tests.conftest import DEMO_END, PARAMS, demo_settings

runner = CliRunner()
FEATURE_GROUPS = ["customer_activity", "customer_profile"]
LABEL_GROUPS = ["churned_30d", "spend_next_30d"]
HORIZON = timedelta(days=30)

# A definition with two mistakes in one model, for `fti check`.
BROKEN_PROJECT = replace(
    demo.project,
    models=[replace(demo.churn, metric="r2", ttl={"customer_profile": 7, "crm": 3}), demo.spend],
)


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, demo_raw: Path, monkeypatch):  # type: ignore[no-untyped-def]
    settings = demo_settings(tmp_path / "home", demo_raw, db_url)
    # A promotion margin no candidate can clear: only the first version becomes champion by
    # itself, so the test decides every later alias change.
    params = yaml.safe_load(PARAMS.read_text())
    params["promote"]["margin"] = 1.0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for key, value in {
        "FTI_HOME": settings.home,
        "FTI_DB_URL": db_url,
        "FTI_RAW_PATH": demo_raw,
        "FTI_PARAMS_FILE": tmp_path / "params.yaml",
        "FTI_MANIFEST_PATH": tmp_path / "manifest.json",  # not the session's shared one
    }.items():
        monkeypatch.setenv(key, str(value))
    # Tables as wide as they need to be (rich shortens cells to fit its 80 columns otherwise).
    monkeypatch.setattr("fti.cli.output.console", Console(width=400))
    return settings


def fti(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def words(text: str) -> str:
    """The output with its line wrapping undone (rich wraps at the terminal width)."""
    return " ".join(text.split())


# Checks read the definition, not the database: on the embedded default only.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_check_lists_the_project_and_writes_its_manifest(cli_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shown = words(fti("check"))
    for line in [
        "project churn (churn_demo.project:project), start date 2026-01-01",
        "source events: csv, time event_time (UTC), id event_id",
        "source crm: csv, time as_of (America/New_York), id -",
        "feature group customer_activity: 8 features from events, look-back 30 day(s)",
        "feature group customer_profile: 6 features from crm, look-back 1 day(s)",
        "label group churned_30d: from events, horizon 30 day(s)",
        "label group spend_next_30d: from events, horizon 30 day(s)",
        "model churn: binary, metric roc_auc, label churned_30d, 11 features from "
        "customer_activity, customer_profile",
        "model spend: regression, metric neg_root_mean_squared_error, label spend_next_30d, "
        "10 features from customer_activity, customer_profile",
    ]:
        assert line in shown
    # The first raw file of each source is validated as a run would: the demo's few bad rows
    # are a note on stderr, not a failure.
    assert "2026-01-01.csv checked" in shown and "rows would be quarantined" in shown
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    checked = json.loads(runner.invoke(app, ["check", "--json"]).stdout)
    assert checked["models"] == manifest["models"]
    assert {m["name"]: (m["task"], m["metric"], m["label"]) for m in checked["models"]} == {
        "churn": ("binary", "roc_auc", "churned_30d"),
        "spend": ("regression", "neg_root_mean_squared_error", "spend_next_30d"),
    }
    assert [g["name"] for g in checked["feature_groups"]] == FEATURE_GROUPS
    assert [g["name"] for g in checked["labels"]] == LABEL_GROUPS


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_check_prints_every_problem_of_a_broken_definition(cli_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FTI_PROJECT", "tests.integration.test_cli:BROKEN_PROJECT")
    lines = fti("check", code=1).strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: model 'churn': ") for line in lines)
    assert "metric 'r2' does not fit a binary model" in lines[0]
    assert "ttl names 'crm', not one of its groups" in lines[1]
    monkeypatch.setenv("FTI_PROJECT", "no_such_module:project")
    assert "cannot load project definition 'no_such_module:project'" in fti("check", code=1)


# ---- `fti check` on a project of `fti new`: what `fti run` would trip on -------------------------
SHOP = "corner_shop"


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project `fti new` wrote, the current folder (whose .env names it), as a user has it."""
    for name in ("FTI_MANIFEST_PATH", "FTI_PROJECT", "FTI_HOME", "FTI_RAW_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the CLI puts the folder on it
    monkeypatch.chdir(tmp_path)
    fti("new", SHOP)
    monkeypatch.chdir(tmp_path / SHOP)
    yield tmp_path / SHOP
    forget_shop()  # the next test's project is another folder


def forget_shop() -> None:
    """Import the project again at the next command, as a new `fti` process does."""
    for module in [m for m in sys.modules if m == SHOP or m.startswith(f"{SHOP}.")]:
        del sys.modules[module]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new))
    forget_shop()


def check_errors() -> list[str]:
    """`fti check`'s error lines; it must fail, and print nothing but them on stderr."""
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), result.stderr
    return [line.removeprefix("error: ") for line in lines]


def test_check_of_a_new_project_validates_its_first_raw_file(shop: Path) -> None:
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert "2025-01-01.csv checked, 5 of 5 rows accepted" in words(result.stdout)
    # A bad row a run would set aside is a note: the run goes on.
    first = shop / "data" / "raw" / "sales" / "2025-01-01.csv"
    edit(first, "20250101-2,2,", "20250101-2,SEA,")
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"note: {first}: 1 of 5 rows would be quarantined (first: line 3, store_id: parse as "
        "int64 (got 'SEA')); `fti run` sets them aside and goes on\n"
    )


def test_check_names_the_file_column_and_rule_of_a_key_a_run_would_refuse(shop: Path) -> None:
    first = shop / "data" / "raw" / "sales" / "2025-01-01.csv"
    first.write_text(re.sub(r"(?m)^(20250101-\d),\d+,", r"\1,SEA,", first.read_text()))
    # The schema parses the key as int64: every row breaks that rule, the run rejects the file.
    assert check_errors() == [
        f"{first}: 5 of 5 rows break a rule (first: line 2, store_id: parse as int64 (got "
        "'SEA')); `fti run` would reject the file: fix it, or the schema of source 'sales'"
    ]
    # The schema takes any text, but the entity's key is int64: the run would fail staging it.
    edit(
        shop / SHOP / "project.py",
        'KEY: pa.Column("int64", pa.Check.gt(0), nullable=False, coerce=True)',
        "KEY: pa.Column(str, nullable=False)",
    )
    assert check_errors() == [
        f"{first}: line 2, column 'store_id' holds 'SEA', not an int64 key of entity 'store'; "
        "`fti run` would fail on it: declare the entity with dtype='string', or fix the file"
    ]


PARAMS_MISTAKES = [
    (
        "alpha: 1.0",
        "alpha: abc",
        "train.sales_forecast.alpha = 'abc': make_estimator failed on it (ValueError: could not "
        "convert string to float: 'abc'); give it a value of the type it expects",
    ),
    (
        "alpha: 1.0",
        "alpha: -1",
        "train.sales_forecast.alpha = -1: The 'alpha' parameter of Ridge must be a float in the "
        "range [0.0, inf) or an array-like. Got -1.0 instead.",
    ),
    (
        "alpha: 1.0",
        "alpha: 1.0\n    alpah: 2",
        "train.sales_forecast.alpah: make_estimator does not read this hyper-parameter (it reads "
        "alpha); fix its name or remove it",
    ),
    (
        "alpha: 1.0",
        "alpha: 1.0\n    features: [store_sales.sales_14d]",
        "train.sales_forecast.features: model 'sales_forecast': feature group 'store_sales' has "
        "no feature 'sales_14d' (it has sales_7d, sales_28d, day_of_week)",
    ),
    (
        "  sales_forecast:",
        "  sales_forcast:",
        "train.sales_forcast names no model of project 'corner_shop' (it has sales_forecast); "
        "rename it or remove it",
    ),
    (
        "  sales_forecast:",
        "  sales_forcast:",
        "train has no section for model 'sales_forecast'; add `sales_forecast: {}` under train "
        "(its hyper-parameters; {} keeps the estimator's defaults)",
    ),
    (
        "keep_model_versions: 5",
        "keep_model_versions: 0",
        "retention.keep_model_versions = 0: must be a whole number >= 1",
    ),
    (
        "promote:",
        "access: {roles: [shop_team, {shop_team: [can_read]}]}\npromote:",
        "access.roles: {'shop_team': ['can_read']} is not a role name; write the name of a role "
        "of Airflow's auth manager, e.g. churn_team",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), PARAMS_MISTAKES)
def test_check_reads_params_yaml_a_section_per_model_and_its_hyper_parameters(
    shop: Path, old: str, new: str, expected: str
) -> None:
    edit(shop / "params.yaml", old, new)
    assert f"{shop / 'params.yaml'}: {expected}" in check_errors()


def test_check_notes_a_params_section_fti_does_not_read(shop: Path) -> None:
    edit(shop / "params.yaml", "retention:", "retension:")
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert (
        f"note: {shop / 'params.yaml'}: section 'retension' is not one fti reads (train, "
        "promote, monitor, shards, queues, schedule, deadlines, retention, access, data, "
        "project); fti ignores it: fix its name if it is meant for fti"
    ) in words(result.stderr)


def test_check_wants_the_start_date_at_the_first_raw_file(shop: Path) -> None:
    project = shop / SHOP / "project.py"
    edit(project, 'start_date="2025-01-01"', 'start_date="2024-12-30"')
    assert check_errors() == [
        "project 'corner_shop': start_date 2024-12-30 is before the first raw file of source "
        f"'sales' (2025-01-01, in {shop / 'data' / 'raw' / 'sales'}); the runs of "
        "2024-12-30..2024-12-31 would fail on their missing files: set start_date to "
        "2025-01-01, or declare missing_day='empty' on the source"
    ]


def test_check_names_a_feature_declared_twice(shop: Path) -> None:
    edit(
        shop / SHOP / "project.py",
        'FEATURES = ["sales_7d", "sales_28d", "day_of_week"]',
        'FEATURES = ["sales_7d", "sales_28d", "day_of_week", "sales_7d"]',
    )
    assert check_errors() == [
        "feature group 'store_sales': feature 'sales_7d' is declared twice; declare it once"
    ]


def test_check_suggests_month_files_for_a_small_group_and_notes_the_layout_change(
    shop: Path,
) -> None:
    fti("init")
    fti("features", "run", "--start", "2025-01-01", "--end", "2025-01-31", "--group", "store_sales")
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert words(result.stderr) == (
        "note: feature group 'store_sales' holds 5.0 rows a date over 31 dates, a file each "
        '(v1): partition="month" would keep them in 1 month file(s) (its next publish '
        "rewrites them so)"
    )
    edit(shop / SHOP / "project.py", 'partition="day"', 'partition="month"')
    result = runner.invoke(app, ["check"])
    assert "look-back 28 day(s), stored a file a month" in words(result.stdout)
    assert words(result.stderr) == (
        "note: feature group 'store_sales' is stored a file a day and its definition says "
        "partition='month': its next publish rewrites every date a file a month (one new "
        "version; earlier versions keep their files)"
    )
    fti("features", "run", "--date", "2025-02-01", "--group", "store_sales")
    folder = shop / ".fti" / "store" / "data" / "store_sales"
    assert sorted(p.name for p in folder.iterdir()) == [
        "feature_month=2025-01",
        "feature_month=2025-02",
    ]
    assert runner.invoke(app, ["check"]).stderr == ""
    versions = json.loads(fti("features", "versions", "store_sales", "--json"))
    assert [(v["version"], v["partitions"]) for v in versions] == [(1, 31), (2, 32)]


# The loop on PostgreSQL, the production database; the same commands run on SQLite, the
# embedded default, in the tutorial (tests/integration/test_tutorial.py: fti run, models list,
# promote, history, sql) and in `fti demo` (test_demo.py), and the registry's queries on both
# databases in test_registry.py and test_database.py.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_loop_through_the_cli(cli_env, history_start) -> None:  # type: ignore[no-untyped-def]
    last = DEMO_END - timedelta(days=1)
    ran = json.loads(
        fti("features", "run", "--start", str(history_start), "--end", str(last), "--json")
    )
    assert {g: p["version"] for g, p in ran["published"].items()} == dict.fromkeys(
        FEATURE_GROUPS + LABEL_GROUPS, 1
    )
    assert set(ran["sources"]) == {"events", "crm"}
    assert ran["rows_read"] == ran["rows_accepted"] + ran["rows_quarantined"] > 0
    fti("features", "run", "--date", str(DEMO_END))
    only = json.loads(
        fti("features", "run", "--date", str(DEMO_END), "--group", "customer_profile", "--json")
    )
    assert list(only["published"]) == ["customer_profile"]  # a rerun: nothing new
    assert (
        only["published"]["customer_profile"]["version"],
        only["published"]["customer_profile"]["new"],
    ) == (2, False)

    # Every group, feature or label, is listed by its name.
    for group in FEATURE_GROUPS:
        versions = json.loads(fti("features", "versions", group, "--json"))
        assert [(v["version"], v["kind"]) for v in versions] == [(1, "features"), (2, "features")]
        assert versions[1]["max_date"] == str(DEMO_END)
    for group in LABEL_GROUPS:
        labels = json.loads(fti("features", "versions", group, "--json"))
        assert [(v["version"], v["kind"]) for v in labels] == [(1, "labels"), (2, "labels")]
        assert [(v["min_date"], v["max_date"]) for v in labels] == [
            (str(history_start), str(last - HORIZON)),
            (str(history_start), str(DEMO_END - HORIZON)),
        ]
    assert "churned_30d" in words(fti("features", "versions", "churned_30d"))

    versions = json.loads(fti("features", "versions", "customer_activity", "--json"))
    shown = json.loads(fti("features", "show", "customer_activity", "--version", "1", "--json"))
    assert shown["schema"]["logins_7d"] and shown["statistics"]["logins_7d"]["max"] >= 0
    profile = json.loads(fti("features", "show", "customer_profile", "--json"))
    assert profile["version"] == 2 and profile["schema"]["plan"] and profile["kind"] == "features"
    latest = json.loads(fti("features", "show", "customer_activity", "--json"))
    assert latest["version"] == 2 and latest["rows"] == versions[1]["rows"]
    label = json.loads(fti("features", "show", "churned_30d", "--json"))
    assert label["kind"] == "labels" and set(label["schema"]) == {
        "customer_id",
        "feature_date",
        "label",
    }
    diff = json.loads(fti("features", "diff", "customer_activity", "1", "latest", "--json"))
    assert (diff["from"], diff["to"], diff["changed_dates"]) == (1, 2, [str(DEMO_END)])
    assert diff["schema"] == {"added": {}, "removed": {}, "retyped": {}}
    assert diff["rows"]["change"] == versions[1]["rows"] - versions[0]["rows"] > 0
    assert diff["partitions"] == {
        "from": versions[0]["partitions"],
        "to": versions[1]["partitions"],
    }

    decision = json.loads(fti("train", "--model", "churn", "--json"))
    assert decision["promoted"] and decision["metric"] == "roc_auc"
    assert decision["feature_versions"] == dict.fromkeys(FEATURE_GROUPS, 2)
    fti("train", "--model", "churn", "--version", "customer_activity=1")
    picked = ["customer_activity.logins_7d", "customer_profile.plan", "customer_profile.seats"]
    fti("train", "--model", "churn", *[a for f in picked for a in ("--feature", f)])
    spend = json.loads(fti("train", "--model", "spend", "--json"))
    assert spend["promoted"] and spend["metric"] == "neg_root_mean_squared_error"
    assert spend["candidate"] < 0

    models = json.loads(fti("models", "list", "--json"))
    assert [(m["name"], m["version"]) for m in models] == [
        ("churn", 1),
        ("churn", 2),
        ("churn", 3),
        ("spend", 1),
    ]
    for m in models:  # each model's own metric
        task, metric = {
            "churn": ("binary", "roc_auc"),
            "spend": ("regression", "neg_root_mean_squared_error"),
        }[m["name"]]
        assert (m["task"], m["metric"]) == (task, metric)
        assert m["metric_value"] == m["metrics"][metric]
    assert models[0]["aliases"] == models[3]["aliases"] == ["champion"]
    assert 0.5 < models[0]["metric_value"] <= 1 and models[3]["metric_value"] < 0
    assert (
        models[3]["label_group"] == "spend_next_30d" and models[0]["label_group"] == "churned_30d"
    )
    listed = words(fti("models", "list"))
    assert "neg_root_mean_squared_error" in listed and "roc_auc" in listed
    third = json.loads(fti("models", "show", "churn", "--version", "3", "--json"))
    assert third["features"] == picked
    assert third["feature_ttl_days"] == {"customer_activity": 0, "customer_profile": 7}
    shown_spend = json.loads(fti("models", "show", "spend", "--json"))
    assert shown_spend["artifact_sha256"] and shown_spend["label_version"] == 2
    assert shown_spend["feature_versions"] == dict.fromkeys(FEATURE_GROUPS, 2)

    scored = json.loads(fti("infer", "--model", "churn", "--date", str(DEMO_END), "--json"))
    valued = json.loads(fti("infer", "--model", "spend", "--date", str(DEMO_END), "--json"))
    assert (scored["task"], valued["task"]) == ("binary", "regression")
    assert scored["rows"] == valued["rows"] > 0
    runs = json.loads(fti("predictions", "runs", "--json"))
    assert [r["model_name"] for r in runs] == ["spend", "churn"]
    assert runs[0]["row_count"] == valued["rows"] and {r["status"] for r in runs} == {"succeeded"}

    fti("models", "promote", "churn", "2", "--reason", "try the newer one")
    history = json.loads(fti("models", "history", "churn", "--json"))
    assert [(h["from_version"], h["to_version"]) for h in history] == [(None, 1), (1, 2)]
    spend_history = json.loads(fti("models", "history", "spend", "--json"))
    assert [(h["from_version"], h["to_version"]) for h in spend_history] == [(None, 1)]
    assert "re-scored 0 date(s)" in fti("models", "rollback", "churn", "--no-rescore")
    compared = json.loads(fti("models", "compare", "churn", "1", "2", "--json"))
    assert compared["feature_versions"] == {
        "v1": dict.fromkeys(FEATURE_GROUPS, 2),
        "v2": {"customer_activity": 1, "customer_profile": 2},
    }
    assert compared["metric"] == "roc_auc" and "roc_auc" in compared["metrics"]
    assert compared["label_versions"] == {"v1": "churned_30d v2", "v2": "churned_30d v2"}
    assert "churn champion was v1" in words(fti("models", "history", "churn", "--at", "2999-01-01"))

    rows = json.loads(
        fti(
            "sql",
            "SELECT model_name, count(*) AS n, count(value) AS values_, count(probability) AS p "
            "FROM predictions GROUP BY model_name ORDER BY model_name",
            "--json",
        )
    )
    assert rows == [
        {"model_name": "churn", "n": scored["rows"], "values_": 0, "p": scored["rows"]},
        {"model_name": "spend", "n": valued["rows"], "values_": valued["rows"], "p": 0},
    ]
    quarantined = json.loads(fti("quarantine", "list", "--json"))
    assert quarantined and {"file", "row_number", "column", "rule"} <= set(quarantined[0])
    shown = json.loads(fti("quarantine", "show", str(quarantined[0]["id"]), "--json"))
    assert shown["raw_values"] == quarantined[0]["raw_values"]
    assert shown["file_rows_read"] == shown["file_rows_accepted"] + shown["file_rows_quarantined"]
    assert "no quarantined row 999999" in fti("quarantine", "show", "999999", code=1)
    # A day's quarantined rows of one source, as CSV with that source's columns.
    for source in ("events", "crm"):
        exported = fti("quarantine", "export", "--source", source, "--date", str(DEMO_END))
        header, *lines = exported.strip().splitlines()
        columns = demo.project.source(source).columns
        assert header.split(",") == ["quarantine_id", "line", "rule", *columns]
        expected = json.loads(
            fti(
                "sql",
                "SELECT count(*) AS n FROM quarantined_rows q JOIN validation_runs v "
                f"ON q.validation_run_id = v.id WHERE v.source = '{source}' "
                f"AND v.logical_date = '{DEMO_END}'",
                "--json",
            )
        )
        assert len(lines) == expected[0]["n"] > 0


def test_errors_are_one_line_with_exit_code_1(cli_env) -> None:  # type: ignore[no-untyped-def]
    assert fti("sql", "DELETE FROM predictions", code=1).startswith("error: fti sql is read-only")
    for model in ("churn", "spend"):
        assert "no alias 'champion'" in fti(
            "infer", "--model", model, "--date", str(DEMO_END), code=1
        )
    assert "defines no model 'fraud'; it has: churn, spend" in fti(
        "train", "--model", "fraud", code=1
    )
    assert "is before the start date 2026-01-01 of project 'churn'" in fti(
        "features", "run", "--date", "2025-12-31", code=1
    )
    assert "defines no feature or label group 'nope'" in fti(
        "features", "run", "--date", str(DEMO_END), "--group", "nope", code=1
    )
    assert "feature group 'customer_profile' has no feature 'nope'" in fti(
        "train", "--model", "churn", "--feature", "customer_profile.nope", code=1
    )
    assert "defines no source 'nope'; it has: events, crm" in fti(
        "quarantine", "export", "--source", "nope", "--date", str(DEMO_END), code=1
    )
    # Usage errors are click's: exit code 2.
    assert "not a date" in fti("features", "run", "--date", "tomorrow", code=2)
    assert "is not GROUP=VERSION" in fti(
        "train", "--model", "churn", "--version", "customer_activity", code=2
    )


# ---- help texts --------------------------------------------------------------------------------
def all_commands() -> list[tuple[list[str], Any]]:
    """Every command and group of `fti`, with the words that reach it."""
    import typer

    found = []

    def walk(command: Any, path: list[str]) -> None:
        found.append((path, command))
        if hasattr(command, "commands"):  # a group (typer's own click)
            for name, sub in command.commands.items():
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = all_commands()


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(path) or "fti" for path, _ in COMMANDS]
)
def test_help_shows_every_word_of_its_text(path: list[str], command: Any) -> None:
    """`--help` prints the command's text and each option's help as written: rich markup eats
    ``[start, end]`` (it printed "for : the history"), reST's double backquotes and roles
    print as they are, and a summary line broken mid-sentence breaks the command list."""
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    shown = words(re.sub(r"[│╭╮╰╯─]", " ", result.output))
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    for text in texts:
        assert words(text) in shown, f"`fti {' '.join(path)} --help` lost part of: {text!r}"
        assert not re.search(r"``|:\w+:`|\[[a-z][^\]]*\]", text), text
    summary = (command.help or "").split("\n\n")[0]
    assert "\n" not in summary, f"the summary of `fti {' '.join(path)}` spans lines: {summary!r}"
