"""Batch inference: score every active entity of the day with the champion (or a named version)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, PokeReturnValue, dag, task
from fti_common import DAILY, DEFAULT_ARGS, START_DATE, TAGS, run_day, run_ref


@dag(
    schedule=DAILY,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "inference"],
    doc_md=__doc__,
    params={
        "as_of_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Date to score. Empty: the run's logical date.",
        ),
        "model": Param(
            "champion",
            type="string",
            pattern=r"^([A-Za-z_][A-Za-z0-9_-]*|v?[0-9]+)$",
            description="Model alias (champion, challenger, ...) or version number.",
        ),
        "feature_version": Param(
            "latest",
            type="string",
            pattern=r"^(latest|v?[0-9]+)$",
            description="Feature version to read. latest: the newest holding the date.",
        ),
    },
)
def batch_inference_pipeline():
    @task.sensor(poke_interval=300, timeout=timedelta(hours=12), mode="reschedule")
    def wait_for_features(**context) -> PokeReturnValue:
        from fti import pipelines

        day = run_day(context, context["params"]["as_of_date"])
        ready = pipelines.features_available(day, context["params"]["feature_version"])
        return PokeReturnValue(is_done=ready, xcom_value=day.isoformat())

    @task
    def score_batch(as_of: str, **context) -> dict:
        from datetime import date

        from fti import pipelines

        return pipelines.score_batch(
            date.fromisoformat(as_of),
            run_ref(context),
            model=context["params"]["model"],
            feature_version=context["params"]["feature_version"],
            airflow_run_id=context["run_id"],
            logical_date=run_day(context),
        )

    @task(retries=0)
    def check_drift(summary: dict) -> None:
        """Fail loudly (the predictions are already written) when drift passed its threshold."""
        from airflow.sdk.exceptions import AirflowFailException

        if summary["drift_breached"]:
            raise AirflowFailException(
                f"drift over the threshold in {', '.join(summary['drift_breached'])} for "
                f"{summary['model']} v{summary['model_version']} on {summary['as_of_date']}; "
                f"its predictions were written. See `fti monitor report --run {summary['run_id']}` "
                "or the fti page, then retrain or clear this task to accept the drift."
            )

    check_drift(score_batch(wait_for_features()))


batch_inference_pipeline()
