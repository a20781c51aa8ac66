"""Training pipeline: runs when a feature version lands (and on params.yaml's schedule.retrain
cron, if set); the new version is promoted to champion only if it is better."""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from fti_common import (
    DEFAULT_ARGS,
    FEATURES,
    JSON_TYPES,
    MODELS,
    START_DATE,
    TAGS,
    dry_run_param,
    params_section,
    run_ref,
    schedule,
    skip_if_dry_run,
)

TRAIN = params_section("train")


@dag(
    schedule=schedule("retrain", None, FEATURES),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "training"],
    doc_md=__doc__,
    params={
        "feature_version": Param(
            "latest",
            type="string",
            pattern=r"^(latest|v?[0-9]+)$",
            description="Feature version to train on; a run started by a new feature version uses that one.",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Train as of this date. Empty: the newest date in the feature version.",
        ),
        # One typed field per hyper-parameter, defaults from params.yaml's train section.
        **{
            name: Param(
                value,
                type=JSON_TYPES.get(type(value), "string"),
                description=f"Hyper-parameter {name} (default: params.yaml train.{name}).",
            )
            for name, value in TRAIN.items()
        },
        **(
            {}
            if "features" in TRAIN
            else {
                "features": Param(
                    None,
                    type=["null", "array"],
                    items={"type": "string"},
                    description="Feature columns to train on. Empty: the project's list.",
                )
            }
        ),
        "dry_run": dry_run_param("registering and promoting a model version"),
    },
)
def training_pipeline():
    @task
    def build_training_set(**context) -> str:
        from datetime import date

        from fti import pipelines

        version = context["params"]["feature_version"]
        for event in context.get("triggering_asset_events", {}).get(FEATURES, []):
            version = event.extra.get("feature_version", version)  # the version that landed
        as_of = context["params"]["as_of"]
        return pipelines.build_training_set(
            version, date.fromisoformat(as_of) if as_of else None, run_ref(context)
        )

    @task
    def train_model(training_set: str, **context) -> int:
        from fti import pipelines

        chosen = {name: context["params"][name] for name in TRAIN}
        if context["params"].get("features"):
            chosen["features"] = list(context["params"]["features"])
        if context["params"]["dry_run"]:
            metrics = pipelines.try_training(training_set, chosen)
            skip_if_dry_run(context, f"holdout metrics {metrics}; no version registered")
        return pipelines.train_model(training_set, run_ref(context), chosen)

    @task(outlets=[MODELS])
    def promote_if_better(training_set: str, version: int, **context) -> dict:
        from fti import pipelines

        decision = pipelines.promote_if_better(training_set, version, run_ref(context))
        # What the inference DAG scores when this event starts it: no "latest" guessing.
        context["outlet_events"][MODELS].extra = {
            key: decision[key] for key in ("model_version", "promoted", "feature_version", "as_of")
        }
        return decision

    training_set = build_training_set()
    promote_if_better(training_set, train_model(training_set))


training_pipeline()
