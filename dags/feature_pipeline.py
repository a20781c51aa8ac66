"""Feature pipeline, one per project (``<project>_feature_pipeline``): a day's raw files ->
validated -> every feature group and label group of the project, each published as a new
version (one asset per group).

Generated from each project's manifest: a group added to the definition adds its tasks. A
project that builds no group (it only reads other projects' groups) has none.
Label groups publish the labels whose horizon ended on the run's dates.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from fti_common import (
    MANIFESTS,
    PUBLISH_POOL,
    START_DATE,
    access_control,
    dag_id,
    deadlines,
    dry_run_param,
    group_asset,
    project_task,
    run_day,
    run_ref,
    schedule,
    skip,
    skip_if_dry_run,
    tags,
    task_defaults,
)

from fti.manifest import builds_groups


def feature_dag(manifest: dict) -> None:
    groups = [g["name"] for g in manifest["feature_groups"] + manifest["labels"]]
    in_project = project_task(manifest)

    @dag(
        dag_id=dag_id(manifest, "feature_pipeline"),
        schedule=schedule(manifest, "features", "@daily"),
        deadline=deadlines(manifest, "features"),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=task_defaults(manifest, "features"),
        tags=[*tags(manifest), "features"],
        access_control=access_control(manifest),
        doc_md=__doc__,
        params={
            "start_date": Param(
                None,
                type=["null", "string"],
                format="date",
                description="First date to compute. Empty: the run's logical date.",
            ),
            "end_date": Param(
                None,
                type=["null", "string"],
                format="date",
                description="Last date of a range run (loads history in one version). Empty: start date.",
            ),
            "dry_run": dry_run_param("publishing group versions"),
        },
    )
    def feature_pipeline():
        @task
        @in_project
        def validate_raw_events(**context) -> dict:
            from datetime import timedelta

            from fti.pipelines.features import validate_raw_events
            from fti.pipelines.runs import report_gaps

            start = run_day(manifest, context, context["params"]["start_date"])
            end = run_day(manifest, context, context["params"]["end_date"] or start.isoformat())
            # catchup is off: say which earlier days no run processed (and how to fill them).
            report_gaps(start - timedelta(days=1))
            return {
                "start": start.isoformat(),
                "end": end.isoformat(),
                **validate_raw_events(start, end, run_ref(context)),
            }

        def group_tasks(group: str, validated):  # noqa: ANN001, ANN202 - the tasks of one group
            @task(task_id=f"plan__{group}")
            @in_project
            def plan(validated: dict, **context) -> list[dict]:
                from datetime import date

                from fti.pipelines.features import plan_group

                start, end = (date.fromisoformat(validated[k]) for k in ("start", "end"))
                count = plan_group(group, start, end, run_ref(context))
                return [{"shard": i, "shards": count} for i in range(count)]  # none: no date

            @task(task_id=f"build__{group}", map_index_template="{{ shard_label }}")
            @in_project
            def build(validated: dict, shard: dict, **context) -> str | None:
                from datetime import date

                from airflow.sdk import get_current_context

                from fti.pipelines.features import build_group

                # What the UI shows for this mapped task (map_index_template).
                get_current_context()["shard_label"] = (
                    f"shard {shard['shard'] + 1} of {shard['shards']}"
                )
                start, end = (date.fromisoformat(validated[k]) for k in ("start", "end"))
                return build_group(
                    group,
                    start,
                    end,
                    run_ref(context),
                    shard=shard["shard"],
                    shards=shard["shards"],
                )

            @task(task_id=f"publish__{group}", outlets=[group_asset(group)], pool=PUBLISH_POOL)
            @in_project
            def publish(built: list, **context) -> dict | None:
                from fti.pipelines.features import publish_group

                paths = sorted({path for path in built if path})
                skip_if_dry_run(context, f"built {', '.join(paths)}; not published")
                if not paths:
                    skip(f"{group}: no date of this run to publish yet (labels mature later)")
                published = publish_group(group, paths[0], run_ref(context), shards=len(built))
                if not published["new"]:  # a rerun or a re-run backfill: nothing for training
                    skip(
                        f"{group}: the partitions are what v{published['version']} already holds; "
                        "no new version, no asset event"
                    )
                context["outlet_events"][group_asset(group)].extra = published
                return published

            shards = build.partial(validated=validated).expand(shard=plan(validated))
            return publish(shards)

        validated = validate_raw_events()
        for group in groups:
            group_tasks(group, validated)

    feature_pipeline()


for _manifest in MANIFESTS:
    if builds_groups(_manifest):  # a project that only reads others' groups has none
        feature_dag(_manifest)
