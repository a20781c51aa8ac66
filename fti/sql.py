"""Read-only SQL against fti's database: nothing is created or changed, in it or anywhere else.

SQLite runs the query in a transaction with ``PRAGMA query_only`` and an authorizer
(``sqlite3.Connection.set_authorizer``) that lets it read and nothing else: no ATTACH or
DETACH (ATTACH creates a file at any writable path, and VACUUM INTO attaches its target),
no pragma that changes a setting or the file, no ``load_extension``, no transaction control.

PostgreSQL runs it in a ``READ ONLY`` transaction, which stops writes to tables but not a
superuser's server-side file access (``COPY ... TO '/file'``, ``lo_export``,
``pg_read_file``), and ``SET ROLE`` alone is no fence: the session user stays a superuser, so
the query could switch back (``set_config('role', ...)``). The query therefore runs inside
the ``SECURITY DEFINER`` function ``fti_sql_read_only`` owned by the role ``fti_sql_reader``:
PostgreSQL executes it with that role's privileges and refuses any change of role or session
authorization inside it. The role cannot log in, is a member of no other role (so not of
``pg_write_server_files``, ``pg_execute_server_program`` or ``pg_read_server_files``) and may
only use fti's schema and SELECT from its tables and views. Role, function and grants are set
up (or repaired) at the first query that finds them missing, so tables that later migrations
add are readable at once; a user who cannot set them up is refused.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from fti.db.engine import get_engine
from fti.errors import FtiError, ReadOnlyQueryError

READER_ROLE = "fti_sql_reader"
RUNNER = "fti_sql_read_only"
REFUSED = "fti sql is read-only"

Rows = tuple[list[str], list[tuple[Any, ...]]]


def run_read_only(url: str, query: str) -> Rows:
    """Run one read-only ``query`` and return (column names, rows).

    Raises:
        ReadOnlyQueryError: the query would write, change a setting, touch a file or run more
            than one statement; or, on PostgreSQL, the read-only role cannot be set up.
        FtiError: the query itself failed (a syntax error, an unknown table...).
    """
    engine = get_engine(url)
    if engine.dialect.name == "sqlite":
        return _run_on_sqlite(engine, query)
    if engine.dialect.name == "postgresql":
        return _run_on_postgresql(engine, query)
    raise ReadOnlyQueryError(
        f"{REFUSED}, and fti cannot enforce that on {engine.dialect.name}; use SQLite or PostgreSQL"
    )


def _failure(exc: DBAPIError) -> str:
    lines = [line.strip() for line in str(exc.orig).splitlines() if line.strip()]
    return lines[0] if lines else type(exc.orig).__name__


# ---- SQLite -----------------------------------------------------------------------------------
_SQLITE_READS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE}
_SQLITE_SCHEMA_TABLES = {"sqlite_master", "sqlite_schema", "sqlite_temp_master"}
# SQL functions of the SQLite library that reach outside the database file.
_SQLITE_DENIED_FUNCTIONS = {"load_extension", "fts3_tokenizer"}
# Pragmas that only describe the schema, with any argument (a table or index name).
_SQLITE_SCHEMA_PRAGMAS = {
    "collation_list",
    "compile_options",
    "database_list",
    "foreign_key_list",
    "function_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "module_list",
    "pragma_list",
    "table_info",
    "table_list",
    "table_xinfo",
}
# Settings a query may read; given a value, these pragmas would change them.
_SQLITE_SETTING_PRAGMAS = {
    "application_id",
    "auto_vacuum",
    "encoding",
    "foreign_keys",
    "freelist_count",
    "journal_mode",
    "page_count",
    "page_size",
    "query_only",
    "schema_version",
    "user_version",
}
_SQLITE_ACTIONS = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in [
        "ALTER_TABLE",
        "ANALYZE",
        "ATTACH",
        "CREATE_INDEX",
        "CREATE_TABLE",
        "CREATE_TEMP_INDEX",
        "CREATE_TEMP_TABLE",
        "CREATE_TEMP_TRIGGER",
        "CREATE_TEMP_VIEW",
        "CREATE_TRIGGER",
        "CREATE_VIEW",
        "CREATE_VTABLE",
        "DELETE",
        "DETACH",
        "DROP_INDEX",
        "DROP_TABLE",
        "DROP_TEMP_INDEX",
        "DROP_TEMP_TABLE",
        "DROP_TEMP_TRIGGER",
        "DROP_TEMP_VIEW",
        "DROP_TRIGGER",
        "DROP_VIEW",
        "DROP_VTABLE",
        "FUNCTION",
        "INSERT",
        "PRAGMA",
        "REINDEX",
        "SAVEPOINT",
        "TRANSACTION",
        "UPDATE",
    ]
}


class _SqliteReadOnly:
    """An SQLite authorizer that allows reading and remembers the first action it denied."""

    def __init__(self) -> None:
        self._denied: list[tuple[int, str | None, str | None]] = []

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None
    ) -> int:
        if self._allows(action, arg1, arg2):
            return sqlite3.SQLITE_OK
        self._denied.append((action, arg1, arg2))
        return sqlite3.SQLITE_DENY

    @property
    def denied(self) -> str | None:
        """Why the statement was refused: its own action rather than the schema-table write
        SQLite checks first (CREATE TABLE x is also an INSERT into sqlite_master)."""
        if not self._denied:
            return None
        own = [d for d in self._denied if d[1] not in _SQLITE_SCHEMA_TABLES]
        return _describe(*(own or self._denied)[0])

    @staticmethod
    def _allows(action: int, arg1: str | None, arg2: str | None) -> bool:
        if action in _SQLITE_READS:
            return True
        if action == sqlite3.SQLITE_UPDATE and arg1 in _SQLITE_SCHEMA_TABLES:
            # SQLite asks this when a table-valued pragma (pragma_table_info(...)) reads the
            # schema. A real UPDATE of the schema table is refused anyway: PRAGMA
            # writable_schema is denied here and query_only forbids every write.
            return True
        if action == sqlite3.SQLITE_FUNCTION:
            return (arg2 or "").lower() not in _SQLITE_DENIED_FUNCTIONS
        if action == sqlite3.SQLITE_PRAGMA:
            pragma = (arg1 or "").lower()
            return pragma in _SQLITE_SCHEMA_PRAGMAS or (
                pragma in _SQLITE_SETTING_PRAGMAS and arg2 is None
            )
        return False


def _describe(action: int, arg1: str | None, arg2: str | None) -> str:
    """Why the authorizer denied an action, named as the user wrote it (``PRAGMA x = 1``)."""
    name = _SQLITE_ACTIONS.get(action, f"action {action}")
    if action == sqlite3.SQLITE_FUNCTION:
        return f"the function {arg2}() is not allowed"
    if action == sqlite3.SQLITE_PRAGMA:
        return f"PRAGMA {arg1}" + (f" = {arg2}" if arg2 is not None else "") + " is not allowed"
    if action == sqlite3.SQLITE_ATTACH:
        return "ATTACH is not allowed (it opens or creates a database file; VACUUM INTO does too)"
    if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE):
        if arg1 in _SQLITE_SCHEMA_TABLES:
            return "CREATE, DROP and ALTER are not allowed (they change the schema)"
        return f"{name} on {arg1} is not allowed"
    return f"{name} {arg1} is not allowed" if arg1 else f"{name} is not allowed"


def _run_on_sqlite(engine: Engine, query: str) -> Rows:
    """``query`` under ``PRAGMA query_only`` and the read-only authorizer, then rolled back."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA query_only = ON")  # after fti's BEGIN (engine.py)
        raw = connection.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        guard = _SqliteReadOnly()
        raw.set_authorizer(guard)
        try:
            result = connection.exec_driver_sql(query)
            columns = list(result.keys()) if result.returns_rows else []
            rows = [tuple(r) for r in result] if result.returns_rows else []
        except DBAPIError as exc:
            raise _sqlite_refusal(exc, guard.denied) from exc
        finally:
            raw.set_authorizer(None)
            connection.rollback()
            connection.exec_driver_sql("PRAGMA query_only = OFF")
    return columns, rows


