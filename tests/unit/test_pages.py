"""The fti pages without a browser or Airflow: values for people, templates rendered from view
models (plain data), themed SVG charts, the CSRF helpers and the app's login wiring."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import HTTPException, Request

from fti.pages import charts
from fti.pages.auth import FormRefused, LoginRequired, check_same_origin, form_token, origin, reason
from fti.pages.format import ago, breakable, count, direction, short_hash, significant
from fti.pages.render import relative_root, render_text
from fti.pages.svg import SERIES, VARIABLES, inline
from fti.pages.views.catalog import GroupVersionRow, Index, ModelSummary, ModelVersionRow, RunRow
from fti.pages.views.common import Chip, Link, Page, Urls, state_of
from fti.pages.views.models import (
    AliasEvent,
    FeatureGroupChips,
    Metric,
    ModelVersionPage,
    Served,
)
from fti.pages.views.monitoring import Realized
from tests import html_text

NOW = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
REPR = re.compile(r"\{'|\['|'\]|'\}|\bNone\b|\bTrue\b|\bFalse\b|datetime\.|\d\.\d{7,}")


# ---- values for people ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.718052738336714, "0.7181"),
        (-41.5, "\u221241.5"),
        (0.3, "0.3"),
        (1234.5678, "1,235"),
        (9.99996, "10"),
        (0.000123456, "0.0001235"),
        (0.0000123, "1.23\u00d710\u207b\u2075"),
        (2168, "2,168"),
        (0.0, "0"),
        (None, "\u2013"),
        (float("nan"), "NaN"),
        (True, "yes"),
    ],
)
def test_numbers_to_four_significant_digits(value: Any, shown: str) -> None:
    assert significant(value) == shown


def test_counts_dates_and_hashes_for_people() -> None:
    assert count(1234567) == "1,234,567" and count(None) == "\u2013"
    assert ago(NOW - timedelta(hours=3), NOW) == "3 h ago"
    assert ago(NOW - timedelta(days=40), NOW) == "5 weeks ago"
    assert ago(NOW + timedelta(days=3), NOW) == "in 3 days"
    assert ago(NOW.replace(tzinfo=None) - timedelta(seconds=5), NOW) == "just now"  # naive: UTC
    assert short_hash("0123456789abcdef" * 4) == "0123456789"
    assert short_hash("v1") == "v1"
    assert str(breakable("churn_inference/manual__<b>")) == (
        "churn_<wbr>inference/<wbr>manual__<wbr>&lt;b&gt;"
    )


def test_a_metric_knows_which_way_is_better() -> None:
    assert direction("roc_auc").words == "higher is better"  # type: ignore[union-attr]
    assert direction("log_loss").words == "lower is better"  # type: ignore[union-attr]
    assert direction("neg_root_mean_squared_error").arrow == "\u2191"  # type: ignore[union-attr]
    assert direction("rows") is None  # a figure, not a metric


def test_statuses_take_airflows_task_state_colours() -> None:
    assert [state_of(s) for s in ("succeeded", "fresh", "stale", "never", "running", "?")] == [
        "success",
        "success",
        "failed",
        "upstream_failed",
        "running",
        "none",
    ]


def test_the_base_is_the_fti_root_from_any_page() -> None:
    assert relative_root("/fti/", "/fti") == "./"
    assert relative_root("/fti/health", "/fti") == "./"
    assert relative_root("/fti/models/churn/2", "/fti") == "../../"
    assert relative_root("/airflow/fti/models/churn/2/promote", "/airflow/fti") == "../../../"
    assert relative_root("/models/churn/2") == "../../"  # a path the mount already stripped


# ---- templates from view models ------------------------------------------------------------------
URLS = Urls("/")


def model_row(name: str, version: int, value: float | None, metric: str) -> ModelVersionRow:
    return ModelVersionRow(
        name=name,
        version=version,
        href=URLS.model_version(name, version),
        aliases=["champion"] if version == 1 else [],
        task="binary",
        metric=metric,
        value=value,
        direction=direction(metric),
        groups=URLS.group_chips({"customer_activity": 1, "customer_profile": 3}),
        label=Chip(
            "churned_30d v2", URLS.group_version("churned_30d", 2), "label group version", "labels"
        ),
        features=12,
        train_start=date(2026, 1, 1),
        train_end=date(2026, 3, 31),
        run=URLS.lineage_run("churn_training/manual__2026-04-30"),
        created_at=NOW - timedelta(hours=2),
        owner="retail",
    )


def index_view() -> Index:
    return Index(
        groups=[
            GroupVersionRow(
                group="customer_activity",
                kind="features",
                version=1,
                href=URLS.group_version("customer_activity", 1),
                rows=1234,
                partitions=30,
                min_date=date(2026, 4, 1),
                max_date=date(2026, 4, 30),
                dvc_md5="d41d8cd98f00b204e9800998ecf8427e",
                git_tag="customer_activity/v1",
                run=URLS.lineage_run("feature_pipeline/scheduled__2026-04-30T00:00:00+00:00"),
                created_at=NOW - timedelta(days=1),
            )
        ],
        models=[model_row("churn", 1, 0.718052738336714, "roc_auc")],
        runs=[
            RunRow(
                run=URLS.prediction_run("churn_inference/manual__2026-04-30", "manual__2026-04-30"),
                model=Chip("churn v1", URLS.model_version("churn", 1)),
                groups=URLS.group_chips({"customer_activity": 1}),
                as_of_date=date(2026, 4, 30),
                status="failed",
                error="FeatureError: no features\nTraceback",
                rows=2168,
                warnings=["logins_7d is all null"],
                drift=Link("report", URLS.drift("churn_inference/manual__2026-04-30")),
                drift_breached=True,
                started_at=NOW,
            )
        ],
        summaries=[
            ModelSummary(
                "churn", 2, 1, "models/churn/1", "roc_auc", 0.8123, direction("roc_auc"), "m", "r"
            )
        ],
        page=1,
        pages=3,
        per_page=50,
    )


def test_the_index_renders_values_for_people() -> None:
    page = render_text(
        "index.html", page=Page("fti", [Link("fti", "")]), view=index_view(), now=NOW
    )
    text = html_text.text(page)
    assert not REPR.findall(text), REPR.findall(text)
    (model,) = html_text.table(page, "models-table")
    assert model == [
        "churn",
        "v1",
        "champion",
        "binary",
        "roc_auc",
        "0.7181",  # 4 significant digits (its direction is an icon and words on hover)
        "customer_activity v1 customer_profile v3",
        "churned_30d v2",
        "12",
        "2026-01-01 \u2192 2026-03-31",
        "2 h ago",
        "churn_training/manual__2026-04-30",
        "retail",  # the project that owns it
    ]
    assert '<time datetime="2026-05-01T04:00:00+00:00" title="2026-05-01 04:00:00 UTC">' in page
    (group,) = html_text.table(page, "groups-table")
    assert group[3] == "1,234" and group[6] == "d41d8cd98f" and group[-1] == "\u2013"  # no owner
    assert 'data-copy="d41d8cd98f00b204e9800998ecf8427e"' in page  # the whole hash, copied
    (run,) = html_text.table(page, "runs-table")
    assert run[4:6] == ["failed", "2,168"]
    assert 'class="badge state-failed" data-status="failed"' in page
    assert 'target="_top"' in page  # Airflow's pages open in the whole window, not the frame
    assert "page 1 of 3" in text and "?page=2&amp;per_page=50" in page
    assert '<base href="./">' in page and 'href="static/fti.css?v=2"' in page
    # Headers the script makes sortable, and the columns it filters by.
    assert "<th data-filter>model</th>" in page and "<th data-nosort>aliases</th>" in page
    one = render_text("index.html", page=Page("fti", []), view=replace(index_view(), project="a b"))
    assert "?page=2&amp;per_page=50&amp;project=a%20b" in one  # the pager keeps the project


def test_markup_in_data_is_escaped() -> None:
    view = index_view()
    bad = model_row("<script>alert(1)</script>", 1, None, "roc_auc")
    page = render_text(
        "index.html", page=Page("x", []), view=Index([], [bad], [], [], 1, 1, 50), now=NOW
    )
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert view.models  # the fixture itself untouched


def version_view(**changes: Any) -> ModelVersionPage:
    values: dict[str, Any] = {
        "name": "churn",
        "version": 2,
        "versions": [1, 2],
        "aliases": [],
        "task": "binary",
        "created_at": NOW,
        "metrics": [
            Metric("roc_auc", 0.718052738336714, direction("roc_auc"), True),
            Metric("log_loss", 0.4123456, direction("log_loss"), False),
        ],
        "groups": [
            FeatureGroupChips(
                Chip("customer_activity v1", "features/customer_activity/1"),
                None,
                [Chip("logins_7d"), Chip("spend_30d")],
            ),
            FeatureGroupChips(
                Chip("customer_profile v3", "features/customer_profile/3"), 7, [Chip("plan")]
            ),
        ],
        "label": Chip("churned_30d v2", "features/churned_30d/2", None, "labels"),
        "train_start": date(2026, 1, 1),
        "train_end": date(2026, 3, 31),
        "n_train": 1000,
        "n_holdout": 300,
        "estimator": "sklearn.pipeline.Pipeline(HistGradientBoostingClassifier)",
        "params": {
            "max_iter": 150,
            "max_depth": None,
            "early_stopping": True,
            "scale": 0.123456789,
        },
        "promotion": {"promoted": True, "interval": [0.01, 0.02], "reason": "beats v1"},
        "artifact_uri": "/tmp/a.skops",
        "artifact_sha256": "ab" * 32,
        "code_version": "0123456789abcdef0123",
        "library_versions": {"scikit-learn": "1.9.0"},
        "run": URLS.lineage_run("churn_training/manual__2026-04-30"),
        "runs": [],
        "runs_total": 0,
        "champion": 1,
        "previous": None,
        "served": Served(1, None, None),
        "history": [AliasEvent(1, "champion", None, 1, "test", "first", NOW)],
        "recorded": None,
        "metrics_href": "models/churn/metrics",
        "realized_href": "models/churn/realized",
        "dags": [Link("training DAG", "/dags/churn_training", top=True)],
    }
    return ModelVersionPage(**{**values, **changes})


def render_version(view: ModelVersionPage, token: str | None = "t0ken") -> str:
    empty = Realized("churn", 2, "", None, False, 0)
    page = Page("churn v2", [Link("fti", "./"), Link("v2", "")])
    return render_text(
        "model_version.html",
        page=page,
        view=view,
        realized=empty,
        token=token,
        now=NOW,
        root="../../",
    )


def test_the_model_version_page_shows_dicts_lists_and_features_for_people() -> None:
    page = render_version(version_view())
    text = html_text.text(page)
    assert not REPR.findall(text), REPR.findall(text)
    lineage = html_text.definitions(html_text.section(page, "lineage"))
    assert lineage["parameters"] == "max iter 150 max depth \u2013 early stopping yes scale 0.1235"
    assert (
        lineage["promotion"] == "promoted: beats v1 promoted yes interval 0.01 0.02 reason beats v1"
    )
    assert lineage["sha256"] == "ab" * 5 and f'data-copy="{"ab" * 32}"' in page
    assert html_text.definitions(html_text.section(page, "metrics")) == {
        "roc_auc": "0.7181 gate",
        "log_loss": "0.4123",
    }
    assert '<span class="dir" title="lower is better">' in page
    features = html_text.section(page, "features").text()
    assert features == (
        "Features customer_activity v1 2 features logins_7d spend_30d "
        "customer_profile v3 1 feature, rows up to 7 days old plan"
    )
    assert "v1 is champion." in text and "Make champion" in text
    assert re.search(r'<form method="post" action="models/churn/2/promote"', page)
    assert '<input type="hidden" name="token" value="t0ken">' in page
    assert 'required maxlength="1000"' in page
    assert '<a href="/dags/churn_training" target="_top">training DAG</a>' in page


def test_the_forms_show_only_to_who_may_use_them() -> None:
    assert "<form" not in render_version(version_view(), token=None)
    champion = render_version(version_view(champion=2, previous=1, aliases=["champion"]))
    assert "Roll back champion" in champion and "Make champion" not in champion
    assert 'action="models/churn/2/rollback"' in champion
    recorded = AliasEvent(7, "champion", 1, 2, "alice", "beats v1", NOW)
    shown = html_text.text(render_version(version_view(champion=2, recorded=recorded)))
    assert "Recorded: churn champion v1 -> v2 by alice (beats v1)." in shown
    assert "v2 is champion (this version)." in shown


# ---- charts ----------------------------------------------------------------------------------------
def test_a_chart_is_inline_svg_in_the_pages_colours() -> None:
    days = [date(2026, 4, 1) + timedelta(days=n) for n in range(10)]
    chart = charts.bars_per_date(
        days,
        {"rows read": {d: 100.0 for d in days}, "quarantined": dict.fromkeys(days, 3.0)},
        "rows",
        "Rows read",
    )
    svg = str(chart.svg)
    assert svg.startswith('<svg class="chart-svg" role="img" aria-label="Rows read"')
    assert "<?xml" not in svg and "<metadata>" not in svg
    assert "var(--chart-fg)" in svg and "var(--chart-1)" in svg and "var(--chart-2)" in svg
    assert not any(colour in svg for colour in VARIABLES)  # no placeholder left
    assert "<text" in svg  # real text, in the page's font
    assert re.search(r'width="1152" height="\d+"', svg)
    # Concise date labels: days and the month, never cut.
    assert ">Apr<" in svg or "2026-Apr" in svg


def test_a_histogram_titles_a_breach_in_the_bad_colour_only() -> None:
    feature = {
        "feature": "logins_7d",
        "expected": [5, 5],
        "observed": [9, 1],
        "bins": ["< 3", ">= 3"],
    }
    calm = str(charts.histogram(feature | {"psi": 0.01, "breached": False}).svg)
    breached = str(charts.histogram(feature | {"psi": 0.6, "breached": True}).svg)
    assert "logins_7d: PSI 0.010" in calm and "var(--chart-bad)" not in calm
    assert "var(--chart-bad)" in breached


def test_chart_ids_are_unique_per_chart() -> None:
    svg = '<?xml?><svg width="10pt" height="5pt"><clipPath id="p1"/><g clip-path="url(#p1)" style="fill: #0f0f10"/></svg>'
    first, second = str(inline(svg, "a", "c1-")), str(inline(svg, "b", "c2-"))
    assert 'id="c1-p1"' in first and "url(#c1-p1)" in first and 'id="c2-p1"' in second
    assert f"fill: {VARIABLES[SERIES[0]]}" in first
    assert 'width="13" height="7"' in first  # points to pixels


def test_metrics_over_versions_one_small_chart_per_metric() -> None:
    chart = charts.metrics_over_versions(
        [1, 2, 3],
        {"roc_auc": [0.7, 0.72, None], "log_loss": [0.5, 0.45, 0.44]},
        {"roc_auc": "higher is better"},
        {1, 3},
        "m",
    )
    svg = str(chart.svg)
    assert "roc_auc  (higher is better)" in svg and "log_loss" in svg and ">v3<" in svg


# ---- CSRF helpers and the login ------------------------------------------------------------------
class FakeAuth:
    """A PageAuth: a user from an X-User header; alice may change aliases."""

    def __init__(self, public: str = "") -> None:
        self.public = public

    async def user(self, request: Request) -> str:
        name = request.headers.get("x-user")
        if not name:
            if "text/html" in request.headers.get("accept", ""):
                raise LoginRequired
            raise HTTPException(401, "Not authenticated")
        return name

    def may_change_aliases(self, user: str, name: str) -> bool:
        return user == "alice"

    def credential(self, request: Request) -> str:
        return request.headers.get("x-user", "")

    def secret_key(self) -> bytes:
        return b"secret"

    def public_url(self) -> str:
        return self.public

    def login_url(self, request: Request) -> str:
        return "/login?next=" + request.url.path

    def api_url(self, request: Request) -> str:
        return "http://testserver/"

    def root_path(self) -> str:
        return "/"

    def actor(self, user: str) -> str:
        return user


def request(**headers: str) -> Request:
    raw = [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/x",
            "headers": raw,
            "server": ("testserver", 80),
            "scheme": "http",
        }
    )


def test_the_form_token_is_bound_to_the_session_and_the_key() -> None:
    auth = FakeAuth()
    alice, bob = form_token(auth, request(x_user="alice")), form_token(auth, request(x_user="bob"))
    assert alice != bob and len(alice) == 64
    assert form_token(auth, request(x_user="alice")) == alice


def test_a_form_from_another_origin_is_refused() -> None:
    assert origin("https://Airflow.example.com:443/x") == "https://airflow.example.com"
    assert origin("http://[::1]:8080/") == "http://[::1]:8080" and origin("/relative") is None
    check_same_origin(FakeAuth(), request(origin="http://testserver"))
    check_same_origin(FakeAuth(), request(referer="http://testserver/fti/models/churn/2"))
    for headers, why in (
        ({"origin": "https://evil.example"}, "another site"),
        ({"origin": "null"}, "without an Origin or Referer"),
        ({}, "without an Origin or Referer"),
    ):
        with pytest.raises(FormRefused, match=why):
            check_same_origin(FakeAuth(), request(**headers))
    # Behind a proxy, the public URL's origin is the one that counts.
    with pytest.raises(FormRefused):
        check_same_origin(
            FakeAuth("https://airflow.example.com/"), request(origin="http://testserver")
        )
    assert reason("  why\n not ") == "why not"
    with pytest.raises(FormRefused, match="a reason is required"):
        reason(" \n")


def test_every_route_asks_for_the_login() -> None:
    from fastapi.testclient import TestClient

    from fti.pages.app import create_app

    client = TestClient(create_app(FakeAuth()), follow_redirects=False)
    assert client.get("/static/fti.css").status_code == 401
    assert client.get("/", headers={"accept": "text/html"}).headers["location"] == "/login?next=/"
    css = client.get("/static/fti.css", headers={"x-user": "vera"})
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/static/../app.py", headers={"x-user": "vera"}).status_code == 404
    assert client.get("/static/secret.txt", headers={"x-user": "vera"}).status_code == 404
