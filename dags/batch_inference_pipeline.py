"""Batch inference pipelines, one per model of the project (``<model>_inference``): score a
day's entities with the model's champion (or a named version).

Each runs on params.yaml's schedule.inference cron (daily) once that day's features and a
champion exist, and whenever its training run promotes a new champion: that run scores the
date the model was trained as of, with exactly the model and feature version its asset event
names.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, PokeReturnValue, dag, task
from fti_common import (
    DEFAULT_ARGS,
    MANIFEST,
    START_DATE,
    TAGS,
    dry_run_param,
    log,
    model_asset,
    run_ref,
    schedule,
    scoring_request,
    skip_if_dry_run,
)


def inference_dag(spec: dict) -> None:
    name = spec["name"]

    @dag(
        dag_id=f"{name}_inference",
        schedule=schedule("inference", "@daily", [model_asset(name)]),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=[*TAGS, "inference", f"model:{name}"],
        doc_md=f"Batch inference of **{name}** ({spec['task']}).\n\n{__doc__}",
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
                description=f"Version of {spec['groups'][0]} to read. latest: the newest "
                "holding the date.",
            ),
            "dry_run": dry_run_param("writing predictions and checking drift"),
        },
    )
    def inference():
        @task.sensor(poke_interval=300, timeout=timedelta(hours=12), mode="reschedule")
        def wait_for_features(**context) -> PokeReturnValue:
            """Wait until the date's features and the model exist; pass on what to score."""
            from datetime import date

            from fti import pipelines

            request = scoring_request(context, name)
            waiting = pipelines.scoring_waits_for(
                name,
                date.fromisoformat(request["as_of"]),
                request["model"],
                request["feature_version"],
            )
            for reason in waiting:
                log.info("fti: waiting: %s", reason)
            return PokeReturnValue(is_done=not waiting, xcom_value=request)

        @task
        def score_batch(request: dict, **context) -> dict:
            from datetime import date

            from fti import pipelines

            logical = request["logical_date"]
            return pipelines.score_batch(
                name,
                date.fromisoformat(request["as_of"]),
                run_ref(context),
                model=request["model"],
                feature_version=request["feature_version"],
                airflow_run_id=context["run_id"],
                logical_date=date.fromisoformat(logical) if logical else None,
                dry_run=bool(context["params"]["dry_run"]),
            )

        @task(retries=0)
        def check_drift(summary: dict, **context) -> None:
            """Fail loudly (the predictions are already written) when drift passed its threshold."""
            from airflow.sdk.exceptions import AirflowFailException

            skip_if_dry_run(
                context, f"scored {summary['rows']} rows; drift in {summary['drift_breached']}"
            )
            if summary["drift_breached"]:
                raise AirflowFailException(
                    f"drift over the threshold in {', '.join(summary['drift_breached'])} for "
                    f"{summary['model']} v{summary['model_version']} on {summary['as_of_date']}; "
                    f"its predictions were written. See `fti monitor report --run {summary['run_id']}` "
                    "or the fti page, then retrain or clear this task to accept the drift."
                )

        check_drift(score_batch(wait_for_features()))

    inference()


for model in MANIFEST["models"]:
    inference_dag(model)
