"""`fti sql` reads fti's tables and views and changes nothing, in the database or on disk.

Every refusal is one line, `error: fti sql is read-only: ...`, exit code 1, and leaves no
file behind. PostgreSQL runs as the superuser `postgres` here, the case where a READ ONLY
transaction alone would still let COPY TO, lo_export and SET ROLE tricks through.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from fti.cli import app

runner = CliRunner()


@pytest.fixture
def world_writable() -> Iterator[Path]:
    """A folder the database server's own OS user could write to (so 'no file' means refused)."""
    folder = Path(tempfile.mkdtemp(prefix="fti-sql-", dir="/tmp"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    from fti.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'fti.db'}"
    upgrade(url)
    return url


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    from fti.db.migrate import upgrade

    upgrade(postgres_url)
    return postgres_url


def use(url: str, home: Path, monkeypatch) -> None:
    monkeypatch.setenv("FTI_HOME", str(home))
    monkeypatch.setenv("FTI_DB_URL", url)
    monkeypatch.delenv("FTI_DEBUG", raising=False)


def refused(query: str) -> str:
    """Run `fti sql QUERY`; assert it was refused in one line; return the line."""
    result = runner.invoke(app, ["sql", query])
    assert result.exit_code == 1, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: fti sql is read-only: "), lines[0]
    return lines[0]


def rows(query: str) -> list[dict[str, object]]:
    import json

    result = runner.invoke(app, ["sql", query, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def relations(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        found = inspect(engine)
        return sorted(found.get_table_names() + found.get_view_names())
    finally:
        engine.dispose()


# ---- both databases ---------------------------------------------------------------------------
def test_selects_read_every_table_and_view(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(db_url, tmp_path / "home", monkeypatch)
    names = relations(db_url)
    assert {"predictions", "latest_predictions", "validation_runs", "model_versions"} <= set(names)
    for name in names:
        counted = rows(f"SELECT count(*) AS n FROM {name}")
        assert len(counted) == 1 and isinstance(counted[0]["n"], int), name
    assert rows("SELECT 1 AS one, 'a' AS letter, NULL AS empty") == [
        {"one": 1, "letter": "a", "empty": None}
    ]
    assert rows("WITH t(x) AS (VALUES (1), (2)) SELECT sum(x) AS s FROM t;") == [{"s": 3}]


def test_a_table_added_later_is_readable(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table a later migration adds (say 0008's) is readable without any other step."""
    use(db_url, tmp_path / "home", monkeypatch)
    assert rows("SELECT count(*) AS n FROM predictions") == [{"n": 0}]
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE added_later (id integer, note text)"))
        connection.execute(text("INSERT INTO added_later VALUES (1, 'kept')"))
    engine.dispose()
    assert rows("SELECT id, note FROM added_later") == [{"id": 1, "note": "kept"}]


COMMON_REFUSALS = [
    "DELETE FROM predictions",
    "UPDATE model_versions SET version = 2",
    "INSERT INTO alembic_version VALUES ('x')",
    "CREATE TABLE sneaky (x integer)",
    "CREATE VIEW sneaky AS SELECT 1 AS x",
    "DROP TABLE predictions",
    "ALTER TABLE predictions ADD COLUMN sneaky integer",
    "SELECT 1; DROP TABLE predictions",
    "SELECT 1; SELECT 2",
    "BEGIN",
]


@pytest.mark.parametrize("query", COMMON_REFUSALS)
def test_writes_ddl_and_several_statements_are_refused(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    use(db_url, tmp_path / "home", monkeypatch)
    before = relations(db_url)
    refused(query)
    assert relations(db_url) == before
    assert rows("SELECT count(*) AS n FROM alembic_version") == [{"n": 1}]


def test_a_failing_query_is_one_line_and_not_called_a_refusal(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(db_url, tmp_path / "home", monkeypatch)
    result = runner.invoke(app, ["sql", "SELECT no_such_column FROM predictions"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: query failed: ")


# ---- SQLite -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("ATTACH DATABASE '{folder}/attached.db' AS x", "ATTACH is not allowed"),
        ("ATTACH '{folder}/attached.db' AS x", "ATTACH is not allowed"),
        ("DETACH DATABASE x", "DETACH x is not allowed"),
        ("VACUUM INTO '{folder}/copy.db'", "VACUUM"),
        ("VACUUM", "VACUUM"),
        ("PRAGMA query_only = 0", "PRAGMA query_only = 0 is not allowed"),
        ("PRAGMA writable_schema = 1", "PRAGMA writable_schema = 1 is not allowed"),
        ("PRAGMA user_version = 7", "PRAGMA user_version = 7 is not allowed"),
        ("PRAGMA journal_mode = DELETE", "PRAGMA journal_mode = DELETE is not allowed"),
        ("PRAGMA wal_checkpoint(TRUNCATE)", "PRAGMA wal_checkpoint"),
        ("SELECT load_extension('{folder}/evil')", "load_extension() is not allowed"),
        ("UPDATE sqlite_master SET sql = ''", "may not be modified"),
    ],
)
def test_sqlite_refuses_what_touches_files_or_settings(
    sqlite_url: str,
    tmp_path: Path,
    world_writable: Path,
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    says: str,
) -> None:
    use(sqlite_url, tmp_path / "home", monkeypatch)
    line = refused(query.format(folder=world_writable))
    assert says in line
    assert list(world_writable.iterdir()) == []
    assert rows("PRAGMA user_version") == [{"user_version": 0}]
    from fti.db.engine import get_engine

    with get_engine(sqlite_url).connect() as connection:  # the pooled connection is clean again
        assert connection.exec_driver_sql("PRAGMA query_only").scalar_one() == 0
        connection.exec_driver_sql("CREATE TABLE writable_again (x integer)")


def test_sqlite_still_answers_schema_questions(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(sqlite_url, tmp_path / "home", monkeypatch)
    columns = [r["name"] for r in rows("PRAGMA table_info(predictions)")]
    assert "model_name" in columns
    assert [r["name"] for r in rows("SELECT name FROM pragma_table_info('predictions')")] == columns
    assert rows("SELECT count(*) > 0 AS found FROM sqlite_master") == [{"found": 1}]


# ---- PostgreSQL, connected as a superuser ------------------------------------------------------
@pytest.fixture
def large_object(pg_url: str) -> int:
    """A large object in the database, so lo_export has something to write."""
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        oid = int(connection.execute(text("SELECT lo_from_bytea(0, 'secret')")).scalar_one())
    engine.dispose()
    return oid


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("COPY (SELECT 1) TO '{folder}/copy.txt'", "not COPY"),
        ("COPY predictions TO '{folder}/copy.txt'", "not COPY"),
        ("COPY (SELECT 1) TO PROGRAM 'touch {folder}/program'", "not COPY"),
        ("SELECT lo_export({oid}, '{folder}/lo.txt')", "permission denied for function lo_export"),
        ("SELECT pg_read_file('/etc/hostname')", "permission denied for function pg_read_file"),
        (
            "SELECT set_config('role', 'postgres', true), lo_export({oid}, '{folder}/lo.txt')",
            "permission denied for function lo_export",
        ),
        ("SELECT set_config('role', 'postgres', true)", 'cannot set parameter "role"'),
        (
            "SELECT set_config('session_authorization', 'postgres', true)",
            'cannot set parameter "session_authorization"',
        ),
        (
            "SELECT query_to_xml('SELECT set_config(''role'', ''postgres'', true)', true, "
            "false, '')",
            'cannot set parameter "role"',
        ),
        (
            "DO $$ BEGIN RESET ROLE; EXECUTE 'COPY (SELECT 1) TO ''{folder}/do.txt'''; END $$",
            "not DO",
        ),
        ("RESET ROLE", "not RESET"),
        ("SET ROLE postgres", "not SET"),
        ("VACUUM", "not VACUUM"),
        ("SELECT 1; COPY (SELECT 1) TO '{folder}/copy.txt'", "one statement at a time"),
        ("DELETE FROM predictions RETURNING *", "read-only transaction"),
        ("SELECT nextval('quarantined_rows_id_seq')", "permission denied for sequence"),
    ],
)
def test_postgresql_refuses_server_files_and_role_changes(
    pg_url: str,
    large_object: int,
    tmp_path: Path,
    world_writable: Path,
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    says: str,
) -> None:
    use(pg_url, tmp_path / "home", monkeypatch)
    line = refused(query.format(folder=world_writable, oid=large_object))
    assert says in line
    assert list(world_writable.iterdir()) == []


def test_postgresql_queries_run_as_the_reader_role(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(pg_url, tmp_path / "home", monkeypatch)
    assert rows("SELECT current_user AS who, session_user AS session") == [
        {"who": "fti_sql_reader", "session": "postgres"}
    ]
    assert rows("SELECT '{\"a\": [1, 2]}'::jsonb AS doc, 2.5::float8 AS x") == [
        {"doc": {"a": [1, 2]}, "x": 2.5}
    ]


def test_postgresql_repairs_a_tampered_runner(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner made SECURITY INVOKER (or owned by someone else) is recreated before use."""
    use(pg_url, tmp_path / "home", monkeypatch)
    rows("SELECT 1 AS one")
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(text("ALTER FUNCTION fti_sql_read_only(text) SECURITY INVOKER"))
        connection.execute(text("ALTER FUNCTION fti_sql_read_only(text) OWNER TO postgres"))
    engine.dispose()
    assert rows("SELECT current_user AS who") == [{"who": "fti_sql_reader"}]


def test_postgresql_refuses_when_the_reader_cannot_be_set_up(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who may neither create the runner nor use an existing one gets one line."""
    from tests.conftest import _admin_engine

    user = f"fti_test_plain_{uuid.uuid4().hex[:8]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {user} LOGIN"))
    try:
        url = pg_url.replace("postgres@", f"{user}@", 1)
        use(url, tmp_path / "home", monkeypatch)
        line = refused("SELECT 1")
        assert f"which user {user} cannot set up" in line
        assert "have a superuser run one `fti sql 'SELECT 1'` on this database" in line
    finally:
        from fti.db.engine import get_engine

        get_engine.cache_clear()
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :user"
                ),
                {"user": user},
            )
            connection.execute(text(f"DROP ROLE {user}"))
        admin.dispose()


def test_an_unsafe_reader_role_is_named() -> None:
    from fti.sql import _problems

    state = {
        "schema": "public",
        "user_name": "fti",
        "role_exists": True,
        "role_plain": False,
        "role_alone": False,
        "role_no_files": True,
        "schema_usable": True,
        "unreadable": 0,
        "runner_current": True,
        "runner_granted": True,
    }
    assert _problems(state) == [
        "role fti_sql_reader may log in or has an administrative attribute; fix or drop it "
        "(fti sql creates it again)",
        "role fti_sql_reader is a member of another role; fix or drop it (fti sql creates it "
        "again)",
    ]


def test_os_user_can_not_write_the_folder_is_not_why_copy_fails(world_writable: Path) -> None:
    """The COPY cases prove something only if the server could have written the folder."""
    assert os.stat(world_writable).st_mode & 0o777 == 0o777
