"""Batch inference pipelines, one per model of each project (``<model>_inference``): score a
day's entities with the model's champion (or a named version).

Each runs when its features land (a new version of the model's first feature group: its
newest date is scored with the champion) and when its training promotes a new champion (the
date it was trained as of is scored with exactly that model and feature version), and on
params.yaml's schedule.inference cron if one is set. A date is scored once per model version:
an asset-started request whose slice that version already wrote from the same feature
versions is left out.

Each date is scored by entity shard, as a group's build is: ``plan_shards`` pins each date's
model and feature versions, starts its prediction run and splits it into shards (params.yaml
``shards``); ``score_shard`` is one mapped task per (date, shard) (``list_shards`` lists them),
spread over the workers, each reading and scoring only its shard's entities into a spool;
``write_scores`` (one mapped task per date) merges its shards' spools, drift counts and skew
profiles and replaces the date's slice in one transaction: a failed shard leaves the previous
slice whole, and a retried shard replaces only its own spool. When the model has a
``challenger``, each scored date is also shadow-scored with it into shadow_predictions (skipped
otherwise), so its realized metrics sit beside the champion's.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import (
    AssetAny,
    Param,
    PokeReturnValue,
    TriggerRule,
    dag,
    task,
)
from fti_common import (
    MANIFESTS,
    START_DATE,
    access_control,
    deadlines,
    dry_run_param,
    group_asset,
    log,
    model_asset,
    project_task,
    run_ref,
    schedule,
    scoring_requests,
    skip,
    skip_if_dry_run,
    tags,
    task_defaults,
)


def inference_dag(manifest: dict, spec: dict) -> None:
    name, spine = spec["name"], spec["groups"][0]
    in_project = project_task(manifest)

    @dag(
        dag_id=f"{name}_inference",
        schedule=schedule(
            manifest, "inference", None, AssetAny(model_asset(name), group_asset(spine))
        ),
        deadline=deadlines(manifest, "inference"),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=4,  # dates side by side: each slice is written under its own lock
        default_args=task_defaults(manifest, "inference"),
        tags=[*tags(manifest), "inference", f"model:{name}"],
        access_control=access_control(manifest),
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
                description=f"Version of {spine} to read. latest: the newest holding the date.",
            ),
            "dry_run": dry_run_param("writing predictions and checking drift"),
        },
    )
    def inference():
        @task
        @in_project
        def plan_scoring(**context) -> list[dict]:
            """What to score; asset-started requests already scored by that version drop out."""
            from datetime import date

            from fti.pipelines.inference import already_scored

            requests = scoring_requests(manifest, context, name, spine)
            fresh = [
                r
                for r in requests
                if r["started_by"] == "form"
                or not already_scored(
                    name, date.fromisoformat(r["as_of"]), r["model"], r["feature_version"]
                )
            ]
            for request in requests:
                if request not in fresh:
                    log.info(
                        "fti: %s on %s is already scored: left out",
                        request["model"],
                        request["as_of"],
                    )
            if not fresh:
                skip(f"{name}: every requested date is already scored by its model version")
            return fresh

        @task.sensor(poke_interval=120, timeout=timedelta(hours=12), mode="reschedule")
        @in_project
        def wait_for_features(requests: list[dict]) -> PokeReturnValue:
            """Until each date's features and model exist (asset-started: at once)."""
            from datetime import date

            from fti.pipelines.inference import scoring_waits_for

            waiting = [
                reason
                for r in requests
                for reason in scoring_waits_for(
                    name, date.fromisoformat(r["as_of"]), r["model"], r["feature_version"]
                )
            ]
            for reason in waiting:
                log.info("fti: waiting: %s", reason)
            return PokeReturnValue(is_done=not waiting, xcom_value=requests)

        @task
        @in_project
        def plan_shards(requests: list[dict], **context) -> list[dict]:
            """Pin each date's model and feature versions, start its prediction run and split
            it into entity shards: a plan per date."""
            from datetime import date

            from fti.pipelines.inference import plan_shards

            plans = []
            for index, request in enumerate(requests):
                logical = request["logical_date"]
                plans.append(
                    plan_shards(
                        name,
                        date.fromisoformat(request["as_of"]),
                        # One prediction run per date: the first keeps the plain '<dag>/<run id>'.
                        run_ref(context) + (f"__{index}" if index else ""),
                        model=request["model"],
                        feature_version=request["feature_version"],
                        airflow_run_id=context["run_id"],
                        logical_date=date.fromisoformat(logical) if logical else None,
                        dry_run=bool(context["params"]["dry_run"]),
                    )
                )
            return plans

        @task
        def list_shards(plans: list[dict]) -> list[dict]:
            """Every (date, shard) to score: what score_shard is mapped over."""
            return [{"plan": p, "shard": i} for p in plans for i in range(p["shards"])]

        @task(map_index_template="{{ shard_label }}")
        @in_project
        def score_shard(work: dict, **context) -> str:
            from airflow.sdk import get_current_context

            from fti.pipelines.inference import score_shard

            plan, shard = work["plan"], work["shard"]
            # What the UI shows for this mapped task (map_index_template).
            get_current_context()["shard_label"] = (
                f"{plan['as_of_date']}, shard {shard + 1} of {plan['shards']}"
            )
            return score_shard(plan, shard)

        # Runs once every shard is done, even if some failed: a date whose shards all scored is
        # written; one with a failed shard fails here, naming it, and keeps its previous slice.
        @task(
            map_index_template="{{ task.op_kwargs['plan']['as_of_date'] }}",
            trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS,
        )
        @in_project
        def write_scores(plan: dict, **context) -> dict:
            from fti.pipelines.inference import write_scores

            return write_scores(plan)

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

        @task(map_index_template="{{ task.op_kwargs['summary']['as_of_date'] }}")
        @in_project
        def score_challenger(summary: dict, **context) -> dict:
            """Shadow-score the date with the challenger, when one is set, beside the served
            slice (shadow_predictions): realized metrics then compare both on the same days."""
            from datetime import date

            from fti.pipelines.inference import score_shadow

            skip_if_dry_run(context, "no shadow scoring")
            logical = context.get("logical_date")  # none for a run an asset event started
            shadow = score_shadow(
                name,
                date.fromisoformat(summary["as_of_date"]),
                f"{summary['run_id']}__challenger",
                airflow_run_id=context["run_id"],
                logical_date=logical.date() if logical else None,
            )
            if "skipped" in shadow:
                skip(f"{name} on {summary['as_of_date']}: {shadow['skipped']}")
            return shadow

        planned = plan_shards(wait_for_features(plan_scoring()))
        scored = score_shard.expand(work=list_shards(planned))
        written = write_scores.expand(plan=planned)
        scored >> written
        check_drift.expand(summary=written)
        score_challenger.expand(summary=written)

    inference()


for _manifest in MANIFESTS:
    for _model in _manifest["models"]:
        inference_dag(_manifest, _model)
