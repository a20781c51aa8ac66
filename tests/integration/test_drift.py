"""Drift per scoring run, on the churn demo's data with and without its drift switch."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from fti import pipelines
from fti.db.engine import session_scope
from fti.db.tables import PredictionRun
from fti.monitoring.results import drift_of_run
from tests.conftest import DEMO_CUSTOMERS, DEMO_DAYS, DEMO_END, demo_settings
from tests.integration.test_pipelines import publish_history

DRIFT_AFTER = DEMO_END - timedelta(days=21)


@pytest.fixture(scope="module")
def drifted_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same customers and seed as the session's demo data, drifting from DRIFT_AFTER on."""
    from churn_demo.generate import generate

    raw = tmp_path_factory.mktemp("drifted")
    start = DEMO_END - timedelta(days=DEMO_DAYS - 1)
    generate(raw, start, DEMO_END, customers=DEMO_CUSTOMERS, seed=3, drift_after=DRIFT_AFTER)
    return raw


def score_end(home: Path, raw: Path) -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
    """Features for all days, a model trained before DRIFT_AFTER, the last day scored."""
    s = demo_settings(home, raw)
    start = DEMO_END - timedelta(days=DEMO_DAYS - 1)
    publish_history(s, start, DEMO_END)
    # Trained as of before the drift began: its reference is undrifted in both homes.
    training_set = pipelines.build_training_set("latest", DRIFT_AFTER - timedelta(days=1), "t", s)
    version = pipelines.train_model(training_set, "t", settings=s)
    pipelines.promote_if_better(training_set, version, "t", s)
    summary = pipelines.score_batch(DEMO_END, "score", settings=s)
    with session_scope(s.db_url) as session:
        results = drift_of_run(session, "score")
        run = session.scalar(select(PredictionRun).where(PredictionRun.run_id == "score"))
        assert run is not None and run.drift_breached == bool(summary["drift_breached"])
    return summary, results


def test_drift_is_flagged_on_drifted_data_and_not_on_undrifted(
    tmp_path: Path, demo_raw: Path, drifted_raw: Path
) -> None:
    calm, calm_results = score_end(tmp_path / "calm", demo_raw)
    drifted, drifted_results = score_end(tmp_path / "drifted", drifted_raw)

    assert calm["drift_breached"] == []
    assert max(r["psi"] for r in calm_results) < 0.2
    assert "logins_7d" in drifted["drift_breached"]
    by_feature = {r["feature"]: r for r in drifted_results}
    assert by_feature["logins_7d"]["psi"] > 0.2 and by_feature["logins_7d"]["p_value"] < 0.001
    assert {r["kind"] for r in drifted_results} == {"feature", "prediction"}
    for result in drifted_results:  # both histograms cover the same bins, nothing lost
        assert len(result["bins"]) == len(result["expected"]) == len(result["observed"])
        assert sum(result["observed"]) == drifted["rows"]


def test_monitor_report_writes_the_pictures(tmp_path: Path, drifted_raw: Path) -> None:
    from fti.monitoring.publish import write_reports

    _, results = score_end(tmp_path / "home", drifted_raw)
    written = write_reports(demo_settings(tmp_path / "home", drifted_raw), tmp_path / "out")
    drift_html = Path(written["drift_report"]).read_text()
    assert written["run_id"] == "score" and Path(written["drift_report"]).parent == tmp_path / "out"
    assert "Over the PSI threshold 0.2" in drift_html and "logins_7d" in drift_html
    # PSI bars, then one histogram per feature and one of the prediction
    assert drift_html.count("data:image/png;base64,") == 1 + len(results)
    assert "data:image/png;base64," in Path(written["metrics_report"]).read_text()
