"""Retention, one per project (``<project>_retention``): remove the model artifacts, feature-store versions and staged files
that params.yaml's ``retention`` section does not keep, as `fti gc` does.

It runs on params.yaml's ``schedule.retention`` cron (none by default: trigger it from the UI,
or run `fti gc`); a dry run logs what it would remove, as `fti gc --dry-run` lists it. Its one
task holds the feature store's publish slot, and every step is safe to be killed in: a retry,
or the next run, finishes the job.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from fti_common import (
    MANIFESTS,
    PUBLISH_POOL,
    START_DATE,
    access_control,
    dag_id,
    dry_run_param,
    log,
    project_task,
    schedule,
    tags,
    task_defaults,
)


def retention_dag(manifest: dict) -> None:
    in_project = project_task(manifest)

    @dag(
        dag_id=dag_id(manifest, "retention"),
        schedule=schedule(manifest, "retention", None),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        # the workers that have the feature store
        default_args=task_defaults(manifest, "features"),
        tags=[*tags(manifest), "retention"],
        access_control=access_control(manifest),
        doc_md=__doc__,
        params={"dry_run": dry_run_param("removing anything (the plan is logged)")},
    )
    def retention() -> None:
        @task(pool=PUBLISH_POOL)
        @in_project
        def collect_garbage(**context) -> dict:
            from fti.pipelines.retention import collect_garbage, plan_retention

            if context["params"].get("dry_run"):
                plan = plan_retention()
                for removal in plan.removals():
                    log.info("fti: would remove %s", removal)
                return plan.summary()
            return collect_garbage()

        collect_garbage()

    retention()


for _manifest in MANIFESTS:
    retention_dag(_manifest)
