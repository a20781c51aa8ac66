"""Drift per scoring run of both demo models, on the churn demo's data with and without its
drift switch; and scoring by entity shard, which writes the rows and drift figures the
unsharded run writes (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from churn_demo import project as demo
from fti.db.engine import session_scope
from fti.db.tables import Prediction, PredictionRun
from fti.monitoring.results import drift_of_run
from fti.pipelines.inference import score_batch
from fti.pipelines.training import build_training_set, promote_if_better, train_model
from fti.settings import Settings
from tests.conftest import DEMO_CUSTOMERS, DEMO_DAYS, DEMO_END, demo_settings, make_settings
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


def score_end(home: Path, raw: Path) -> dict[str, tuple[dict, list[dict]]]:  # type: ignore[type-arg]
    """Features for all days, both models trained before DRIFT_AFTER, the last day scored by
    each (run ``score-<model>``). Returns each model's summary and drift results."""
    s = demo_settings(home, raw)
    start = DEMO_END - timedelta(days=DEMO_DAYS - 1)
    publish_history(s, start, DEMO_END)
    scored = {}
    for model in ("churn", "spend"):
        # Trained as of before the drift began: its reference is undrifted in both homes.
        training_set = build_training_set(
            model, None, DRIFT_AFTER - timedelta(days=1), f"t-{model}", s
        )
        version = train_model(training_set, f"t-{model}", settings=s)
        promote_if_better(training_set, version, f"t-{model}", s)
        run_id = f"score-{model}"
        summary = score_batch(model, DEMO_END, run_id, settings=s)
        with session_scope(s.db_url) as session:
            results = drift_of_run(session, run_id)
            run = session.scalar(select(PredictionRun).where(PredictionRun.run_id == run_id))
            assert run is not None and run.drift_breached == bool(summary["drift_breached"])
        scored[model] = (summary, results)
    return scored


@pytest.fixture(scope="module")
def scored_homes(
    tmp_path_factory: pytest.TempPathFactory, demo_raw: Path, drifted_raw: Path
) -> dict[str, tuple[Path, dict[str, tuple[dict, list[dict]]]]]:  # type: ignore[type-arg]
    """Homes ``calm`` (the demo's data) and ``drifted``, each with score_end's runs in it."""
    homes = tmp_path_factory.mktemp("scored")
    return {
        name: (homes / name, score_end(homes / name, raw))
        for name, raw in (("calm", demo_raw), ("drifted", drifted_raw))
    }


def test_drift_is_flagged_on_drifted_data_and_not_on_undrifted(
    scored_homes: dict[str, tuple[Path, dict[str, tuple[dict, list[dict]]]]],  # type: ignore[type-arg]
) -> None:
    calm_runs = scored_homes["calm"][1]
    drifted_runs = scored_homes["drifted"][1]

    calm, calm_results = calm_runs["churn"]
    drifted, drifted_results = drifted_runs["churn"]
    assert calm["drift_breached"] == []
    assert max(r["psi"] for r in calm_results) < 0.2
    assert "logins_7d" in drifted["drift_breached"]
    by_feature = {r["feature"]: r for r in drifted_results}
    assert by_feature["logins_7d"]["psi"] > 0.2 and by_feature["logins_7d"]["p_value"] < 0.001
    assert {r["kind"] for r in drifted_results} == {"feature", "prediction"}
    # Every feature of both groups is watched, the profile's (CRM) ones did not drift.
    assert set(by_feature) == {*demo.ACTIVITY, "plan", "tenure_days", "days_since_plan_change"} | {
        "prediction"
    }
    assert by_feature["plan"]["psi"] < 0.2 and by_feature["tenure_days"]["psi"] < 0.2

    # The regression model: its numeric prediction is binned too; dearer purchases and fewer
    # logins show in its features.
    spend_calm, spend_calm_results = calm_runs["spend"]
    spend, spend_results = drifted_runs["spend"]
    assert spend_calm["drift_breached"] == []
    assert max(r["psi"] for r in spend_calm_results) < 0.2
    spend_by_feature = {r["feature"]: r for r in spend_results}
    assert set(spend_by_feature) == {
        "spend_7d",
        "spend_30d",
        "purchases_30d",
        "logins_30d",
        *demo.PROFILE,
        "prediction",
    }
    assert "logins_30d" in spend["drift_breached"] and spend_by_feature["spend_7d"]["psi"] > 0.2
    assert spend_by_feature["region"]["psi"] < 0.2

    for summary, results in (drifted_runs["churn"], drifted_runs["spend"]):
        for result in results:  # both histograms cover the same bins, nothing lost
            assert len(result["bins"]) == len(result["expected"]) == len(result["observed"])
            assert sum(result["observed"]) == summary["rows"]


