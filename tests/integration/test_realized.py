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
from fti.definitions import load_project
from fti.features.build import write_partitions
from fti.inference.write import SCORE_SCHEMA, Slice, write_slice
from fti.monitoring.realized import (
    LabelReader,
    Pool,
    compare_realized,
    realized,
    realized_rows,
    record_realized,
    refresh_realized,
    write_shadow_slice,
)
from fti.pipelines.features import publish_group
from fti.registry import aliases
from fti.registry.versions import register_version
from fti.settings import Settings
from fti.store.versions import FeatureStore
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
        by_day = compare_realized(session, "churn", v1, v2, label_reader(settings))
        listed = realized_rows(session, "churn", [v2])
    # v2 on D1: positives 0.1, 0.2 below negatives 0.9, 0.8: AUC 0. One shared date: the
    # pooled row holds v2's figure; v1's scores of D1 were replaced by v2's (one served slice
    # per model and date), so its pooled figure has no rows and says why.
    day = {
        "as_of_date": D1.isoformat(),
        "dates": 1,
        "metric": "roc_auc",
        f"v{v1}": pytest.approx(0.75),
        f"v{v2}": pytest.approx(0.0),
        "delta": pytest.approx(-0.75),
        f"rows_v{v1}": 4,
        f"rows_v{v2}": 4,
        "reason": None,
    }
    gone = f"v{v1}: no rows: the scores of {D1} were replaced since (the dates were scored again by another version)"
    assert by_day == [
        day,
        day
        | {"as_of_date": f"{D1}..{D1}", f"v{v1}": None, "delta": None, f"rows_v{v1}": 0}
        | {"reason": gone},
    ]
    assert [r["as_of_date"] for r in listed] == [D1.isoformat(), D2.isoformat()]

    # The same through the command line.
    compared = cli(monkeypatch, settings, "models", "compare", "churn", "1", "2", "--realized")
    assert compared[0] == dict(by_day[0], **{f"v{v1}": 0.75, f"v{v2}": 0.0, "delta": -0.75})
    assert compared[1] == dict(by_day[1], **{f"v{v2}": 0.0})
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


def label_reader(settings: Settings) -> LabelReader:
    return LabelReader.from_project(
        FeatureStore(settings.store_path), load_project(settings.project)
    )


# One row a day, four days: the per-date figures are those of single rows, the window's are
# those of the four rows pooled.
DAYS = [date(2026, 2, 1) + timedelta(days=n) for n in range(4)]
D4 = DAYS[-1]


