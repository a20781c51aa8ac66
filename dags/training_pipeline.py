"""Training pipelines, one per model of each project (``<model>_training``): run once every
group the model reads (its feature groups and its label group) has published a version since
the last run (and on params.yaml's schedule.retrain cron, if set); the new version is promoted
to champion only if it beats the champion on the same holdout."""

from __future__ import annotations

from airflow.sdk import AssetAll, Param, dag, task
from fti_common import (
    JSON_TYPES,
    MANIFESTS,
    START_DATE,
    access_control,
    deadlines,
    dry_run_param,
    group_asset,
    model_asset,
    params_section,
    project_task,
    run_day,
    run_ref,
    schedule,
    skip_if_dry_run,
    tags,
    task_defaults,
)

VERSION = r"^(latest|v?[0-9]+)$"


def training_dag(manifest: dict, spec: dict) -> None:
    name, groups, label = spec["name"], spec["groups"], spec["label"]
    hyper = params_section(manifest, "train").get(name) or {}
    reads = [*groups, label]
    in_project = project_task(manifest)

    @dag(
        dag_id=f"{name}_training",
        schedule=schedule(manifest, "retrain", None, AssetAll(*(group_asset(g) for g in reads))),
        deadline=deadlines(manifest, "training"),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=task_defaults(manifest, "training"),
        tags=[*tags(manifest), "training", f"model:{name}"],
        access_control=access_control(manifest),
        doc_md=f"Training of **{name}** ({spec['task']}, {spec['metric']}): label group "
        f"`{label}`, features from {', '.join(f'`{g}`' for g in groups)}.\n\n{__doc__}",
        params={
            **{
                f"{group}_version": Param(
                    "latest",
                    type="string",
                    pattern=VERSION,
                    description=f"Version of {group} to read; a run started by new versions "
                    "uses those.",
                )
                for group in reads
            },
            "as_of": Param(
                None,
                type=["null", "string"],
                format="date",
                description=f"Train as of this date. Empty: the newest date of {groups[0]}.",
            ),
            # One typed field per hyper-parameter, defaults from params.yaml's train.<model>.
            **{
                key: Param(
                    value,
                    type=JSON_TYPES.get(type(value), "string"),
                    description=f"Hyper-parameter {key} (default: params.yaml train.{name}.{key}).",
                )
                for key, value in hyper.items()
                if key != "features"
            },
            "features": Param(
                hyper.get("features"),
                type=["null", "array"],
                items={"type": "string"},
                description="Features to train on ('group.column' or 'group.*'). Empty: the "
                "model's own list.",
            ),
            "dry_run": dry_run_param("registering and promoting a model version"),
        },
    )
    def training():
        @task
        @in_project
        def build_training_set(**context) -> str:
            from datetime import date

            from fti.pipelines.training import build_training_set

            params = context["params"]
            if params["as_of"] or context.get("logical_date"):  # asset-started runs have neither
                run_day(
                    manifest, context, params["as_of"]
                )  # refuses a date before the project's start
            versions = {group: params[f"{group}_version"] for group in reads}
            for group in reads:  # the versions that landed, when they started this run
                for event in context.get("triggering_asset_events", {}).get(group_asset(group), []):
                    versions[group] = event.extra.get("version", versions[group])
            as_of = params["as_of"]
            return build_training_set(
                name,
                versions,
                date.fromisoformat(as_of) if as_of else None,
                run_ref(context),
                features=params.get("features") or None,
            )

        @task
        @in_project
        def train_model(training_set: str, **context) -> int:
            from fti.pipelines.training import train_model, try_training

            chosen = {key: context["params"][key] for key in hyper if key != "features"}
            if context["params"]["dry_run"]:
                metrics = try_training(training_set, chosen)
                skip_if_dry_run(context, f"holdout metrics {metrics}; no version registered")
            return train_model(training_set, run_ref(context), chosen)

        @task(outlets=[model_asset(name)])
        @in_project
        def promote_if_better(training_set: str, version: int, **context) -> dict:
            from fti.pipelines.training import promote_if_better

            decision = promote_if_better(training_set, version, run_ref(context))
            # What the inference DAG scores when this event starts it: no "latest" guessing.
            context["outlet_events"][model_asset(name)].extra = {
                key: decision[key]
                for key in (
                    "model",
                    "model_version",
                    "promoted",
                    "feature_version",
                    "feature_versions",
                    "label_version",
                    "as_of",
                    "reason",
                )
            }
            return decision

        training_set = build_training_set()
        promote_if_better(training_set, train_model(training_set))

    training()


for _manifest in MANIFESTS:
    for _model in _manifest["models"]:
        training_dag(_manifest, _model)
