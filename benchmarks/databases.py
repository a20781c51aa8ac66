"""Throwaway PostgreSQL databases for the benchmarks that run on PostgreSQL: one created per
run (or size) on the server ``--pg-url`` names (trust auth, no database in the URL), and dropped
at the end."""

from __future__ import annotations

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _admin(server: str) -> str:
    return _libpq(server) + "/postgres"


def create_pg_database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(_admin(server), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def drop_pg_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_admin(server), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