def test_monitor_report_writes_the_pictures(
    tmp_path: Path,
    drifted_raw: Path,
    scored_homes: dict[str, tuple[Path, dict[str, tuple[dict, list[dict]]]]],  # type: ignore[type-arg]
) -> None:
    from fti.monitoring.publish import write_reports

    home, runs = scored_homes["drifted"]
    settings = demo_settings(home, drifted_raw)
    with session_scope(settings.db_url) as session:
        started = {r.run_id: r.started_at for r in session.scalars(select(PredictionRun))}
    newest = write_reports(settings, tmp_path / "out")  # no run named: the newest run
    assert newest["run_id"] == max(started, key=started.__getitem__)
    reports = {m: write_reports(settings, tmp_path / "out", f"score-{m}") for m in runs}
    assert reports["spend"]["metrics_report"].endswith("spend.html")
    for model, report in reports.items():
        drift_html = Path(report["drift_report"]).read_text()
        assert Path(report["drift_report"]).parent == tmp_path / "out"
        assert "Over the PSI threshold 0.2" in drift_html and "logins_30d" in drift_html
        # PSI bars, then one histogram per feature and one of the prediction
        assert drift_html.count("data:image/png;base64,") == 1 + len(runs[model][1])
        assert "data:image/png;base64," in Path(report["metrics_report"]).read_text()
    assert (
        reports["churn"]["run_id"] == "score-churn"
        and "logins_7d" in Path(reports["churn"]["drift_report"]).read_text()
    )


def test_a_run_below_the_minimum_rows_is_not_judged_and_does_not_breach(
    tmp_path: Path,
    drifted_raw: Path,
    scored_homes: dict[str, tuple[Path, dict[str, tuple[dict, list[dict]]]]],  # type: ignore[type-arg]
) -> None:
    """Drifted data scored by a run with fewer rows than monitor.min_rows: PSI is still
    recorded, but nothing breaches and the run is not marked drifted; at the minimum it is."""
    import yaml

    home, runs = scored_homes["drifted"]
    drifted, _ = runs["churn"]
    assert "logins_7d" in drifted["drift_breached"]
    rows = drifted["rows"]
    settings = demo_settings(home, drifted_raw)
    params = yaml.safe_load(settings.params_file.read_text())
    for min_rows, judged in ((rows + 1, False), (rows, True)):
        params["monitor"]["min_rows"] = min_rows
        params_file = tmp_path / f"params-{min_rows}.yaml"
        params_file.write_text(yaml.safe_dump(params))
        run_id = f"score-churn-min-{min_rows}"
        summary = score_batch(
            "churn",
            DEMO_END,
            run_id,
            settings=settings.model_copy(update={"params_file": params_file}),
        )
        with session_scope(settings.db_url) as session:
            results = {r["feature"]: r for r in drift_of_run(session, run_id)}
            run = session.scalar(select(PredictionRun).where(PredictionRun.run_id == run_id))
            assert run is not None and run.drift_breached is judged
        assert results["logins_7d"]["psi"] > 0.2 and summary["rows"] == rows
        assert ("logins_7d" in summary["drift_breached"]) is judged
        assert results["logins_7d"]["breached"] is judged
        if not judged:
            assert not any(r["breached"] for r in results.values())


def test_a_run_below_the_minimum_says_so_in_its_summary_and_report(
    tmp_path: Path,
    drifted_raw: Path,
    scored_homes: dict[str, tuple[Path, dict[str, tuple[dict, list[dict]]]]],  # type: ignore[type-arg]
) -> None:
    """The reason a run was not judged is in its summary and on its drift report."""
    from html import escape

    import yaml

    from fti.monitoring.publish import write_reports

    home, runs = scored_homes["drifted"]
    settings = demo_settings(home, drifted_raw)
    rows = runs["churn"][0]["rows"]
    params = yaml.safe_load(settings.params_file.read_text())
    params["monitor"]["min_rows"] = rows + 1
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    few = settings.model_copy(update={"params_file": params_file})
    summary = score_batch("churn", DEMO_END, "score-churn-few", settings=few)
    reason = f"not enough rows to judge: {rows} < {rows + 1}"
    assert summary["drift_not_judged"] == reason and summary["drift_breached"] == []
    page = Path(write_reports(few, tmp_path / "out", "score-churn-few")["drift_report"])
    assert escape(reason) in page.read_text() and "Over the PSI threshold" not in page.read_text()
    judged = write_reports(settings, tmp_path / "out", "score-churn")["drift_report"]
    assert "not enough rows" not in Path(judged).read_text()
    assert runs["churn"][0]["drift_not_judged"] is None


