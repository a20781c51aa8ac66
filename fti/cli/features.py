"""`fti features …`: the feature pipeline, the feature-store catalog and the online store."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fti.cli import output
from fti.cli.options import JsonFlag, OwnerFilter, cli_run_id, parse_date, settings
from fti.errors import FtiError

features_app = typer.Typer(
    help="Feature pipeline and the feature-store catalog.", no_args_is_help=True
)


@features_app.command("run")
def features_run(
    date_: Annotated[str | None, typer.Option("--date", help="Logical date (YYYY-MM-DD).")] = None,
    start: Annotated[str | None, typer.Option(help="First date of a range run.")] = None,
    end: Annotated[str | None, typer.Option(help="Last date of a range run.")] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(help="Only this feature or label group (repeat for more). Default: all."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Feature pipeline for one date (or a range) -> a new version of each feature and label group."""
    from fti.pipelines.features import run_features

    s = settings()
    if date_:
        first = last = parse_date(date_)
    elif start and end:
        first, last = parse_date(start), parse_date(end)
    else:
        raise typer.BadParameter("give --date D, or --start S and --end E")

    def run() -> dict[str, Any]:
        run_id = cli_run_id("features")
        return {"run_id": run_id, **run_features(first, last, run_id, s, group)}

    output.emit(run(), as_json)


@features_app.command("list")
def features_list(owner: OwnerFilter = None, as_json: JsonFlag = False) -> None:
    """Every feature and label group in the catalog: its owner, its newest version, rows, dates."""
    from fti.db.engine import session_scope
    from fti.ownership import GROUP_KINDS, owners
    from fti.store.catalog import as_dict, newest_versions

    with session_scope(settings().db_url) as session:
        claimed = owners(session, GROUP_KINDS)
        rows = [
            as_dict(r) | {"owner": claimed.get((r.kind, r.group_name))}
            for r in newest_versions(session)
        ]
    if owner is not None:
        rows = [r for r in rows if r["owner"] == owner]
    output.emit(
        rows,
        as_json,
        ["group", "kind", "owner", "version", "rows", "min_date", "max_date", "created_at"],
    )


@features_app.command("versions")
def features_versions(group: str, as_json: JsonFlag = False) -> None:
    """The catalog of a feature group: version, rows, time range, DVC hash, git tag."""
    from fti.db.engine import session_scope
    from fti.definitions import load_project
    from fti.store.catalog import as_dict, list_versions

    s = settings()
    load_project(s.project).group(group)  # a typo names the known groups
    with session_scope(s.db_url) as session:
        rows = [as_dict(r) for r in list_versions(session, group)]
    output.emit(
        rows,
        as_json,
        [
            "version",
            "kind",
            "rows",
            "partitions",
            "min_date",
            "max_date",
            "dvc_md5",
            "git_tag",
            "created_at",
        ],
    )


@features_app.command("show")
def features_show(
    group: str,
    version: Annotated[str, typer.Option(help="Version number or 'latest'.")] = "latest",
    as_json: JsonFlag = False,
) -> None:
    """Schema, statistics and lineage of one feature version."""
    from fti.db.engine import session_scope
    from fti.store.catalog import as_dict, get_version
    from fti.store.versions import FeatureStore

    def run() -> dict[str, Any]:
        s = settings()
        store = FeatureStore(s.store_path)
        with session_scope(s.db_url) as session:
            return as_dict(get_version(session, group, store.resolve(group, version)), full=True)

    output.emit(run(), as_json)


@features_app.command("diff")
def features_diff(
    group: str,
    from_version: Annotated[str, typer.Argument(help="Older version (number, vN or 'latest').")],
    to_version: Annotated[str, typer.Argument(help="Newer version (number, vN or 'latest').")],
    as_json: JsonFlag = False,
) -> None:
    """Schema changes, row-count change and statistic shifts between two feature versions."""
    from fti.db.engine import session_scope
    from fti.store.catalog import diff_versions, get_version
    from fti.store.versions import FeatureStore

    def run() -> dict[str, Any]:
        s = settings()
        store = FeatureStore(s.store_path)
        with session_scope(s.db_url) as session:
            a, b = (
                get_version(session, group, store.resolve(group, v))
                for v in (from_version, to_version)
            )
            return diff_versions(a, b)

    output.emit(run(), as_json)


@features_app.command("get")
def features_get(
    group: str,
    entities: Annotated[list[str], typer.Argument(help="Entity keys, e.g. 494 17.")],
    as_json: JsonFlag = False,
) -> None:
    """Rows from the online store: each entity's newest row of the group's version online."""
    from fti.definitions import load_project
    from fti.online.store import online_records

    s = settings()
    chosen = load_project(s.project).readable_group(group)  # a typo names the known groups
    if chosen.kind != "features":
        raise FtiError(f"{group!r} is a {chosen.noun}: only feature groups are served online")
    version, records = online_records(s.db_url, group, entities)
    if version is None:
        raise FtiError(
            f"no version of {group} is online: publish one (`fti features run`) or run "
            f"`fti features materialise --group {group}`"
        )
    if as_json:
        output.emit(records, as_json)
        return
    output.emit([r for r in records if r["found"]], as_json)
    missing = [r["entity"] for r in records if not r["found"]]
    if missing:
        typer.echo(f"not online in {group} v{version}: {' '.join(missing)}", err=True)


@features_app.command("materialise")
def features_materialise(
    group: Annotated[
        list[str] | None, typer.Option(help="Only this feature group (repeat for more).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Put the newest version of each feature group into the online store (idempotent)."""
    from fti.online.materialise import materialise_latest

    done = materialise_latest(settings(), group or None)
    output.emit([m.as_dict() for m in done], as_json)
