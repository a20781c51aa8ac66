"""A user's mistake ends as one line on stderr and exit code 1, never as a traceback.

Bad settings (one case per setting), an unreachable or uninitialised database and files that
cannot be read or written; `--debug` / FTI_DEBUG=1 show the traceback for a bug report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fti.cli import app

runner = CliRunner()
FTI = Path(sys.executable).with_name("fti")  # the console script of this environment
PASSWORD = "s3cret-pw"
UNREACHABLE = f"postgresql+psycopg://fti:{PASSWORD}@127.0.0.1:1/fti"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An FTI_HOME in tmp that `fti init` never ran in."""
    monkeypatch.setenv("FTI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FTI_DEBUG", raising=False)
    return tmp_path / "home"


def one_error(*args: str) -> str:
    """Run `fti ARGS`; assert it failed with exactly one `error:` line on stderr; return it."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def a_file(tmp_path: Path) -> str:
    path = tmp_path / "a-file.txt"
    path.write_text("not a folder\n")
    return str(path)


def a_folder(tmp_path: Path) -> str:
    path = tmp_path / "a-folder"
    path.mkdir(exist_ok=True)
    return str(path)


# (variable, bad value (a callable of tmp_path for paths), what the line must say)
BAD_SETTINGS = [
    ("FTI_DB_URL", "not a url", "FTI_DB_URL='not a url': not a usable SQLAlchemy URL"),
    ("FTI_DB_URL", f"postgresql+psycopg://fti:{PASSWORD}@db:port/fti", "not a SQLAlchemy URL"),
    ("FTI_DB_URL", f"postgres://fti:{PASSWORD}@db/fti", "sqlalchemy.dialects:postgres"),
    ("FTI_MAX_QUARANTINE_SHARE", "abc", "FTI_MAX_QUARANTINE_SHARE='abc': input should be a valid"),
    ("FTI_MAX_QUARANTINE_SHARE", "1.5", "'1.5': input should be less than or equal to 1"),
    ("FTI_MAX_QUARANTINE_SHARE", "-0.1", "'-0.1': input should be greater than or equal to 0"),
    ("FTI_MAX_QUARANTINE_SHARE", "20%", "set it to a share of rows from 0 to 1, e.g. 0.2"),
    ("FTI_QUARANTINE_MIN_ROWS", "ten", "FTI_QUARANTINE_MIN_ROWS='ten': input should be a valid"),
    ("FTI_QUARANTINE_MIN_ROWS", "2.5", "'2.5': input should be a valid integer"),
    ("FTI_QUARANTINE_MIN_ROWS", "-1", "'-1': input should be greater than or equal to 0"),
    ("FTI_QUARANTINE_MIN_ROWS", "1e3", "set it to a whole number of rows, 0 or more, e.g. 10"),
    ("FTI_ALERT_WEBHOOK_URL", "hooks.example.com/x", "'hooks.example.com/x': not an http(s) URL"),
    (
        "FTI_ALERT_WEBHOOK_URL",
        "ftp://example.com/x",
        "set it to an http(s) URL that accepts a JSON",
    ),
    ("FTI_AIRFLOW_API_URL", "localhost:8080", "'localhost:8080': not an http(s) URL"),
    ("FTI_AIRFLOW_API_TOKEN", f"Bearer {PASSWORD}", "FTI_AIRFLOW_API_TOKEN='***': a token is"),
    ("FTI_HOME", a_file, "is a file, not a folder"),
    ("FTI_STORE_PATH", a_file, "is a file, not a folder"),
    ("FTI_ARTIFACTS_PATH", a_file, "is a file, not a folder"),
    ("FTI_RAW_PATH", a_file, "is a file, not a folder"),
    ("FTI_STAGING_PATH", a_file, "is a file, not a folder"),
    ("FTI_MANIFESTS", a_file, "is a file, not a folder"),
    ("FTI_DVC_REMOTE", a_file, "is a file, not a folder or remote URL"),
    ("FTI_MANIFEST_PATH", a_folder, "is a folder, not a file"),
    ("FTI_PARAMS_FILE", a_folder, "is a folder, not a file"),
    ("FTI_PROJECT", "churn_demo.project:project:x", "is not a 'module' or 'module:attribute'"),
]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    BAD_SETTINGS,
    ids=[f"{v}={x if isinstance(x, str) else x.__name__}" for v, x, _ in BAD_SETTINGS],
)
@pytest.mark.parametrize("command", [["models", "list"], ["sql", "SELECT 1"], ["check"]])
def test_a_bad_setting_is_one_line_naming_it(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable, value, expected, command
) -> None:
    shown = value(tmp_path) if callable(value) else value
    monkeypatch.setenv(variable, shown)
    line = one_error(*command)
    assert line.startswith(f"error: {variable}=") and expected in line
    assert PASSWORD not in line


# Settings any text is a good value of (whether a user and password pair is checked where
# they are used: fti.monitoring.airflow_api.api_client).
ANY_TEXT = {"FTI_AIRFLOW_API_USERNAME", "FTI_AIRFLOW_API_PASSWORD"}


def test_every_setting_has_a_bad_value_case() -> None:
    from fti.settings import Settings

    assert {f"FTI_{name.upper()}" for name in Settings.model_fields} - ANY_TEXT == {
        variable for variable, _, _ in BAD_SETTINGS
    }


def test_two_bad_settings_are_two_lines(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTI_MAX_QUARANTINE_SHARE", "abc")
    monkeypatch.setenv("FTI_DB_URL", "nope")
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 1
    assert [line.split("=")[0] for line in result.stderr.splitlines()] == [
        "error: FTI_DB_URL",
        "error: FTI_MAX_QUARANTINE_SHARE",
    ]


def test_a_project_that_does_not_import_is_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTI_PROJECT", "nope.module:x")
    for command in (["check"], ["features", "versions", "customer_activity"]):
        line = one_error(*command)
        assert "cannot load project definition 'nope.module:x'" in line
        assert "Set FTI_PROJECT to 'package.module:attribute'" in line


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project `fti new` wrote in tmp; the CLI puts the folder it runs in on sys.path."""
    from fti.scaffold import create_project

    monkeypatch.delenv("FTI_MANIFEST_PATH", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return create_project("corner_shop", tmp_path)


def test_a_project_fti_cannot_import_names_its_folder_and_the_command(
    home: Path, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run from the folder above the project's (no `cd`), the project named in the environment:
    # its folder, with its .env, is where to run fti.
    monkeypatch.chdir(shop.parent)
    monkeypatch.setenv("FTI_PROJECT", "corner_shop.project:project")
    for command in (["check"], ["run", "--start", "2025-01-01", "--end", "2025-04-30"]):
        line = one_error(*command)
        assert line.startswith("error: cannot load project definition 'corner_shop.project:")
        assert line.endswith(f". Its package is in {shop}: run fti there (`cd {shop}`).")
    # The package moved into src/ (no .env there): that folder goes on the import path.
    monkeypatch.delenv("FTI_PROJECT")
    (shop / "src").mkdir()
    (shop / "corner_shop").rename(shop / "src" / "corner_shop")
    monkeypatch.chdir(shop)  # its .env names the project
    assert one_error("check").endswith(
        f"Its package is in {shop / 'src'}: put that folder on the import path "
        f"(`export PYTHONPATH={shop / 'src'}`, or `pip install -e` the project)."
    )


@pytest.mark.parametrize(
    "command",
    [
        ["models", "list"],
        ["models", "show", "churn"],
        ["predictions", "runs"],
        ["quarantine", "list"],
        ["quarantine", "show", "1"],
        ["sql", "SELECT 1"],
    ],
)
def test_an_unreachable_database_is_one_line_without_its_password(
    home: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("FTI_DB_URL", UNREACHABLE)
    line = one_error(*command)
    assert line.startswith(
        "error: cannot connect to the database "
        "FTI_DB_URL=postgresql+psycopg://fti:***@127.0.0.1:1/fti: "
    )
    assert "Connection refused" in line and "check that the server is running" in line
    assert PASSWORD not in line


def test_a_home_fti_init_never_made_says_to_run_it(home: Path) -> None:
    line = one_error("models", "list")
    assert "cannot connect to the database" in line and "run `fti init`" in line


def test_a_database_without_fti_tables_says_to_run_init(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTI_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    line = one_error("models", "list")
    assert "lacks fti's tables" in line and "run `fti init`" in line


def test_missing_params_file_names_the_setting(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTI_PARAMS_FILE", str(tmp_path / "missing.yaml"))
    line = one_error("monitor", "report")
    assert "missing.yaml: params file not found; set FTI_PARAMS_FILE" in line


def test_readmit_of_a_missing_file_is_one_line(home: Path, tmp_path: Path) -> None:
    line = one_error("quarantine", "readmit", str(tmp_path / "missing.csv"))
    assert line == (
        f"error: {tmp_path / 'missing.csv'}: no such file; give the CSV that "
        "`fti quarantine export --out FILE` wrote, with its rows fixed"
    )


@pytest.mark.parametrize("content", [b"", b'"unclosed,quote\n1,2\n', b"\xff\xfe\x00bad"])
def test_readmit_of_a_file_that_is_no_csv_is_one_line(
    home: Path, tmp_path: Path, content: bytes
) -> None:
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(content)
    line = one_error("quarantine", "readmit", str(fixed))
    assert line.startswith(f"error: {fixed}: not a CSV from `fti quarantine export`")


def test_readmit_of_a_folder_is_one_line(home: Path, tmp_path: Path) -> None:
    line = one_error("quarantine", "readmit", str(tmp_path))
    assert str(tmp_path) in line and "is a directory" in line


def test_export_to_a_folder_that_does_not_exist_is_one_line(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fti.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'fti.db'}"
    upgrade(url)
    monkeypatch.setenv("FTI_DB_URL", url)
    out = tmp_path / "no" / "such" / "folder" / "rows.csv"
    line = one_error("quarantine", "export", "--date", "2026-03-01", "--out", str(out))
    assert line == f"error: {out}: no such file or directory; check the path"


def test_an_unexpected_error_is_one_line_that_says_how_to_see_more(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr("fti.sql.run_read_only", broken)
    line = one_error("sql", "SELECT 1")
    assert line.startswith("error: unexpected KeyError: 'boom' (a bug in fti")
    assert "rerun with --debug (or FTI_DEBUG=1)" in line


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_lets_the_traceback_through(
    home: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    from fti.errors import ConfigError

    monkeypatch.setenv("FTI_MAX_QUARANTINE_SHARE", "abc")
    if how == "flag":
        result = runner.invoke(app, ["--debug", "models", "list"])
    else:
        monkeypatch.setenv("FTI_DEBUG", "1")
        result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert "FTI_MAX_QUARANTINE_SHARE='abc'" in str(result.exception)


def test_fti_debug_is_not_a_setting_the_settings_refuse(home: Path, monkeypatch) -> None:
    from fti.settings import get_settings

    monkeypatch.setenv("FTI_DEBUG", "1")
    assert get_settings().home == home.resolve()


def test_a_usage_error_stays_click_s(home: Path) -> None:
    result = runner.invoke(app, ["features", "run", "--date", "tomorrow"])
    assert result.exit_code == 2 and "not a date" in result.output


def test_hide_password() -> None:
    from fti.settings import hide_password

    assert hide_password(UNREACHABLE) == "postgresql+psycopg://fti:***@127.0.0.1:1/fti"
    assert hide_password("postgresql://u:p@ss/w@host:x/db") == "postgresql://u:***@host:x/db"
    assert hide_password("sqlite:////tmp/fti.db") == "sqlite:////tmp/fti.db"


# ---- the installed console script, as a user runs it -------------------------------------------
def run_fti(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FTI_")}
    environment.update(env)
    return subprocess.run(
        [str(FTI), *args], env=environment, capture_output=True, text=True, timeout=1800
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["models", "list"], {"FTI_DB_URL": UNREACHABLE}, "cannot connect to the database"),
        (["sql", "SELECT 1"], {"FTI_MAX_QUARANTINE_SHARE": "1.5"}, "FTI_MAX_QUARANTINE_SHARE"),
        (["quarantine", "readmit", "missing.csv"], {}, "missing.csv: no such file"),
    ],
    ids=["unreachable-db", "bad-share", "missing-file"],
)
def test_the_console_script_prints_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    done = run_fti(*args, FTI_HOME=str(tmp_path / "home"), **env)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


def test_the_console_script_shows_the_traceback_with_debug(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    flagged = run_fti("--debug", "models", "list", FTI_HOME=home, FTI_DB_URL=UNREACHABLE)
    from_env = run_fti("models", "list", FTI_HOME=home, FTI_DB_URL=UNREACHABLE, FTI_DEBUG="1")
    for done in (flagged, from_env):
        assert done.returncode == 1
        assert "Traceback" in done.stderr and "OperationalError" in done.stderr


def test_the_debug_traceback_of_a_bad_url_hides_its_password(tmp_path: Path) -> None:
    done = run_fti(
        "--debug",
        "models",
        "list",
        FTI_HOME=str(tmp_path / "home"),
        FTI_DB_URL=f"postgresql+psycopg://fti:{PASSWORD}@db:port/fti",
    )
    assert done.returncode == 1 and "Traceback" in done.stderr and "FTI_DB_URL" in done.stderr
    assert PASSWORD not in done.stderr