# ---- scoring by entity shard (fti.pipelines.inference: plan_shards, score_shard, write_scores) --
# Last in this module: these rescore the drifted home's DEMO_END (the same rows, later runs).
SCORE_COLUMNS = (
    "entity_id",
    "model_version",
    "feature_group",
    "feature_version",
    "as_of_date",
    "prediction",
    "probability",
    "value",
    "predicted_class",
    "class_probabilities",
)
SUMMARY_KEYS = ("model_version", "feature_versions", "rows", "warnings", "drift_breached")


def slice_rows(db_url: str, model: str) -> list[tuple]:  # type: ignore[type-arg]
    """The (model, DEMO_END) slice as sorted tuples, without the run's own columns."""
    with session_scope(db_url) as session:
        rows = session.scalars(
            select(Prediction).where(
                Prediction.model_name == model, Prediction.as_of_date == DEMO_END
            )
        )
        return sorted(tuple(getattr(p, c) for c in SCORE_COLUMNS) for p in rows)


def drift_figures(db_url: str, run_id: str) -> list[dict]:  # type: ignore[type-arg]
    with session_scope(db_url) as session:
        return drift_of_run(session, run_id)


def sharded(s: Settings, tmp: Path, models: dict[str, int]) -> Settings:
    """``s`` with params.yaml's ``shards.models`` set: each model scored by that many shards."""
    import yaml

    params = yaml.safe_load(Path(s.params_file).read_text())
    params["shards"] = (params.get("shards") or {}) | {"models": models}
    path = tmp / f"params-{'-'.join(f'{m}{n}' for m, n in models.items())}.yaml"
    path.write_text(yaml.safe_dump(params))
    return s.model_copy(update={"params_file": path})


@pytest.fixture(scope="module")
def unsharded(
    scored_homes: dict[str, tuple[Path, dict[str, tuple[dict, list[dict]]]]],  # type: ignore[type-arg]
) -> tuple[Settings, dict[str, tuple[dict, list[tuple], list[dict]]]]:  # type: ignore[type-arg]
    """The drifted home (drift breached: the figures matter) and, per model, what its unsharded
    run ``score-<model>`` wrote: summary, slice rows and drift figures."""
    home, runs = scored_homes["drifted"]
    s = make_settings(home)
    return s, {
        model: (summary, slice_rows(s.db_url, model), drift_figures(s.db_url, f"score-{model}"))
        for model, (summary, _) in runs.items()
    }


def assert_same_scores(s: Settings, run_id: str, model: str, summary: dict, reference) -> None:  # type: ignore[no-untyped-def,type-arg]
    want_summary, want_rows, want_drift = reference
    assert {k: summary[k] for k in SUMMARY_KEYS} == {k: want_summary[k] for k in SUMMARY_KEYS}
    assert slice_rows(s.db_url, model) == want_rows
    assert drift_figures(s.db_url, run_id) == want_drift  # PSI and p-values exactly
    with session_scope(s.db_url) as session:
        run = session.scalar(select(PredictionRun).where(PredictionRun.run_id == run_id))
        assert run is not None and (run.status, run.row_count) == ("succeeded", len(want_rows))
        assert run.drift_breached is bool(want_summary["drift_breached"])


@hypothesis_settings(max_examples=3, deadline=None)
@given(count=st.integers(2, 5))
def test_scoring_by_shard_writes_exactly_the_rows_the_unsharded_run_writes(
    unsharded, tmp_path_factory: pytest.TempPathFactory, count: int
) -> None:  # type: ignore[no-untyped-def]
    """Any shard count writes the unsharded run's rows and drift figures, for the model that
    joins a second group within its TTL (churn) and the regression (spend)."""
    s, reference = unsharded
    tmp = tmp_path_factory.mktemp("shards")
    for model in reference:
        run_id = f"sharded-{model}-{count}"
        summary = score_batch(model, DEMO_END, run_id, settings=sharded(s, tmp, {model: count}))
        assert summary["shards"] == count
        assert_same_scores(s, run_id, model, summary, reference[model])
    assert not (s.staging_path / "scores").exists() or not any(
        (s.staging_path / "scores").rglob("*.*")
    )  # the one-process path leaves no spool or record


