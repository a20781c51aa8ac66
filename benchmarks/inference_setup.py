"""The FTI home ``bench_inference.py`` scores in: one partition of synthetic rows for each of the
churn model's two feature groups (the demo's columns and Arrow types), published; the churn
model fitted on a synthetic sample with a real signal and registered as champion with its full
lineage; and the champion's row and prediction slice, as the timed steps read them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from workers import _settings

AS_OF = date(2026, 6, 30)
TRAIN_ROWS = 50_000
GROUP = "customer_activity"  # the churn model's spine
PROFILE_GROUP = "customer_profile"
MODEL = "churn"


def _feature_table(rows: int, seed: int, day: date | None) -> Any:
    """``rows`` synthetic rows of both churn feature groups' columns, in their Arrow types.

    Built column by column from numpy (one copy of the rows in memory). With ``day`` None the
    table has no feature_date and carries a 0/1 ``label`` driven by the features (training).
    ``_group_table`` cuts one group's partition out of it.
    """
    import numpy as np
    import pyarrow as pa

    from churn_demo.project import PLANS, REGIONS

    rng = np.random.default_rng(seed)
    active = rng.integers(1, 31, rows)
    logins_30d = rng.poisson(active * 1.3)
    logins_7d = rng.binomial(logins_30d, 0.25)
    purchases = rng.poisson(0.8, rows)
    spend_30d = np.round(purchases * rng.gamma(2.0, 15.0, rows), 2)
    spend_7d = np.round(spend_30d * rng.uniform(0.0, 0.4, rows), 2)
    tickets = rng.poisson(0.3, rows)
    since = np.minimum(rng.geometric(0.2, rows) - 1, 30)
    tenure = rng.integers(0, 1500, rows)
    plan_age = np.minimum(tenure, rng.integers(0, 900, rows))
    plan_codes = rng.choice(3, rows, p=[0.5, 0.3, 0.2]).astype(np.int8)
    region_codes = rng.choice(3, rows).astype(np.int8)
    seats = rng.integers(1, 50, rows)
    fee = np.round(np.array([9.0, 19.0, 39.0])[plan_codes] * seats * rng.uniform(0.8, 1.0, rows), 2)

    def text(codes: Any, values: list[str]) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(values)).cast(
            pa.large_string()
        )

    columns: dict[str, Any] = {"customer_id": pa.array(np.arange(1, rows + 1, dtype=np.int64))}
    if day is not None:
        days = np.full(rows, (day - date(1970, 1, 1)).days, dtype=np.int32)
        columns["feature_date"] = pa.array(days).cast(pa.date32())
    columns |= {
        # customer_activity
        "logins_7d": pa.array(logins_7d.astype(np.int64)),
        "logins_30d": pa.array(logins_30d.astype(np.int64)),
        "purchases_30d": pa.array(purchases.astype(np.int64)),
        "spend_7d": pa.array(spend_7d),
        "spend_30d": pa.array(spend_30d),
        "tickets_30d": pa.array(tickets.astype(np.int64)),
        "active_days_30d": pa.array(active.astype(np.int64)),
        "days_since_last_login": pa.array(since.astype(np.int64)),
        # customer_profile
        "plan": text(plan_codes, PLANS),
        "monthly_fee": pa.array(fee),
        "seats": pa.array(seats.astype(np.int64)),
        "region": text(region_codes, REGIONS),
        "tenure_days": pa.array(tenure.astype(np.int64)),
        "days_since_plan_change": pa.array(plan_age.astype(np.int64)),
    }
    if day is None:
        logit = (
            -1.5
            + 0.12 * since
            - 0.06 * active
            + 0.6 * tickets
            - 0.0015 * tenure
            - 0.3 * (plan_codes == 2)
        )
        chance = 1 / (1 + np.exp(-logit))
        columns["label"] = pa.array((rng.uniform(size=rows) < chance).astype(np.int64))
    return pa.table(columns)


def _group_table(table: Any, group: str) -> Any:
    """One feature group's partition (key, date, its declared features) of ``_feature_table``."""
    from churn_demo.project import project

    features = list(project.feature_group(group).features)
    return table.select(["customer_id", "feature_date", *features])


