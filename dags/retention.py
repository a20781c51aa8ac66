"""Retention (``retention``): remove the model artifacts, feature-store versions and staged files
that params.yaml's ``retention`` section does not keep, as `fti gc` does.

It runs on params.yaml's ``schedule.retention`` cron (none by default: trigger it from the UI,
or run `fti gc`); a dry run logs what it would remove, as `fti gc --dry-run` lists it. Its one
task holds the feature store's publish slot, and every step is safe to be killed in: a retry,
or the next run, finishes the job.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from fti_common import (
    PUBLISH_POOL,
    START_DATE,
    TAGS,
    access_control,
    dry_run_param,
    fail_fast,
    log,
    schedule,
    task_defaults,
)


@dag(
    dag_id="retention",
    schedule=schedule("retention", None),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults("features"),  # the workers that have the feature store
    tags=[*TAGS, "retention"],
    access_control=access_control(),
    doc_md=__doc__,
    params={"dry_run": dry_run_param("removing anything (the plan is logged)")},
)
def retention() -> None:
    @task(pool=PUBLISH_POOL)
    @fail_fast
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