def test_scoring_by_shard_on_postgresql(unsharded, postgres_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same rows through PostgreSQL's COPY, sharded and not, from the same store."""
    from sqlalchemy import insert
    from sqlalchemy import select as select_rows

    from fti.db.migrate import upgrade
    from fti.db.tables import AliasEvent, FeatureVersion, ModelAlias, ModelVersion

    s, reference = unsharded
    upgrade(postgres_url)
    with session_scope(s.db_url) as source, session_scope(postgres_url, write=True) as target:
        for table in (FeatureVersion, ModelVersion, ModelAlias, AliasEvent):
            rows = source.execute(select_rows(table.__table__)).mappings().all()
            if rows:
                target.execute(insert(table.__table__), [dict(r) for r in rows])
    pg = s.model_copy(update={"db_url": postgres_url})
    for model in reference:
        for count, settings in ((1, pg), (4, sharded(pg, tmp_path, {model: 4}))):
            run_id = f"pg-{model}-{count}"
            summary = score_batch(model, DEMO_END, run_id, settings=settings)
            assert summary["shards"] == count
            assert_same_scores(pg, run_id, model, summary, reference[model])


def test_a_failed_shard_keeps_the_previous_slice_and_a_retry_replaces_only_its_spool(
    unsharded, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The DAG's steps one by one: the write refuses a date with a shard not scored (the run is
    failed, the slice as it was); a retried shard rewrites its own spool only; the write then
    gives the unsharded rows, and a retried write returns the same summary."""
    from fti.errors import FtiError
    from fti.inference.spools import spool_root
    from fti.pipelines.inference import plan_shards, score_shard, write_scores

    s, reference = unsharded
    three = sharded(s, tmp_path, {"churn": 3})
    before = slice_rows(s.db_url, "churn")
    plan = plan_shards("churn", DEMO_END, "steps", settings=three)
    assert plan["shards"] == 3
    first, third = score_shard(plan, 0, three), score_shard(plan, 2, three)
    with pytest.raises(FtiError, match="shard 2 of 3 of .* not scored"):
        write_scores(plan, three)
    assert slice_rows(s.db_url, "churn") == before
    with session_scope(s.db_url) as session:
        run = session.scalar(select(PredictionRun).where(PredictionRun.run_id == "steps"))
        assert run is not None and run.status == "failed" and "shard 2 of 3" in run.error

    kept = Path(third).stat().st_mtime_ns
    assert score_shard(plan, 0, three) == first  # a retry of shard 1: its own spool again
    assert Path(third).stat().st_mtime_ns == kept
    score_shard(plan, 1, three)
    summary = write_scores(plan, three)
    assert_same_scores(s, "steps", "churn", summary, reference["churn"])
    root = spool_root(s.staging_path, "churn", DEMO_END, "steps")
    assert not root.exists()  # the spools went once the slice was written
    assert write_scores(plan, three) == summary  # a retried write: the same, nothing rewritten


def test_the_scoring_shard_count_follows_the_rows_a_shard_reads(unsharded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """churn reads customer_activity's rows of the date and customer_profile's over its 7-day
    TTL window: shards.score_rows_per_shard divides them; shards.models fixes the count."""
    import yaml

    from fti.pipelines.inference import plan_shards
    from fti.store.versions import FeatureStore

    s, _ = unsharded
    store = FeatureStore(s.store_path)
    profile = [
        d for d in store.partition_dates("customer_profile", 1) if d >= DEMO_END - timedelta(days=7)
    ]
    rows = (
        store.read("customer_activity", 1, ["customer_id"], [DEMO_END]).num_rows
        + store.read("customer_profile", 1, ["customer_id"], profile).num_rows
    )

    def planned(**section: Any) -> int:
        params = yaml.safe_load(Path(s.params_file).read_text())
        params["shards"] = section
        path = tmp_path / f"params-{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump(params))
        with_section = s.model_copy(update={"params_file": path})
        return int(
            plan_shards("churn", DEMO_END, "plan", settings=with_section, dry_run=True)["shards"]
        )

    assert planned() == 1  # the demo's few hundred customers: one shard
    assert planned(score_rows_per_shard=rows // 3 + 1) == 3
    assert planned(score_rows_per_shard=1, max=5) == 5
    assert planned(score_rows_per_shard=1, models={"churn": 2}) == 2
