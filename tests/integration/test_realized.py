"""Realized metrics: scores joined with the labels that land later, on SQLite and PostgreSQL.

The figures below are computed by hand from the small tables each test writes.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LinearRegression, LogisticRegression
from sqlalchemy import func, select
from typer.testing import CliRunner

from fti.cli import app
from fti.db.engine import session_scope
from fti.db.tables import RealizedMetric
from fti.features.build import write_partitions
from fti.inference.write import SCORE_SCHEMA, Slice, write_slice
from fti.monitoring.realized import (
    compare_realized,
    realized,
    realized_rows,
    record_realized,
    refresh_realized,
)
from fti.pipelines.features import publish_group
from fti.registry import aliases
from fti.registry.versions import register_version
from fti.settings import Settings
from fti.training.artifacts import save_artifact
from tests.dags.conftest import dags, run  # noqa: F401 - the DAGs fixture, and dag.test()
from tests.webhook_receiver import Receiver

D1, D2, D3 = date(2026, 2, 1), date(2026, 2, 2), date(2026, 2, 3)
CHURN_LABELS, SPEND_LABELS = "churned_30d", "spend_next_30d"


def register(settings: Settings, name: str, task: str, metric: str, holdout: float) -> int:
    if task == "regression":
        estimator: Any = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    else:
        estimator = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    path, digest = save_artifact(estimator, settings.artifacts_path)
    with session_scope(settings.db_url, write=True) as session:
        row = register_version(
            session,
            name,
            artifact_uri=str(path),
            artifact_sha256=digest,
            estimator=type(estimator).__name__,
            params={},
            task=task,
            metric=metric,
            metrics={metric: holdout},
            feature_group="customer_activity",
            feature_version=1,
            feature_versions={"customer_activity": 1},
            features=[{"name": "x", "dtype": "double", "group": "customer_activity"}],
            label="label",
            label_group=CHURN_LABELS if task != "regression" else SPEND_LABELS,
            label_version=1,
            train_start=date(2026, 1, 1),
            train_end=date(2026, 1, 20),
            n_train=10,
            n_holdout=5,
            library_versions={},
            code_version="test",
            run_id="r",
            promotion=None,
        )
        return row.version


def a_slice(model: str, version: int, day: date, run_id: str) -> Slice:
    """The slice ``version`` of ``model`` writes for ``day``, read from feature version 1."""
    return Slice(
        model_name=model,
        model_version=version,
        feature_group="customer_activity",
        feature_version=1,
        as_of_date=day,
        run_id=run_id,
        scored_at=datetime.now(UTC),
    )


def score(settings: Settings, model: str, version: int, day: date, rows: dict[str, list]) -> None:  # type: ignore[type-arg]
    piece = a_slice(model, version, day, f"run-{model}-{version}-{day}")
    schema = pa.schema([SCORE_SCHEMA.field(name) for name in rows])
    write_slice(settings.db_url, piece, [pa.RecordBatch.from_pydict(rows, schema=schema)])


def binary(probabilities: list[float]) -> dict[str, list]:  # type: ignore[type-arg]
    ids = [str(i + 1) for i in range(len(probabilities))]
    return {
        "entity_id": ids,
        "prediction": [int(p >= 0.5) for p in probabilities],
        "probability": probabilities,
    }


def publish_labels(
    settings: Settings, tmp_path: Path, group: str, labels: dict[date, list[Any]]
) -> dict[str, Any]:
    """Stage and publish label partitions (entities 1, 2, ... of each day) as publish does."""
    partitions = {}
    for day, values in labels.items():
        float_labels = any(isinstance(v, float) for v in values)
        partitions[day] = pa.table(
            {
                "customer_id": pa.array(range(1, len(values) + 1), pa.int64()),
                "feature_date": pa.array([day] * len(values), pa.date32()),
                "label": pa.array(values, pa.float64() if float_labels else pa.int64()),
            }
        )
    staged = write_partitions(
        tmp_path / f"staged-{group}-{len(list(tmp_path.iterdir()))}", partitions
    )
    return publish_group(group, str(staged), "test-run", settings)


def stored(settings: Settings) -> list[RealizedMetric]:
    with session_scope(settings.db_url) as session:
        rows = session.scalars(
            select(RealizedMetric).order_by(
                RealizedMetric.model_name, RealizedMetric.model_version, RealizedMetric.as_of_date
            )
        ).all()
        session.expunge_all()
        return list(rows)


def cli(monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str) -> Any:
    for key, value in {
        "FTI_HOME": settings.home,
        "FTI_DB_URL": settings.db_url,
        "FTI_PARAMS_FILE": settings.params_file,
    }.items():
        monkeypatch.setenv(key, str(value))
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_realized_metrics_equal_a_hand_computation_when_labels_land(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = register(settings, "churn", "binary", "roc_auc", holdout=0.8)
    v2 = register(settings, "churn", "binary", "roc_auc", holdout=0.7)
    with session_scope(settings.db_url, write=True) as session:
        aliases.set_alias(session, "churn", aliases.CHAMPION, v1, "test", "first")
    # D1: entities 1-4 labelled; 5 has no label row, 6 a null label (not knowable).
    score(settings, "churn", v1, D1, binary([0.85, 0.15, 0.65, 0.35, 0.5, 0.9]))
    score(settings, "churn", v2, D2, binary([0.3, 0.6, 0.7, 0.2]))
    score(settings, "churn", v1, D3, binary([0.5, 0.5]))  # no labels for D3 in the version

    published = publish_labels(
        settings, tmp_path, CHURN_LABELS, {D1: [1, 0, 0, 1, None, None], D2: [1, 0, 1, 0]}
    )
    assert published["kind"] == "labels" and published["new"]

    rows = stored(settings)  # written by the publish itself
    # v2 did not score D1, v1 did not score D2, and D3 has no labels yet: no rows for them.
    assert [(r.model_version, r.as_of_date) for r in rows] == [(v1, D1), (v2, D2)]
    first, second = rows
    # D1 joined: probabilities 0.85, 0.15, 0.65, 0.35 with labels 1, 0, 0, 1.
    # AUC: of the 4 (positive, negative) pairs, (0.85 > 0.15), (0.85 > 0.65), (0.35 > 0.15)
    # are ranked right, (0.35 < 0.65) is not: 3/4.
    assert first.rows == 4 and first.rows_scored == 6
    assert first.metric == "roc_auc" and first.value == pytest.approx(0.75)
    # Brier: (0.15^2 + 0.15^2 + 0.65^2 + 0.65^2) / 4
    assert first.brier_score == pytest.approx(0.2225)
    assert first.metrics["positive_rate"] == pytest.approx(0.5)
    assert first.holdout_value == pytest.approx(0.8)
    assert first.alias == aliases.CHAMPION and second.alias is None
    assert (first.label_group, first.label_version) == (CHURN_LABELS, published["version"])
    assert first.prediction_run_id == f"run-churn-{v1}-{D1}"
    # Reliability: one row in each of the bins (0.1, 0.2], (0.3, 0.4], (0.6, 0.7], (0.8, 0.9].
    filled = {b["lower"]: (b["rows"], b["observed_rate"]) for b in first.reliability if b["rows"]}
    assert filled == {0.1: (1, 0.0), 0.3: (1, 1.0), 0.6: (1, 0.0), 0.8: (1, 1.0)}
    observed, predicted = calibration_curve([1, 0, 0, 1], [0.85, 0.15, 0.65, 0.35], n_bins=10)
    mine = sorted(first.reliability, key=lambda b: b["lower"])
    assert [b["observed_rate"] for b in mine if b["rows"]] == pytest.approx(list(observed))
    assert [b["mean_predicted"] for b in mine if b["rows"]] == pytest.approx(list(predicted))
    # D2: 0.3, 0.6, 0.7, 0.2 with labels 1, 0, 1, 0: pairs (0.3 > 0.2), (0.7 > 0.6), (0.7 > 0.2)
    # right, (0.3 < 0.6) wrong: 3/4 again; Brier (0.49 + 0.36 + 0.09 + 0.04) / 4.
    assert second.value == pytest.approx(0.75) and second.brier_score == pytest.approx(0.245)

    # Recomputing replaces: same figures, no second row.
    record_realized(settings, CHURN_LABELS, published["version"])
    again = stored(settings)
    assert [(r.model_version, r.as_of_date, r.value, r.rows) for r in again] == [
        (r.model_version, r.as_of_date, r.value, r.rows) for r in rows
    ]
    # The scores of D1 rescored by v2: v2 gets its row, v1's row of what it scored stays.
    score(settings, "churn", v2, D1, binary([0.1, 0.9, 0.8, 0.2]))
    record_realized(settings, CHURN_LABELS, published["version"], [D1])
    with session_scope(settings.db_url) as session:
        assert session.scalar(select(func.count()).select_from(RealizedMetric)) == 3
        by_day = compare_realized(session, "churn", v1, v2)
        listed = realized_rows(session, "churn", [v2])
    # v2 on D1: positives 0.1, 0.2 below negatives 0.9, 0.8: AUC 0.
    assert by_day == [
        {
            "as_of_date": D1.isoformat(),
            "metric": "roc_auc",
            f"v{v1}": pytest.approx(0.75),
            f"v{v2}": pytest.approx(0.0),
            "delta": pytest.approx(-0.75),
            f"rows_v{v1}": 4,
            f"rows_v{v2}": 4,
        }
    ]
    assert [r["as_of_date"] for r in listed] == [D1.isoformat(), D2.isoformat()]

    # The same through the command line.
    compared = cli(monkeypatch, settings, "models", "compare", "churn", "1", "2", "--realized")
    assert compared == [dict(by_day[0], **{f"v{v1}": 0.75, f"v{v2}": 0.0, "delta": -0.75})]
    shown = cli(monkeypatch, settings, "monitor", "realized", "--model", "churn")
    assert [(r["model_version"], r["as_of_date"], r["alias"]) for r in shown] == [
        (v1, D1.isoformat(), aliases.CHAMPION),
        (v2, D1.isoformat(), None),
        (v2, D2.isoformat(), None),
    ]
    assert shown[0]["value"] == pytest.approx(0.75) and shown[0]["reliability"]
    champion = cli(
        monkeypatch, settings, "monitor", "realized", "--model", "churn", "--version", "champion"
    )
    assert [r["model_version"] for r in champion] == [v1]


def test_regression_error_distribution_and_refresh_after_a_late_backfill(
    settings: Settings, tmp_path: Path
) -> None:
    version = register(settings, "spend", "regression", "neg_root_mean_squared_error", -2.0)
    published = publish_labels(settings, tmp_path, SPEND_LABELS, {D1: [12.0, 18.0, 33.0]})
    assert stored(settings) == []  # nothing scored D1 when its labels landed
    # A backfill scores D1 afterwards; the refresh joins it with the labels already there.
    score(
        settings, "spend", version, D1, {"entity_id": ["1", "2", "3"], "value": [10.0, 20.0, 30.0]}
    )
    found = refresh_realized(settings, "spend")
    assert [(r["model_version"], r["as_of_date"]) for r in found] == [(version, D1.isoformat())]
    (row,) = stored(settings)
    # errors (prediction - label): -2, 2, -3; RMSE sqrt(17 / 3), negated by the scorer.
    assert row.value == pytest.approx(-math.sqrt(17 / 3))
    assert row.metrics["mean_absolute_error"] == pytest.approx(7 / 3)
    assert row.error_distribution["quantiles"]["0.5"] == pytest.approx(-2.0)
    assert row.error_distribution["quantiles"]["0.0"] == pytest.approx(-3.0)
    assert row.error_distribution["mean"] == pytest.approx(-1.0)
    assert row.brier_score is None and row.reliability is None
    assert row.label_version == published["version"] and row.alias is None


def test_multiclass_scores_by_their_class_probabilities() -> None:
    estimator = LogisticRegression().fit([[0.0], [1.0], [2.0]], ["dry", "drizzle", "rain"])
    scores = pd.DataFrame(
        {
            "entity_id": ["a", "b"],
            "class_probabilities": [
                '{"drizzle": 0.2, "dry": 0.5, "rain": 0.3}',
                '{"drizzle": 0.1, "dry": 0.1, "rain": 0.8}',
            ],
        }
    )
    labels = pd.DataFrame({"entity_id": ["a", "b"], "label": ["dry", "drizzle"]})
    found = realized("multiclass", "log_loss", scores, labels, estimator)
    # log loss: -(ln 0.5 + ln 0.1) / 2; accuracy 1/2 (a right, b predicted rain).
    assert found["value"] == pytest.approx(-(np.log(0.5) + np.log(0.1)) / 2)
    assert found["metrics"]["accuracy"] == pytest.approx(0.5)
    # Brier (multiclass, summed over classes): a (0.2^2 + 0.5^2 + 0.3^2), b (0.9^2 + 0.1^2 + 0.8^2)
    assert found["brier_score"] == pytest.approx((0.38 + 1.46) / 2)
    top = {b["lower"]: (b["rows"], b["observed_rate"]) for b in found["reliability"] if b["rows"]}
    assert top == {0.4: (1, 1.0), 0.7: (1, 0.0)}


def a_day(
    model: str, version: int, day: date, value: float, rows: int, **extra: Any
) -> RealizedMetric:
    fields: dict[str, Any] = {
        "model_name": model,
        "model_version": version,
        "alias": aliases.CHAMPION,
        "as_of_date": day,
        "label_group": CHURN_LABELS,
        "label_version": 1,
        "prediction_run_id": "r",
        "rows_scored": rows,
        "rows": rows,
        "metric": "roc_auc",
        "value": value,
        "holdout_value": 0.8,
        "metrics": {},
        "computed_at": datetime.now(UTC),
    }
    return RealizedMetric(**(fields | extra))


def test_alerts_when_the_windows_realized_metric_breaks_a_rule(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import yaml

    from fti.errors import ConfigError
    from fti.monitoring.realized import RealizedRules, realized_alerts, realized_breaches
    from tests.conftest import PARAMS, make_settings

    with session_scope(db_url, write=True) as session:
        session.add_all(
            [
                a_day("churn", 1, date(2026, 1, 1), 0.2, 1000),  # outside a 7-day window
                a_day("churn", 1, date(2026, 2, 1), 0.7, 100),
                a_day("churn", 1, date(2026, 2, 7), 0.6, 300),
                a_day("churn", 2, date(2026, 2, 7), 0.9, 50, alias="challenger"),
                # a loss: higher is worse; holdout 0.2
                a_day(
                    "spend", 1, date(2026, 2, 7), 0.35, 500, metric="log_loss", holdout_value=0.2
                ),
            ]
        )
    rules = RealizedRules.from_params(
        {"window_days": 7, "min_rows": 100, "holdout_margin": 0.1, "thresholds": {"churn": 0.65}}
    )
    with session_scope(db_url) as session:
        churn = realized_breaches(session, "churn", rules)
        spend = realized_breaches(session, "spend", rules)
        lenient = realized_breaches(
            session, "churn", RealizedRules(window_days=7, thresholds={"churn": 0.6})
        )
    # v1 over 2026-02-01..07: (0.7 * 100 + 0.6 * 300) / 400 = 0.625 < 0.65, and < 0.8 - 0.1.
    # v2 has 50 rows only: not judged.
    assert [(b.model_version, b.rule, b.rows) for b in churn] == [
        (1, "threshold", 400),
        (1, "holdout", 400),
    ]
    assert churn[0].value == pytest.approx(0.625)
    assert churn[0].first_date == date(2026, 2, 1) and churn[0].last_date == date(2026, 2, 7)
    assert "churn v1: realized roc_auc 0.625" in churn[0].message
    # log_loss 0.35 > holdout 0.2 + 0.1 margin (a loss is worse when higher)
    assert [(b.rule, b.limit) for b in spend] == [("holdout", 0.2)]
    assert lenient == []
    # From params.yaml's monitor.realized section, logged as warnings.
    params = yaml.safe_load(PARAMS.read_text())
    params["monitor"]["realized"] = {"window_days": 7, "thresholds": {"churn": 0.65}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    settings = make_settings(tmp_path / "home", db_url).model_copy(
        update={"params_file": tmp_path / "params.yaml"}
    )
    receiver = Receiver()
    try:
        hooked = settings.model_copy(update={"alert_webhook_url": receiver.url})
        found = realized_alerts(hooked, ["churn", "spend"], "scheduled__2026-02-08")
        posted = receiver.received()
    finally:
        receiver.close()
    assert [(b.model_name, b.rule) for b in found] == [("churn", "threshold")]
    assert "realized performance alert: churn v1: realized roc_auc 0.625" in caplog.text
    # The same notifier as deadlines: one JSON alert per breach, with the run that judged it.
    assert [(p["event"], p["dag_id"], p["run_id"], p["what"]) for p in posted] == [
        ("realized_below", "feature_pipeline", "scheduled__2026-02-08", "model churn v1")
    ]
    assert posted[0]["reason"].startswith("churn v1: realized roc_auc 0.625")
    assert posted[0]["breach"]["rule"] == "threshold" and posted[0]["breach"]["rows"] == 400
    params["monitor"]["realized"] = {"window_days": "a week"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"params.yaml: monitor.realized.window_days"):
        realized_alerts(settings, ["churn"])
    with pytest.raises(ConfigError, match=r"monitor.realized.window_days"):
        RealizedRules.from_params({"window_days": 0})
    with pytest.raises(ConfigError, match=r"monitor.realized.treshold"):
        RealizedRules.from_params({"treshold": 1})


def test_health_shows_the_champions_realized_window(db_url: str, tmp_path: Path) -> None:
    from fti.definitions import load_project
    from fti.monitoring.health import health
    from fti.monitoring.realized import RealizedRules
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "home", db_url)
    v1 = register(settings, "churn", "binary", "roc_auc", 0.8)
    v2 = register(settings, "churn", "binary", "roc_auc", 0.85)
    with session_scope(db_url, write=True) as session:
        aliases.set_alias(session, "churn", aliases.CHAMPION, v1, "test", "first")
        session.add_all(
            [
                a_day("churn", v1, date(2026, 2, 1), 0.7, 100),
                a_day("churn", v1, date(2026, 2, 7), 0.6, 300),
                a_day("churn", v2, date(2026, 2, 7), 0.9, 500, alias="challenger"),
            ]
        )
    project = load_project(settings.project)

    def realized(rules: RealizedRules) -> dict[str, Any]:
        with session_scope(db_url) as session:
            found = health(session, project, datetime(2026, 2, 9, tzinfo=UTC), rules=rules)
        return {r.model: r for r in found.realized}

    below = realized(RealizedRules(window_days=7, thresholds={"churn": 0.65}))
    churn = below["churn"]
    # The champion's window, not the challenger's: (0.7 * 100 + 0.6 * 300) / 400 = 0.625.
    assert (churn.champion, churn.status, churn.window.model_version) == (v1, "below", v1)
    assert churn.window.value == pytest.approx(0.625) and churn.window.rows == 400
    assert churn.window.dates == 2 and churn.window.holdout_value == 0.8
    assert churn.breach.startswith("churn v1: realized roc_auc 0.625")
    assert below["spend"].status == "none yet" and below["spend"].window is None
    assert realized(RealizedRules(window_days=7))["churn"].status == "ok"
    assert realized(RealizedRules(window_days=7, min_rows=401))["churn"].status == "not judged"
    # Only the newest week counts: a 1-day window holds 2026-02-07 alone.
    assert realized(RealizedRules(window_days=1))["churn"].window.value == pytest.approx(0.6)


def test_shadow_scoring_of_the_challenger_and_realized_metrics_of_both(
    tmp_path: Path, db_url: str, demo_raw: Path, history_start: date
) -> None:
    from sklearn.metrics import roc_auc_score

    from fti.db.tables import Prediction, ShadowPrediction
    from fti.pipelines.features import run_features
    from fti.pipelines.inference import score_batch, score_shadow
    from fti.pipelines.training import build_training_set, promote_if_better, train_model
    from fti.store.versions import FeatureStore
    from tests.conftest import DEMO_END, demo_settings

    s = demo_settings(tmp_path / "home", demo_raw, db_url)
    run_features(history_start, DEMO_END - timedelta(days=1), "r1", s)
    training_set = build_training_set("churn", None, None, "t1", s)
    v1 = train_model(training_set, "t1", settings=s)
    assert promote_if_better(training_set, v1, "t1", s)["promoted"]
    v2 = train_model(training_set, "t2", {"max_depth": 2}, s)
    day = DEMO_END - timedelta(days=30)  # its labels land with the features of DEMO_END
    assert score_shadow("churn", day, "s0", settings=s)["skipped"] == "no challenger"
    with session_scope(s.db_url, write=True) as session:
        aliases.set_alias(session, "churn", "challenger", v2, "test", "shadow it")

    served = score_batch("churn", day, "c1", settings=s)
    first = score_shadow("churn", day, "s1", settings=s)
    again = score_shadow("churn", day, "s2", settings=s)  # a rerun replaces the slice

    assert served["model_version"] == v1 and first["model_version"] == v2
    assert first["rows"] == again["rows"] == served["rows"] > 0

    def slices(table: Any) -> dict[tuple[int, str], int]:
        with session_scope(s.db_url) as session:
            found = session.execute(
                select(table.model_version, table.run_id, func.count())
                .where(table.model_name == "churn", table.as_of_date == day)
                .group_by(table.model_version, table.run_id)
            ).all()
        return {(version, run): count for version, run, count in found}

    assert slices(Prediction) == {(v1, "c1"): served["rows"]}
    assert slices(ShadowPrediction) == {(v2, "s2"): served["rows"]}
    # The served slice is untouched by the shadow, and vice versa.
    score_batch("churn", day, "c2", settings=s)
    assert slices(ShadowPrediction) == {(v2, "s2"): served["rows"]}

    # Tonight's features publish the labels of `day`: realized metrics of both versions.
    published = run_features(DEMO_END, DEMO_END, "r2", s)["published"]["churned_30d"]
    with session_scope(s.db_url) as session:
        rows = realized_rows(session, "churn")
        compared = compare_realized(session, "churn", v1, v2)
        scores = {
            version: dict(
                session.execute(
                    select(table.entity_id, table.probability).where(
                        table.model_name == "churn", table.as_of_date == day
                    )
                ).all()
            )
            for version, table in ((v1, Prediction), (v2, ShadowPrediction))
        }
    assert [(r["model_version"], r["alias"], r["as_of_date"]) for r in rows] == [
        (v1, aliases.CHAMPION, day.isoformat()),
        (v2, "challenger", day.isoformat()),
    ]
    assert {r["label_version"] for r in rows} == {published["version"]}
    labels = FeatureStore(s.store_path).read(
        "churned_30d", published["version"], ["customer_id", "label"], dates=[day]
    )
    truth = {str(k): v for k, v in zip(*labels.to_pydict().values(), strict=True) if v is not None}
    for row in rows:
        joined = [e for e in scores[row["model_version"]] if e in truth]
        assert row["rows"] == len(joined) > 0
        expected = roc_auc_score(
            [truth[e] for e in joined], [scores[row["model_version"]][e] for e in joined]
        )
        assert row["value"] == pytest.approx(expected)
    assert [c["as_of_date"] for c in compared] == [day.isoformat()]

    # The challenger promoted: it writes the served slice, nothing is shadow-scored.
    with session_scope(s.db_url, write=True) as session:
        aliases.set_alias(session, "churn", aliases.CHAMPION, v2, "test", "promote")
    score_batch("churn", day, "c3", settings=s)
    assert "wrote the served slice" in score_shadow("churn", day, "s3", settings=s)["skipped"]


def test_the_inference_dag_shadow_scores_the_challenger(
    dags: Any,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    demo_raw: Path,
    history_start: date,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fti.db.tables import Prediction, ShadowPrediction
    from fti.pipelines.features import run_features
    from fti.pipelines.training import build_training_set, promote_if_better, train_model
    from tests.conftest import DEMO_END, PARAMS, demo_settings

    s = demo_settings(tmp_path / "home", demo_raw)
    for key, value in {
        "FTI_HOME": s.home,
        "FTI_RAW_PATH": demo_raw,
        "FTI_PARAMS_FILE": PARAMS,
    }.items():
        monkeypatch.setenv(key, str(value))
    run_features(history_start, DEMO_END, "r1", s)
    training_set = build_training_set("churn", None, None, "t1", s)
    v1 = train_model(training_set, "t1", settings=s)
    promote_if_better(training_set, v1, "t1", s)
    day = DEMO_END

    def states(dag_run: Any) -> dict[str, str]:
        return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}

    def shadow_slices() -> dict[tuple[int, str], int]:
        with session_scope(s.db_url) as session:
            found = session.execute(
                select(ShadowPrediction.model_version, ShadowPrediction.run_id, func.count())
                .where(ShadowPrediction.model_name == "churn")
                .group_by(ShadowPrediction.model_version, ShadowPrediction.run_id)
            ).all()
        return {(version, run_id): count for version, run_id, count in found}

    # No challenger: the shadow task is skipped, the run succeeds.
    first = run(dags["churn_inference"], day, as_of_date=day.isoformat())
    assert states(first)["score_challenger"] == "skipped" and shadow_slices() == {}

    v2 = train_model(training_set, "t2", {"max_depth": 2}, s)
    with session_scope(s.db_url, write=True) as session:
        aliases.set_alias(session, "churn", "challenger", v2, "test", "shadow it")
    for _ in range(2):  # a rerun of the date (dag.test() replaces the run of a logical date)
        again = run(dags["churn_inference"], day, as_of_date=day.isoformat())
        assert states(again)["score_challenger"] == "success"
    with session_scope(s.db_url) as session:
        served = session.execute(
            select(Prediction.model_version, func.count())
            .where(Prediction.model_name == "churn", Prediction.as_of_date == day)
            .group_by(Prediction.model_version)
        ).all()
    ((version, rows),) = served
    # The second run replaced the first's shadow slice: one slice of v2, as many rows as served.
    assert version == v1
    assert shadow_slices() == {(v2, f"churn_inference/{again.run_id}__challenger"): rows}
    assert stored(s) == []  # the date's labels have not matured: nothing realized yet

    # A past date scored from the form after its labels landed (a backfill): both versions'
    # realized metrics are recorded at once, by the run that scored them.
    past = DEMO_END - timedelta(days=45)
    backfill = run(dags["churn_inference"], past, as_of_date=past.isoformat())
    assert states(backfill)["score_batch"] == states(backfill)["score_challenger"] == "success"
    recorded = {(r.model_version, r.alias): r for r in stored(s)}
    assert set(recorded) == {(v1, "champion"), (v2, "challenger")}
    assert {r.as_of_date for r in recorded.values()} == {past}
    with session_scope(s.db_url) as session:
        labelled = session.scalar(
            select(func.count())
            .select_from(Prediction)
            .where(Prediction.model_name == "churn", Prediction.as_of_date == past)
        )
    assert 0 < recorded[(v1, "champion")].rows <= labelled
    # What the run recorded is what a refresh recomputes from the same tables.
    values = {key: row.value for key, row in recorded.items()}
    refresh_realized(s, "churn")
    assert {(r.model_version, r.alias): r.value for r in stored(s)} == pytest.approx(values)