def _sqlite_refusal(exc: DBAPIError, denied: str | None) -> FtiError:
    message = _failure(exc)
    if denied is not None:
        return ReadOnlyQueryError(f"{REFUSED}: {denied}")
    if any(
        sign in message for sign in ("readonly database", "cannot VACUUM", "may not be modified")
    ):
        return ReadOnlyQueryError(f"{REFUSED}: {message}")
    if "one statement at a time" in message:
        return ReadOnlyQueryError(f"{REFUSED}: it runs one statement at a time ({message})")
    return FtiError(f"query failed: {message}")


# ---- PostgreSQL -------------------------------------------------------------------------------
_RUNNER_BODY = """
DECLARE
  r record;
BEGIN
  -- A cursor: one statement that returns rows, or PostgreSQL refuses it.
  FOR r IN EXECUTE query LOOP
    RETURN NEXT to_json(r);
  END LOOP;
END
"""
# One round trip tells whether role, function and grants are as they must be.
_STATE = """
SELECT
  current_schema() AS schema,
  current_user AS user_name,
  r.oid IS NOT NULL AS role_exists,
  coalesce(NOT (r.rolsuper OR r.rolcanlogin OR r.rolcreaterole OR r.rolcreatedb
                OR r.rolreplication OR r.rolbypassrls), false) AS role_plain,
  coalesce(NOT EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid), false)
    AS role_alone,
  coalesce(NOT (has_function_privilege(r.oid, 'pg_catalog.lo_export(oid, text)', 'EXECUTE')
                OR has_function_privilege(r.oid, 'pg_catalog.pg_read_binary_file(text)',
                                          'EXECUTE')), false) AS role_no_files,
  coalesce(has_schema_privilege(r.oid, current_schema(), 'USAGE'), false) AS schema_usable,
  (SELECT count(*) FROM pg_class c
    WHERE c.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema())
      AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
      AND (r.oid IS NULL OR NOT has_table_privilege(r.oid, c.oid, 'SELECT'))) AS unreadable,
  coalesce(f.proowner = r.oid AND f.prosecdef AND f.prosrc = :body
           AND f.prolang = (SELECT l.oid FROM pg_language l WHERE l.lanname = 'plpgsql')
           AND f.proconfig = ARRAY['search_path=pg_catalog, ' || quote_ident(current_schema())
                                   || ', pg_temp'], false) AS runner_current,
  coalesce(has_function_privilege(f.oid, 'EXECUTE')
           AND NOT has_function_privilege('public', f.oid, 'EXECUTE'), false) AS runner_granted
FROM (SELECT 1) AS one
LEFT JOIN pg_roles r ON r.rolname = :role
LEFT JOIN pg_proc f ON f.proname = :runner
  AND f.pronamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema())
  AND f.proargtypes = '25'::oidvector
"""


