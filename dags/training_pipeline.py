"""Training pipeline: runs when a feature version lands; promoted to champion only if better."""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from fti_common import DEFAULT_ARGS, FEATURES, MODELS, START_DATE, TAGS, run_ref


@dag(
    schedule=[FEATURES],
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
        "hyperparameters": Param(
            {},
            type="object",
            description='Overrides of params.yaml\'s train section, e.g. {"max_iter": 300}.',
        ),
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

        return pipelines.train_model(
            training_set, run_ref(context), context["params"]["hyperparameters"]
        )

    @task(outlets=[MODELS])
    def promote_if_better(training_set: str, version: int, **context) -> dict:
        from fti import pipelines

        decision = pipelines.promote_if_better(training_set, version, run_ref(context))
        context["outlet_events"][MODELS].extra = {
            "model_version": version,
            "promoted": decision["promoted"],
        }
        return decision

    training_set = build_training_set()
    promote_if_better(training_set, train_model(training_set))


training_pipeline()