def _publish(home: str, rows: int) -> dict[str, int]:
    """Initialise the home's store and publish ONE partition of ``rows`` synthetic rows of each
    of the churn model's feature groups; returns their versions."""
    from fti.store.registry_repo import init_store
    from fti.store.versions import FeatureStore

    settings = _settings(home)
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.artifacts_path.mkdir(parents=True, exist_ok=True)
    init_store(settings.store_path, settings.dvc_remote)
    table = _feature_table(rows, seed=rows, day=AS_OF)
    store = FeatureStore(settings.store_path)
    return {
        group: store.publish(
            group,
            {AS_OF: _group_table(table, group)},
            f"bench_inference: {rows} synthetic rows for {AS_OF}",
        ).version
        for group in (GROUP, PROFILE_GROUP)
    }


def _train(home: str, feature_versions: dict[str, int]) -> dict[str, Any]:
    """Fit churn_demo's churn model on a synthetic sample; store the artifact; return its
    lineage (what ``fti.pipelines.training.train_model`` registers)."""
    import pyarrow as pa

    from churn_demo.project import project
    from fti.inference.score import predict
    from fti.lineage import code_version, library_versions
    from fti.monitoring import drift
    from fti.params import model_params
    from fti.pipelines.training import _describe
    from fti.store.statistics import column_statistics
    from fti.training.artifacts import save_artifact
    from fti.training.fit import fit
    from fti.training.metrics import holdout_metrics

    settings = _settings(home)
    spec = project.model(MODEL)
    chosen = project.model_features(spec)
    names = [f.name for f in chosen]
    params = model_params(settings.params_file, MODEL)
    sample = _feature_table(TRAIN_ROWS + TRAIN_ROWS // 4, seed=7, day=None)
    dtypes = {name: str(sample.schema.field(name).type) for name in names}
    frame = sample.to_pandas()
    train, holdout = frame.iloc[:TRAIN_ROWS], frame.iloc[TRAIN_ROWS:]
    model = fit(spec.estimator(params, names), spec.task, train, names, "label")
    path, digest = save_artifact(model, settings.artifacts_path)
    train_table = pa.Table.from_pandas(train[names], preserve_index=False)
    return {
        "artifact_uri": str(path),
        "artifact_sha256": digest,
        "estimator": _describe(model),
        "params": params,
        "task": spec.task,
        "metric": spec.metric,
        "metrics": holdout_metrics(spec.task, spec.metric, model, holdout[names], holdout["label"]),
        "feature_group": GROUP,
        "feature_version": feature_versions[GROUP],
        "feature_versions": feature_versions,
        "features": [
            {
                "name": f.name,
                "group": f.group,
                "dtype": dtypes[f.name],
                "ttl_days": int(spec.ttl.get(f.group, 0)),
            }
            for f in chosen
        ],
        "label": "synthetic churn label (bench_inference)",
        "label_group": None,  # not from the store: a synthetic sample
        "label_version": None,
        "train_start": AS_OF - timedelta(days=120),
        "train_end": AS_OF - timedelta(days=31),
        "n_train": len(train),
        "n_holdout": len(holdout),
        "library_versions": library_versions(),
        "code_version": code_version(),
        "run_id": "bench_inference_train",
        "promotion": None,
        "training_statistics": column_statistics(train_table),
        "drift_reference": drift.reference(
            {name: train_table.column(name) for name in names},
            predict(spec.task, model, holdout[names]).observed,
        ),
        "n_iter": int(model.steps[-1][1].n_iter_),
    }


def _register(home: str, db_url: str, lineage: dict[str, Any]) -> int:
    """Migrate the database, register the model version and make it champion."""
    from fti.db.engine import session_scope
    from fti.db.migrate import upgrade
    from fti.registry import aliases
    from fti.registry.versions import register_version

    url = _settings(home, db_url).db_url
    upgrade(url)
    lineage = {k: v for k, v in lineage.items() if k != "n_iter"}
    with session_scope(url, write=True) as session:
        row = register_version(session, MODEL, **lineage)
        aliases.set_alias(
            session, MODEL, aliases.CHAMPION, row.version, "bench_inference", "benchmark model"
        )
        return row.version


def _model_row(url: str) -> Any:
    from fti.db.engine import session_scope
    from fti.registry import aliases
    from fti.registry.versions import get_version

    with session_scope(url) as session:
        return get_version(session, MODEL, aliases.resolve(session, MODEL, aliases.CHAMPION))


def _slice(row: Any, run_id: str) -> Any:
    from fti.inference.write import Slice

    return Slice(
        model_name=MODEL,
        model_version=row.version,
        feature_group=row.feature_group,
        feature_version=row.feature_version,
        as_of_date=AS_OF,
        run_id=run_id,
        scored_at=datetime.now(UTC),
    )
