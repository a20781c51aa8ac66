"""`fti gc`: remove what retention does not keep (params.yaml ``retention``), or list it."""

from __future__ import annotations

from typing import Annotated

import typer

from fti.cli import output
from fti.cli.options import JsonFlag, settings

COLUMNS = ["kind", "what", "files", "bytes", "action"]


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; change nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove what params.yaml's retention section does not keep (--dry-run: list it).

    Old model artifacts, feature-store versions and staged files. Kept: every model version an alias points at or ever pointed at, or a prediction names,
    and each model's newest keep_model_versions (the others are marked pruned in the
    registry and lose their artifact); each group's newest keep_group_versions and every
    group version a kept model version, a prediction run or a staged training set read (the
    others lose their git tag and catalog row, then the DVC objects no remaining version
    reads are removed from the cache, and from the DVC remote with remote: true); staged
    days, builds, training sets and spools that no build, id check or rerun of the newest
    rerun_days dates still reads. Safe to interrupt: the next run finishes.
    """
    from fti.pipelines.retention import collect_garbage, plan_retention

    s = settings()
    if dry_run:
        plan = plan_retention(s)
        if as_json:
            output.emit({"removals": plan.removals(), **plan.summary()}, True)
            return
        output.emit(plan.listing(), False, COLUMNS)
        _say(plan.summary(), "would be")
        return
    done = collect_garbage(s)
    if as_json:
        output.emit(done, True)
        return
    _say(done, "were")


def _say(summary: dict, verb: str) -> None:
    output.console.print(
        f"{summary['model_versions_pruned']} model version(s) {verb} pruned "
        f"({summary['model_versions_kept']} kept), {summary['artifact_bytes']:,} bytes of "
        f"artifacts; {summary['group_versions_dropped']} group version(s) {verb} dropped "
        f"({summary['group_versions_kept']} kept); {summary['staging_bytes']:,} bytes of "
        "staged files"
    )
    for source, said in summary["staging_cuts"].items():
        output.console.print(f"staged {source}: {said}")
