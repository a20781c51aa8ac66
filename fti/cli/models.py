"""`fti train` (registered on the root app in ``fti/cli/__init__.py``) and `fti models …`: the
training pipeline and the model registry's versions, aliases, promotion and rollback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from fti.cli import output
from fti.cli.options import JsonFlag, OwnerFilter, cli_run_id, parse_date, settings

models_app = typer.Typer(
    help="The model registry: versions, aliases, promotion, rollback.", no_args_is_help=True
)


# ---- training ---------------------------------------------------------------------------------
def train(
    model: Annotated[str, typer.Option(help="Model name from the project.")],
    version: Annotated[
        list[str] | None,
        typer.Option(
            help="GROUP=VERSION for a feature or label group (repeat); others read 'latest'."
        ),
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option(help="Train on these features ('group.column', 'group.*'; repeat)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Train as of this date (default: newest features).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Training pipeline -> a new model version, promoted to champion only if better."""
    from fti.pipelines.training import build_training_set, promote_if_better, train_model

    s = settings()
    versions = {}
    for pair in version or []:
        group, sep, ref = pair.partition("=")
        if not sep or not group or not ref:
            raise typer.BadParameter(f"{pair!r} is not GROUP=VERSION")
        versions[group] = ref

    def run() -> dict[str, Any]:
        run_id = cli_run_id("train")
        path = build_training_set(
            model, versions, parse_date(as_of) if as_of else None, run_id, s, feature
        )
        number = train_model(path, run_id, settings=s)
        return promote_if_better(path, number, run_id, s)

    output.emit(run(), as_json)


# ---- the registry -----------------------------------------------------------------------------
@models_app.command("list")
def models_list(owner: OwnerFilter = None, as_json: JsonFlag = False) -> None:
    """Model versions with their owner, metrics, aliases, feature group/version and features."""
    from fti.db.engine import session_scope
    from fti.ownership import MODEL, owners
    from fti.registry.versions import aliases_by_version, as_dict, list_versions

    with session_scope(settings().db_url) as session:
        tags = aliases_by_version(session)
        claimed = owners(session, [MODEL])
        rows = [
            as_dict(r, tags.get((r.name, r.version))) | {"owner": claimed.get((MODEL, r.name))}
            for r in list_versions(session)
        ]
    if owner is not None:
        rows = [r for r in rows if r["owner"] == owner]
    output.emit(
        rows,
        as_json,
        [
            "name",
            "owner",
            "version",
            "aliases",
            "task",
            "metric",
            "metric_value",
            "label_version",
            "train_end",
        ],
    )


@models_app.command("show")
def models_show(
    model: str,
    version: Annotated[str, typer.Option(help="Version number or alias.")] = "champion",
    as_json: JsonFlag = False,
) -> None:
    """One version's full lineage, artifact path and sha256, and the project that owns it."""
    from fti.db.engine import session_scope
    from fti.ownership import MODEL, owner_of
    from fti.registry import aliases
    from fti.registry.versions import aliases_by_version, as_dict, get_version

    def run() -> dict[str, Any]:
        with session_scope(settings().db_url) as session:
            row = get_version(session, model, aliases.resolve(session, model, version))
            shown = as_dict(
                row, aliases_by_version(session, model).get((model, row.version)), full=True
            )
            return {"name": row.name, "owner": owner_of(session, MODEL, model)} | shown

    output.emit(run(), as_json)


@models_app.command("compare")
def models_compare(
    model: str,
    first: str,
    second: str,
    as_json: JsonFlag = False,
    realized: Annotated[
        bool,
        typer.Option(
            "--realized",
            help="Realized metric of both versions on each as-of date both scored, once labels "
            "landed, then over the rows of all those dates pooled.",
        ),
    ] = False,
) -> None:
    """Two versions side by side: metrics, feature sets, training windows, parameters."""
    from fti.db.engine import session_scope
    from fti.registry import aliases
    from fti.registry.versions import compare, get_version

    if realized:
        from fti.definitions import load_project
        from fti.monitoring.realized import LabelReader, compare_realized
        from fti.store.versions import FeatureStore

        s = settings()
        labels = LabelReader.from_project(FeatureStore(s.store_path), load_project(s.project))
        with session_scope(s.db_url) as session:
            a, b = (aliases.resolve(session, model, ref) for ref in (first, second))
            output.emit(compare_realized(session, model, a, b, labels), as_json)
        return

    def run() -> dict[str, Any]:
        with session_scope(settings().db_url) as session:
            a, b = (
                get_version(session, model, aliases.resolve(session, model, ref))
                for ref in (first, second)
            )
            return compare(a, b)

    output.emit(run(), as_json)


@models_app.command("promote")
def models_promote(
    model: str,
    version: int,
    alias: Annotated[str, typer.Option(help="Alias to point at the version.")] = "champion",
    reason: Annotated[
        str, typer.Option(help="Why; recorded in the alias history.")
    ] = "manual promotion",
) -> None:
    """Point an alias at a version (recorded with who and why)."""
    from fti.db.engine import session_scope
    from fti.registry import aliases

    def run() -> None:
        with session_scope(settings().db_url, write=True) as session:
            event = aliases.set_alias(session, model, alias, version, _actor(), reason)
            output.console.print(f"{model} {alias}: v{event.from_version} -> v{event.to_version}")

    run()


@models_app.command("rollback")
def models_rollback(
    model: str,
    alias: Annotated[str, typer.Option(help="Alias to roll back.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why; recorded in the alias history.")] = "rollback",
    rescore: Annotated[
        bool,
        typer.Option(
            "--rescore/--no-rescore", help="Re-score the dates the rolled-back version scored."
        ),
    ] = True,
) -> None:
    """Re-point the alias to its previous holder; re-score what the replaced version scored."""
    from fti.pipelines.inference import rollback_model

    def run() -> None:
        result = rollback_model(model, alias, _actor(), reason, rescore, settings())
        output.console.print(
            f"{model} {alias}: v{result['from_version']} -> v{result['to_version']}; "
            f"re-scored {len(result['rescored'])} date(s): {', '.join(result['rescored']) or 'none'}"
        )

    run()


@models_app.command("history")
def models_history(
    model: str,
    alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
    at: Annotated[
        str | None, typer.Option(help="Only changes up to this date (end of day, UTC) or ISO time.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every alias change, oldest first; with --at, also which version held the alias then."""
    from fti.db.engine import session_scope
    from fti.registry import aliases

    when = None
    if at:
        try:
            when = datetime.fromisoformat(at if "T" in at else f"{at}T23:59:59.999999")
        except ValueError as exc:
            raise typer.BadParameter(f"{at!r} is not an ISO date or time") from exc
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    with session_scope(settings().db_url) as session:
        rows = [aliases.event_as_dict(e) for e in aliases.history(session, model, alias, when)]
    output.emit(rows, as_json)
    if when is not None and not as_json:
        for name in sorted({r["alias"] for r in rows}):
            held = [r for r in rows if r["alias"] == name][-1]["to_version"]
            output.console.print(f"at {when.isoformat()}: {model} {name} was v{held}")


def _actor() -> str:
    """Who runs the command (the OS user), as recorded in the alias history."""
    import getpass

    return getpass.getuser()
