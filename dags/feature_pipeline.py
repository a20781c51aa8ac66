"""Feature pipeline: raw events of a day -> validated -> features -> a new feature-group version."""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from fti_common import (
    DEFAULT_ARGS,
    FEATURES,
    PUBLISH_POOL,
    START_DATE,
    TAGS,
    dry_run_param,
    run_day,
    run_ref,
    schedule,
    skip_if_dry_run,
)


@dag(
    schedule=schedule("features", "@daily"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "features"],
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
        "dry_run": dry_run_param("publishing a feature version"),
    },
)
def feature_pipeline():
    @task
    def validate_raw_events(**context) -> dict:
        from fti import pipelines

        start = run_day(context, context["params"]["start_date"])
        end = run_day(context, context["params"]["end_date"] or start.isoformat())
        return {
            "start": start.isoformat(),
            "end": end.isoformat(),
            **pipelines.validate_raw_events(start, end, run_ref(context)),
        }

    @task
    def build_features(validated: dict, **context) -> str:
        from datetime import date

        from fti import pipelines

        start, end = date.fromisoformat(validated["start"]), date.fromisoformat(validated["end"])
        return pipelines.build_features(start, end, run_ref(context))

    @task(outlets=[FEATURES], pool=PUBLISH_POOL)
    def publish_feature_version(partitions_path: str, **context) -> int:
        from fti import pipelines

        skip_if_dry_run(context, f"validated and built {partitions_path}; not published")
        version = pipelines.publish_features(partitions_path, run_ref(context))
        context["outlet_events"][FEATURES].extra = {"feature_version": version}
        return version

    publish_feature_version(build_features(validate_raw_events()))


feature_pipeline()