def _run_on_postgresql(engine: Engine, query: str) -> Rows:
    """``query`` as role fti_sql_reader inside a READ ONLY transaction, then rolled back."""
    runner = _ensure_reader(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            result = connection.execute(
                text(f"SELECT CAST(r AS text) FROM {runner}(:query) AS r"), {"query": query}
            )
            documents = [row[0] for row in result]
        except DBAPIError as exc:
            raise _postgresql_refusal(exc) from exc
        finally:
            connection.rollback()
    return _decode(documents)


def _postgresql_refusal(exc: DBAPIError) -> FtiError:
    message = _failure(exc)
    state = getattr(exc.orig, "sqlstate", None)
    if message.startswith("cannot open multi-query plan"):
        return ReadOnlyQueryError(f"{REFUSED}: it runs one statement at a time")
    if message.startswith("cannot open ") and message.endswith(" query as cursor"):
        kind = message.removeprefix("cannot open ").removesuffix(" query as cursor")
        return ReadOnlyQueryError(
            f"{REFUSED}: it runs a query that returns rows (SELECT, WITH, VALUES, TABLE, "
            f"EXPLAIN, SHOW), not {kind}"
        )
    if state in ("25006", "42501"):  # read_only_sql_transaction, insufficient_privilege
        return ReadOnlyQueryError(
            f"{REFUSED}: {message} (it runs as role {READER_ROLE}, which may only read "
            "fti's tables and views)"
        )
    return FtiError(f"query failed: {message}")


def _ensure_reader(engine: Engine) -> str:
    """The schema-qualified runner function, after setting up whatever of it is missing."""
    with engine.connect() as connection:
        state = _reader_state(connection)
        if _problems(state):
            connection.rollback()
            try:
                with connection.begin():
                    # One set-up at a time per database; the next one finds it done.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(hashtext(:role))"),
                        {"role": READER_ROLE},
                    )
                    _set_up_reader(connection, _reader_state(connection))
            except DBAPIError as exc:
                raise ReadOnlyQueryError(
                    f"{REFUSED}: it runs every query as role {READER_ROLE}, which user "
                    f"{state['user_name']} cannot set up ({_failure(exc)}); have a superuser "
                    "run one `fti sql 'SELECT 1'` on this database"
                ) from exc
            state = _reader_state(connection)
        problems = _problems(state)
        connection.rollback()
    if problems:
        raise ReadOnlyQueryError(f"{REFUSED}, but {'; '.join(problems)}")
    quote = engine.dialect.identifier_preparer.quote_identifier
    return f"{quote(state['schema'])}.{RUNNER}"