def test_window_figures_are_the_metric_of_the_pooled_rows_of_a_one_row_a_day_series(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import yaml

    from fti.errors import ConfigError
    from fti.monitoring.health import health
    from fti.monitoring.realized import (
        RealizedRules,
        realized_alerts,
        realized_breaches,
        realized_windows,
    )
    from fti.runner import summary
    from tests.conftest import PARAMS

    churn = register(settings, "churn", "binary", "roc_auc", holdout=0.8)
    challenger = register(settings, "churn", "binary", "roc_auc", holdout=0.7)
    spend = register(settings, "spend", "regression", "root_mean_squared_error", holdout=2.0)
    with session_scope(settings.db_url, write=True) as session:
        aliases.set_alias(session, "churn", aliases.CHAMPION, churn, "test", "first")
        aliases.set_alias(session, "spend", aliases.CHAMPION, spend, "test", "first")
    # churn v1: 0.9, 0.2, 0.6, 0.4 for labels 1, 0, 0, 1; v2 scores the last two days only.
    for day, probability in zip(DAYS, [0.9, 0.2, 0.6, 0.4], strict=True):
        score(settings, "churn", churn, day, binary([probability]))
    for day, probability in zip(DAYS[2:], [0.3, 0.7], strict=True):  # beside v1, as a shadow
        piece = a_slice("churn", challenger, day, f"shadow-{day}")
        batch = pa.RecordBatch.from_pydict(
            binary([probability]),
            schema=pa.schema(
                [SCORE_SCHEMA.field(n) for n in ("entity_id", "prediction", "probability")]
            ),
        )
        write_shadow_slice(settings.db_url, piece, "challenger", [batch])
    # spend: 11, 18, 33, 36 for labels 10, 20, 30, 40: errors 1, -2, 3, -4.
    for day, value in zip(DAYS, [11.0, 18.0, 33.0, 36.0], strict=True):
        score(settings, "spend", spend, day, {"entity_id": ["1"], "value": [value]})
    publish_labels(
        settings, tmp_path, CHURN_LABELS, dict(zip(DAYS, [[1], [0], [0], [1]], strict=True))
    )
    publish_labels(
        settings, tmp_path, SPEND_LABELS, {d: [10.0 * (n + 1)] for n, d in enumerate(DAYS)}
    )

    # Per date: one row has no ROC AUC (it needs both classes), and says so; its RMSE is |error|.
    recorded = {(r.model_name, r.model_version, r.as_of_date): r for r in stored(settings)}
    assert len(recorded) == 10
    one = recorded[("churn", churn, DAYS[0])]
    assert one.value is None and one.rows == 1
    assert one.metrics["reason"] == "not enough rows (n = 1 < 2: roc_auc needs every class)"
    assert [recorded[("spend", spend, d)].value for d in DAYS] == pytest.approx([1, 2, 3, 4])

    labels = label_reader(settings)
    with session_scope(settings.db_url) as session:
        windows = {
            (w.model_name, w.model_version): w
            for model in ("churn", "spend")
            for w in realized_windows(session, model, 7, labels)
        }
    # churn v1 over the 4 rows: positives 0.9, 0.4, negatives 0.2, 0.6; of the 4 pairs only
    # (0.4 < 0.6) is ranked wrong: 3/4. (An average of the dates' values has none to average:
    # the model showed "none yet".)
    first = windows[("churn", churn)]
    assert (first.value, first.rows, first.dates) == (pytest.approx(0.75), 4, 4)
    assert (first.first_date, first.last_date, first.alias) == (DAYS[0], D4, aliases.CHAMPION)
    assert first.figure == "roc_auc 0.75" and first.reason is None
    # v2: 0.3 (label 0) below 0.7 (label 1): 1.
    assert windows[("churn", challenger)].value == pytest.approx(1.0)
    # spend: RMSE sqrt((1 + 4 + 9 + 16) / 4) = sqrt(7.5) = 2.7386; the average of the dates'
    # RMSEs, (1 + 2 + 3 + 4) / 4 = 2.5, is their mean absolute error.
    regression = windows[("spend", spend)]
    assert regression.value == pytest.approx(math.sqrt(7.5)) and regression.rows == 4

    # Alerts judge the pooled figures: churn 0.75 is below its threshold 0.8 (v2's 2 rows are
    # too few to judge); spend 2.7386 is worse than its holdout 2.0 by more than 0.5 (2.5, the
    # average, would not be: a loss is worse when higher).
    rules = RealizedRules(window_days=7, min_rows=3, holdout_margin=0.5, thresholds={"churn": 0.8})
    with session_scope(settings.db_url) as session:
        breaches = [
            b for m in ("churn", "spend") for b in realized_breaches(session, m, rules, labels)
        ]
    assert [(b.model_name, b.model_version, b.rule, b.rows) for b in breaches] == [
        ("churn", churn, "threshold", 4),
        ("spend", spend, "holdout", 4),
    ]
    assert breaches[0].message.startswith(
        f"churn v1: realized roc_auc 0.75 over {DAYS[0]}..{D4} (4 rows) is worse than its threshold 0.8"
    )
    assert breaches[1].value == pytest.approx(math.sqrt(7.5))

    # The health window: the champion's pooled figure.
    project = load_project(settings.project)
    store = FeatureStore(settings.store_path)

    def realized(rules: RealizedRules) -> dict[str, Any]:
        with session_scope(settings.db_url) as session:
            found = health(session, project, datetime(2026, 2, 6, tzinfo=UTC), 7, store, rules)
        return {r.model: r for r in found.realized}

    judged = realized(rules)
    assert (judged["churn"].status, judged["churn"].window.value) == ("below", pytest.approx(0.75))
    assert judged["churn"].row()["realized"] == "roc_auc 0.75"
    assert judged["churn"].row()["window"] == f"{DAYS[0]}..{D4}"
    assert judged["spend"].status == "below" and judged["spend"].row()["rows"] == 4
    assert realized(RealizedRules(window_days=7))["churn"].status == "not judged"  # 4 < 100
    # A one-day window holds D4's single row: no ROC AUC, and the reason instead.
    newest = realized(RealizedRules(window_days=1, min_rows=1))["churn"]
    assert newest.status == "not judged" and newest.window.rows == 1
    assert newest.row()["realized"] == (
        "roc_auc: not enough rows (n = 1 < 2: roc_auc needs every class)"
    )

    # `fti models compare --realized`: the two shared dates, then their rows pooled: v1 0.6
    # (label 0) above 0.4 (label 1): 0; v2: 1.
    compared = cli(monkeypatch, settings, "models", "compare", "churn", "1", "2", "--realized")
    assert [(c["as_of_date"], c["dates"], c["v1"], c["v2"]) for c in compared] == [
        (DAYS[2].isoformat(), 1, None, None),
        (D4.isoformat(), 1, None, None),
        (f"{DAYS[2]}..{D4}", 2, 0.0, 1.0),
    ]
    assert compared[0]["reason"] == (
        "v1: not enough rows (n = 1 < 2: roc_auc needs every class); "
        "v2: not enough rows (n = 1 < 2: roc_auc needs every class)"
    )
    assert compared[2]["delta"] == 1.0 and compared[2]["rows_v1"] == compared[2]["rows_v2"] == 2
    shown = cli(monkeypatch, settings, "monitor", "realized", "--model", "churn", "--version", "1")
    assert [r["reason"] for r in shown] == [one.metrics["reason"]] * 4

    # The run summary: the pooled figure per version (params.yaml: a 28-day window).
    lines = summary(settings, D4, 1.0).splitlines()
    assert (
        f"    realized roc_auc of v1 once labels landed: 0.750 over the 4 rows of 4 scored "
        f"date(s) {DAYS[0]}..{D4} (`fti monitor realized --model churn`)"
    ) in lines
    assert any(
        line.startswith("    realized root_mean_squared_error of v1 once labels landed: 2.739")
        for line in lines
    )

    # From params.yaml's monitor.realized section: logged and posted to the notifier.
    params = yaml.safe_load(PARAMS.read_text())
    params["monitor"]["realized"] = rules.model_dump()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    receiver = Receiver()
    try:
        hooked = settings.model_copy(
            update={"params_file": tmp_path / "params.yaml", "alert_webhook_url": receiver.url}
        )
        found = realized_alerts(hooked, ["churn", "spend"], "scheduled__2026-02-08")
        posted = receiver.received()
    finally:
        receiver.close()
    assert [(b.model_name, b.rule) for b in found] == [("churn", "threshold"), ("spend", "holdout")]
    assert "realized performance alert: churn v1: realized roc_auc 0.75" in caplog.text
    assert [(p["event"], p["dag_id"], p["run_id"], p["what"]) for p in posted] == [
        ("realized_below", "churn_feature_pipeline", "scheduled__2026-02-08", "model churn v1"),
        ("realized_below", "churn_feature_pipeline", "scheduled__2026-02-08", "model spend v1"),
    ]
    assert posted[1]["reason"].startswith("spend v1: realized root_mean_squared_error 2.739")
    assert posted[0]["breach"]["rule"] == "threshold" and posted[0]["breach"]["rows"] == 4
    params["monitor"]["realized"] = {"window_days": "a week"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"params.yaml: monitor.realized.window_days"):
        realized_alerts(hooked, ["churn"])
    with pytest.raises(ConfigError, match=r"monitor.realized.window_days"):
        RealizedRules.from_params({"window_days": 0})
    with pytest.raises(ConfigError, match=r"monitor.realized.treshold"):
        RealizedRules.from_params({"treshold": 1})


def test_a_pool_is_the_metric_of_its_rows_for_each_task() -> None:
    """One row a day, each task: the pooled figure by hand, beside what the days say."""
    ids = {"entity_id": ["1"]}

    def pooled(pool: Pool, days: list[tuple[dict[str, list[Any]], Any]]) -> Pool:
        for scores, label in days:
            pool.add(pd.DataFrame(ids | scores), pd.DataFrame(ids | {"label": [label]}))
        return pool

    # binary roc_auc: positives 0.9, 0.4, negatives 0.2, 0.6: 3 of 4 pairs right.
    days = [
        ({"prediction": [int(p >= 0.5)], "probability": [p]}, y)
        for p, y in zip([0.9, 0.2, 0.6, 0.4], [1, 0, 0, 1], strict=True)
    ]
    binary_pool = pooled(Pool("binary", "roc_auc", np.array([0, 1])), days)
    assert binary_pool.value() == (pytest.approx(0.75), None) and binary_pool.rows == 4
    assert pooled(Pool("binary", "roc_auc", np.array([0, 1])), days[:1]).value() == (
        None,
        "not enough rows (n = 1 < 2: roc_auc needs every class)",
    )
    assert pooled(Pool("binary", "roc_auc", np.array([0, 1])), days[1:3]).value() == (
        None,
        "the labels lack class 1 (roc_auc needs every class)",
    )
    # accuracy by the stored 0/1: 0.9 -> 1 right, 0.2 -> 0 right, 0.6 -> 1 wrong, 0.4 -> 0 wrong.
    assert pooled(Pool("binary", "accuracy", np.array([0, 1])), days).value()[0] == pytest.approx(
        0.5
    )

    # regression: predictions 11, 18, 33, 36 for labels 10, 20, 30, 40 (errors 1, -2, 3, -4).
    days = [
        ({"value": [p]}, y)
        for p, y in zip([11.0, 18.0, 33.0, 36.0], [10.0, 20.0, 30.0, 40.0], strict=True)
    ]
    figures = {
        # sqrt(30 / 4), negated by the scorer (the dates' average: -2.5)
        "neg_root_mean_squared_error": -math.sqrt(7.5),
        "mean_squared_error": 7.5,
        "mean_absolute_error": 2.5,
        # 1 - 30 / 500 (labels' mean 25: 225 + 25 + 25 + 225); undefined on each date
        "r2": 0.94,
        "max_error": 4.0,  # not a sum: kept rows (the dates' average: 2.5)
        "median_absolute_error": 2.5,
    }
    for name, expected in figures.items():
        assert pooled(Pool("regression", name), days).value() == (pytest.approx(expected), None)
    assert pooled(Pool("regression", "r2"), days[:1]).value() == (
        None,
        "not enough rows (n = 1 < 2)",
    )
    assert Pool("regression", "r2").value() == (None, "no rows (no scored entity has a label)")

    # multiclass roc_auc_ovr (classes drizzle, dry, rain), one row a day:
    #   a dry:     drizzle 0.2, dry 0.5, rain 0.3
    #   b drizzle: drizzle 0.1, dry 0.1, rain 0.8
    #   c rain:    drizzle 0.3, dry 0.3, rain 0.4
    # drizzle vs rest: b's 0.1 below 0.2 and 0.3: 0; dry: a's 0.5 above 0.1 and 0.3: 1;
    # rain: c's 0.4 above a's 0.3, below b's 0.8: 0.5. Macro average 0.5.
    estimator = LogisticRegression().fit([[0.0], [1.0], [2.0]], ["dry", "drizzle", "rain"])
    cells = [
        ({"class_probabilities": ['{"drizzle": 0.2, "dry": 0.5, "rain": 0.3}']}, "dry"),
        ({"class_probabilities": ['{"drizzle": 0.1, "dry": 0.1, "rain": 0.8}']}, "drizzle"),
        ({"class_probabilities": ['{"drizzle": 0.3, "dry": 0.3, "rain": 0.4}']}, "rain"),
    ]
    ovr = pooled(Pool("multiclass", "roc_auc_ovr", estimator.classes_), cells)
    assert ovr.value() == (pytest.approx(0.5), None) and ovr.dates == 3
    one_day = realized(
        "multiclass",
        "roc_auc_ovr",
        pd.DataFrame(ids | cells[0][0]),
        pd.DataFrame(ids | {"label": ["dry"]}),
        estimator,
    )
    assert one_day["value"] is None
    assert (
        one_day["metrics"]["reason"] == "not enough rows (n = 1 < 3: roc_auc_ovr needs every class)"
    )
    # accuracy: a right, b predicted rain, c right: 2/3.
    accuracy = pooled(Pool("multiclass", "accuracy", estimator.classes_), cells)
    assert accuracy.value()[0] == pytest.approx(2 / 3)


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
        compared = compare_realized(session, "churn", v1, v2, label_reader(s))
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
    assert [c["as_of_date"] for c in compared] == [day.isoformat(), f"{day}..{day}"]
    assert [compared[1][f"v{v}"] for v in (v1, v2)] == [compared[0][f"v{v}"] for v in (v1, v2)]

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
    assert states(backfill)["write_scores"] == states(backfill)["score_challenger"] == "success"
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