def _reader_state(connection: Connection) -> dict[str, Any]:
    row = connection.execute(
        text(_STATE), {"body": _RUNNER_BODY, "role": READER_ROLE, "runner": RUNNER}
    ).mappings()
    return dict(row.one())


def _problems(state: dict[str, Any]) -> list[str]:
    """What keeps the read-only runner from being safe to use, one reason each."""
    if state["schema"] is None:
        return ["the connection has no current schema (check search_path in FTI_DB_URL)"]
    if not state["role_exists"]:
        return [f"role {READER_ROLE} does not exist"]
    unsafe = [
        f"role {READER_ROLE} {reason}; fix or drop it (fti sql creates it again)"
        for ok, reason in [
            (state["role_plain"], "may log in or has an administrative attribute"),
            (state["role_alone"], "is a member of another role"),
            (state["role_no_files"], "may call functions that read or write server files"),
        ]
        if not ok
    ]
    missing = [
        reason
        for ok, reason in [
            (state["schema_usable"], f"role {READER_ROLE} cannot use schema {state['schema']}"),
            (state["unreadable"] == 0, f"role {READER_ROLE} cannot read every table"),
            (state["runner_current"], f"function {RUNNER} is missing or not as fti made it"),
            (state["runner_granted"], f"function {RUNNER} is not executable (only) by this user"),
        ]
        if not ok
    ]
    return unsafe + missing


def _set_up_reader(connection: Connection, state: dict[str, Any]) -> None:
    """Create the role, grant it reading fti's schema and (re)create the runner function.

    A role that exists with more rights than reading is left alone (and refused later).
    """
    schema = connection.dialect.identifier_preparer.quote_identifier(state["schema"])
    runner = f"{schema}.{RUNNER}(text)"
    if not state["role_exists"]:
        connection.exec_driver_sql(
            f"DO $$ BEGIN CREATE ROLE {READER_ROLE} NOLOGIN NOINHERIT; "
            f"ALTER ROLE {READER_ROLE} SET default_transaction_read_only = on; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    if not state["schema_usable"]:
        connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {READER_ROLE}")
    if state["unreadable"]:
        connection.exec_driver_sql(
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {READER_ROLE}"
        )
        # Tables this user creates later (new migrations) are readable from the start.
        connection.exec_driver_sql(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {READER_ROLE}"
        )
    if not state["runner_current"]:
        connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {runner}")
        connection.exec_driver_sql(
            f"CREATE FUNCTION {schema}.{RUNNER}(query text) RETURNS SETOF json "
            "LANGUAGE plpgsql VOLATILE SECURITY DEFINER "
            f"SET search_path = pg_catalog, {schema}, pg_temp "
            f"AS $fti_sql${_RUNNER_BODY}$fti_sql$"
        )
        connection.exec_driver_sql(f"ALTER FUNCTION {runner} OWNER TO {READER_ROLE}")
    if not state["runner_current"] or not state["runner_granted"]:
        connection.exec_driver_sql(f"REVOKE ALL ON FUNCTION {runner} FROM PUBLIC")
        connection.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION {runner} TO CURRENT_USER")


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs, so column order and repeated names survive."""


def _decode(documents: list[str]) -> Rows:
    """Column names and row tuples from the runner's JSON objects, one per row."""
    if not documents:
        return [], []
    decoded = [json.loads(document, object_pairs_hook=_Pairs) for document in documents]
    columns = [name for name, _ in decoded[0]]
    return columns, [tuple(_plain(value) for _, value in row) for row in decoded]


def _plain(value: Any) -> Any:
    """A JSON value with its objects as dicts (a json/jsonb column reads as a dict)."""
    if isinstance(value, _Pairs):
        return {key: _plain(item) for key, item in value}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
