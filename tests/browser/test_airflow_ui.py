"""The Airflow UI in a real headless Chromium: the fti page asks for Airflow's login and comes
back after it, then trigger the churn model's inference DAG from its form with a non-default
model version, wait for the run, see its prediction run, and make that version champion from
its page on the fti pages. Every fti page, in Airflow's light and dark themes at 1280x800:
readable values (no Python repr), no horizontal scrollbar, tables that sort and filter, no
serious or critical accessibility violation (axe-core), a screenshot each. Then publish the
demo's next night for every group but one and see, through the Browse menu's "fti health" page,
that group flagged stale with the backfill that catches it up while the others are fresh.

One real ``airflow standalone`` (api-server, scheduler, dag-processor, triggerer; SQLite
metadata in tmp) for the whole session serves this repo's DAGs (generated from the churn demo's
manifest) and plugin over a tmp FTI home holding version 1 of every feature and label group, two
versions of the churn model and one of the spend model, a few nights scored by the champion with
their drift and realized metrics. Screenshots go to ``FTI_TEST_ARTIFACTS`` (default
``test-artifacts/`` in the repository). Without Chromium and its driver the test is skipped:
``.ci/run`` installs Debian's ``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import DEMO_CUSTOMERS, DEMO_END, DEMO_START, PARAMS, REPO, demo_settings
from tests.process_tree import stop_tree

ARTIFACTS = Path(os.environ.get("FTI_TEST_ARTIFACTS", REPO / "test-artifacts"))
DAG_ID = "churn_inference"
STARTUP_SECONDS = 240
RUN_SECONDS = 300
NEXT_NIGHT = DEMO_END + timedelta(days=1)  # the health test publishes it for all but one group
LEFT_BEHIND = "customer_profile"
SCORED_NIGHTS = [DEMO_END - timedelta(days=n) for n in (40, 36, 32)]  # labels known for them
WIDTH, HEIGHT = 1280, 800


def browser_binaries() -> tuple[str, str]:
    chromium = next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip(
            "no headless Chromium here (needs chromium and chromedriver on PATH): "
            "`apt-get install chromium chromium-driver`, as .ci/run does"
        )
    return chromium, driver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], seconds: float, log: Path | None = None) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` (and the log's tail).

    A busy machine answers slowly: a request that times out or is refused is "not yet", and so
    is a page still loading (an element gone with the page it was on, or not there yet).
    """
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.HTTPError, NoSuchElementException, StaleElementReferenceException):
            result = None
        if result:
            return result
        time.sleep(2)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:]) if log else ""
    pytest.fail(f"timed out after {seconds:.0f}s waiting for {what}\n{tail}")


@dataclass
class Project:
    home: Path
    champion: int
    other: int
    as_of: str
    scored: str  # the run id of a night the champion scored (its drift report)


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory, demo_raw: Path) -> Project:
    """Version 1 of every feature and label group over the demo history; two versions of the
    churn model (one of them champion) and one of the spend model; a few nights whose labels
    are known scored by both champions, with their drift and realized metrics."""
    from fti.db.engine import session_scope
    from fti.monitoring.realized import refresh_realized
    from fti.pipelines.features import run_features
    from fti.pipelines.inference import score_batch
    from fti.pipelines.training import build_training_set, promote_if_better, train_model
    from fti.registry import aliases

    settings = demo_settings(tmp_path_factory.mktemp("browser") / "home", demo_raw)
    published = run_features(DEMO_START, DEMO_END, "setup", settings)["published"]
    assert {group: p["version"] for group, p in published.items()} == {
        "customer_activity": 1,
        "customer_profile": 1,
        "churned_30d": 1,
        "spend_next_30d": 1,
    }
    churn = build_training_set("churn", None, None, "setup", settings)
    versions = [
        train_model(churn, "setup-1", settings=settings),
        train_model(churn, "setup-2", {"max_iter": 20}, settings),
    ]
    for version in versions:
        promote_if_better(churn, version, "setup", settings)
    spend = build_training_set("spend", None, None, "setup", settings)
    promote_if_better(spend, train_model(spend, "setup", settings=settings), "setup", settings)
    with session_scope(settings.db_url) as session:
        champion = aliases.current(session, "churn", aliases.CHAMPION)
    assert champion in versions
    other = next(v for v in versions if v != champion)
    for model in ("churn", "spend"):
        for night in SCORED_NIGHTS:
            score_batch(model, night, f"cli__infer__{model}__{night}", settings=settings)
    assert refresh_realized(settings)
    churn_night = f"cli__infer__churn__{SCORED_NIGHTS[-1]}"
    return Project(settings.home, champion, other, DEMO_END.isoformat(), churn_night)


@dataclass
class Airflow:
    url: str
    password: str
    log: Path


@pytest.fixture(scope="session")
def airflow(project: Project, demo_raw: Path) -> Iterator[Airflow]:
    """``airflow standalone`` on free ports over the project; DAGs scheduled by hand only."""
    from fti.definitions import load_project
    from fti.deployment import publish_manifest
    from fti.runner import airflow_variables
    from fti.settings import Settings

    params = yaml.safe_load(PARAMS.read_text())
    params["schedule"] = {"features": None, "inference": None, "retrain": None}
    params_file = project.home / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    settings = Settings(home=project.home, params_file=params_file, raw_path=demo_raw)
    # What `fti check` does: the manifest in FTI_HOME/manifests, which the DAG files read.
    publish_manifest(load_project(settings.project), settings)
    port = free_port()  # not 8080: the port setting must reach the task supervisor too
    env = {
        **os.environ,
        **airflow_variables(settings, port),  # what `fti airflow --port ...` uses
        "FTI_RAW_PATH": str(demo_raw),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    airflow_home = Path(env["AIRFLOW_HOME"])
    airflow_home.mkdir(parents=True, exist_ok=True)
    log = airflow_home / "standalone.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["airflow", "standalone"],
            env=env,
            cwd=project.home,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://localhost:{port}"
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                pytest.fail(
                    f"airflow standalone exited with {process.returncode}:\n{log.read_text()}"
                )
            try:
                return httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the Airflow API server", healthy, STARTUP_SECONDS, log)
        passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
        password = wait_for(
            "the generated admin password",
            lambda: passwords.exists() and json.loads(passwords.read_text()).get("admin"),
            60,
            log,
        )
        yield Airflow(url, password, log)
    finally:
        stop_tree(process.pid)  # the scheduler's workers too, which leave its process group
        process.wait()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / "airflow-standalone.log")


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},{HEIGHT}",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US"})
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.implicitly_wait(20)
    yield chrome
    chrome.quit()


def api_runs(airflow: Airflow) -> list[dict[str, Any]]:
    """The inference DAG's runs, through Airflow's REST API (what the UI itself reads)."""
    login = httpx.post(
        f"{airflow.url}/auth/token",
        json={"username": "admin", "password": airflow.password},
        timeout=10,
    )
    login.raise_for_status()  # a busy server's error is an HTTPError: "not yet" to wait_for
    token = login.json()["access_token"]
    response = httpx.get(
        f"{airflow.url}/api/v2/dags/{DAG_ID}/dagRuns",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json()["dag_runs"])


def test_trigger_inference_from_the_form_and_see_the_run_on_the_fti_page(
    project: Project, airflow: Airflow, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        # Without a login, fti's data is as closed as Airflow's own API.
        assert_refused_without_login(airflow)

        # A browser without a session is sent to Airflow's login page; after logging in with
        # the admin password Airflow generated, it is back on the fti page.
        log_in(browser, airflow, "/fti/")

        # The fti page: the group versions and the model versions, each model with its own
        # metric; no prediction run yet.
        page = browser.find_element(By.TAG_NAME, "body").text
        for shown in ("customer_activity", "churned_30d", "spend_next_30d", "labels"):
            assert shown in page, page
        assert "roc_auc" in page and "neg_root_mean_squared_error" in page, page
        browser.save_screenshot(str(ARTIFACTS / "fti-page-before.png"))

        # The inference DAG's trigger form: score DEMO_END with the version that is not champion.
        wait_for(
            f"{DAG_ID} to be parsed",
            lambda: (
                httpx.get(f"{airflow.url}/api/v2/monitor/health", timeout=5).is_success
                and _dag_known(airflow)
            ),
            120,
            airflow.log,
        )
        browser.get(f"{airflow.url}/dags/{DAG_ID}")
        browser.find_element(By.CSS_SELECTOR, "button[aria-label='Trigger Dag']").click()
        model = browser.find_element(By.ID, "element_model")
        assert model.get_attribute("value") == "champion"
        model.send_keys(Keys.CONTROL, "a")
        model.send_keys(str(project.other))
        year, month, day = project.as_of.split("-")
        browser.find_element(By.ID, "element_as_of_date").send_keys(month + day + year)
        browser.save_screenshot(str(ARTIFACTS / "trigger-form.png"))
        browser.find_element(By.CSS_SELECTOR, "[data-testid='trigger-dag-submit']").click()

        # The run (the DAG was paused: the form's "unpause on trigger" is on) succeeds.
        def finished() -> dict[str, Any] | None:
            runs = api_runs(airflow)
            done = [r for r in runs if r["state"] in ("success", "failed")]
            return done[0] if done else None

        run = wait_for(f"the {DAG_ID} run to finish", finished, RUN_SECONDS, airflow.log)
        assert run["state"] == "success", run
        assert run["conf"]["model"] == str(project.other)

        # Its prediction run is on the fti page: the non-default version, succeeded.
        def shown() -> list[str] | None:
            browser.get(f"{airflow.url}/fti/")
            return next(
                (row for row in table_rows(browser, "runs-table") if run["dag_run_id"] in row[0]),
                None,
            )

        row = wait_for("the prediction run on the fti page", shown, 60)
        assert row[1] == f"churn v{project.other}" and row[4] == "succeeded", row
        assert row[3] == project.as_of, row

        # The version that scored well is made champion from its page: a reason, one click;
        # the page comes back with the change recorded under the admin's name.
        promote_on_the_model_page(browser, airflow, project)
    finally:
        browser.save_screenshot(str(ARTIFACTS / "fti-page-after.png"))


def log_in(browser: Any, airflow: Airflow, path: str) -> None:
    """Open ``path`` without a session: Airflow's login page, then, logged in as admin with
    the password Airflow generated, back on ``path``."""
    from selenium.webdriver.common.by import By

    browser.get(f"{airflow.url}{path}")
    wait_for("the login page", lambda: "/auth/login" in browser.current_url, 60)
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(airflow.password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for("the login", lambda: "/auth/login" not in browser.current_url, 60)
    assert browser.current_url == f"{airflow.url}{path}", browser.current_url


def promote_on_the_model_page(browser: Any, airflow: Airflow, project: Project) -> None:
    from selenium.webdriver.common.by import By

    page = f"{airflow.url}/fti/models/churn/{project.other}"
    browser.get(page)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert f"v{project.champion} is champion." in body, body
    reason = f"v{project.other} scored {project.as_of} well"
    browser.find_element(By.NAME, "reason").send_keys(reason)
    browser.save_screenshot(str(ARTIFACTS / "model-page-promote.png"))
    browser.find_element(By.XPATH, "//button[normalize-space()='Make champion']").click()

    # Post/Redirect/Get: the page again, with the change it recorded.
    wait_for("the page after the post", lambda: "?event=" in browser.current_url, 60)
    assert browser.current_url.startswith(f"{page}?event="), browser.current_url
    body = browser.find_element(By.TAG_NAME, "body").text
    assert (
        f"Recorded: churn champion v{project.champion} -> v{project.other} by admin ({reason})."
        in body
    ), body
    assert f"v{project.other} is champion (this version)." in body, body
    newest = [row for row in table_rows(browser, "history-table") if row[0] == "champion"][-1]
    assert newest[1:5] == [f"v{project.champion}", f"v{project.other}", "admin", reason], newest
    assert "Make champion" not in body and "Roll back champion" in body, body
    browser.save_screenshot(str(ARTIFACTS / "model-page-promoted.png"))


# ---- every page, in both themes -----------------------------------------------------------------
THEMES = {
    "light": "rgba(255, 255, 255, 1)",
    "dark": "rgba(22, 29, 45, 1)",
}  # Airflow's bg per theme
# What a Python value printed as is looks like: dict and list reprs, None/True/False, objects,
# datetimes, and floats with all their digits.
REPR = re.compile(
    r"\{'|\['|'\]|'\}|\bNone\b|\bTrue\b|\bFalse\b|\bnan\b|datetime\.|Decimal\(|object at 0x"
    r"|\d\.\d{7,}"
)
SERIOUS = {"serious", "critical"}


def fti_pages(project: Project) -> dict[str, str]:
    from urllib.parse import quote

    return {
        "index": "/fti/",
        "group-version": "/fti/features/customer_activity/1",
        "label-version": "/fti/features/churned_30d/1",
        "model-version": f"/fti/models/churn/{project.champion}",
        "model-metrics": "/fti/models/churn/metrics",
        "drift-report": f"/fti/drift?run_id={quote(project.scored, safe='')}",
        "health": f"/fti/health?now={DEMO_END + timedelta(days=1)}T06:00",
        "realized": "/fti/models/churn/realized",
        "realized-regressor": "/fti/models/spend/realized",
    }


def test_every_fti_page_in_light_and_dark(project: Project, airflow: Airflow, browser: Any) -> None:
    """Each page in each theme at 1280x800: Airflow's background, no Python repr in its text,
    no horizontal scrollbar, no serious or critical axe-core violation; screenshots of the
    viewport and of the whole page. On the index, the tables sort and filter."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_in(browser, airflow, "/fti/")
    browser.execute_cdp_cmd(  # the viewport itself 1280x800, whatever the window's frame
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    violations: dict[str, list[str]] = {}
    for theme, background in THEMES.items():
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": theme}]},
        )
        for name, path in fti_pages(project).items():
            open_page(browser, f"{airflow.url}{path}")
            body = browser.find_element("tag name", "body")
            assert body.value_of_css_property("background-color") == background, (name, theme)
            text = body.text
            assert not REPR.findall(text), (name, REPR.findall(text), text)
            assert "Traceback" not in text and "Internal Server Error" not in text, (name, text)
            assert not overflowing(browser), (name, theme, overflowing(browser))
            screenshots(browser, f"{name}-{theme}")
            found = serious_violations(browser)
            if found:
                violations[f"{name} ({theme})"] = found
    assert not violations, json.dumps(violations, indent=1)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    sort_and_filter_on_the_index(browser, airflow)


def open_page(browser: Any, url: str) -> None:
    browser.get(url)
    wait_for(url, lambda: browser.execute_script("return document.readyState") == "complete", 60)


def overflowing(browser: Any) -> list[str]:
    """What is wider than its box: the page itself (a horizontal scrollbar) or any table or
    chart in it."""
    return list(
        browser.execute_script(
            """
            const out = [];
            const root = document.documentElement;
            if (root.scrollWidth > root.clientWidth) out.push(`page ${root.scrollWidth}px`);
            for (const el of document.querySelectorAll('.table-wrap, figure.chart, .card, main')) {
              if (el.scrollWidth > el.clientWidth + 1)
                out.push(`${el.className || el.tagName} ${el.scrollWidth} > ${el.clientWidth}`);
            }
            return out;
            """
        )
    )


def screenshots(browser: Any, name: str) -> None:
    """``name``.png: the 1280x800 viewport; ``name``-full.png: the whole page."""
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    metrics = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    import base64

    (ARTIFACTS / f"{name}-full.png").write_bytes(base64.b64decode(shot["data"]))


def serious_violations(browser: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    from axe_selenium_python import Axe

    axe = Axe(browser)
    axe.inject()
    results = axe.run()
    assert results["passes"], results  # axe-core ran its rules on the page
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(str(node.get("target")) for node in v["nodes"][:5])
        for v in results["violations"]
        if v.get("impact") in SERIOUS
    ]


def table_rows(browser: Any, table_id: str) -> list[list[str]]:
    """The text of each cell of each row the table ``table_id`` shows, as a person reads it."""
    return list(
        browser.execute_script(
            "return Array.from(document.querySelectorAll(`#${arguments[0]} > tbody > tr`))"
            ".map(r => Array.from(r.cells).map(c => c.innerText.replace(/\\s+/g, ' ').trim()));",
            table_id,
        )
    )


def sort_and_filter_on_the_index(browser: Any, airflow: Airflow) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, f"{airflow.url}/fti/")
    runs = "runs-table"
    before = table_rows(browser, runs)
    models = {row[1] for row in before}
    assert {"churn v1", "spend v1"} & models, before
    # Filter by model: only that model's runs are left.
    section = browser.find_element(By.ID, "runs")
    tools = section.find_element(By.XPATH, "following-sibling::div[@class='table-tools'][1]")
    Select(
        tools.find_element(By.XPATH, ".//label[starts-with(normalize-space(), 'model')]/select")
    ).select_by_visible_text("spend v1")
    filtered = table_rows(browser, runs)
    assert filtered and {row[1] for row in filtered} == {"spend v1"}, filtered
    assert len(filtered) < len(before)
    Select(
        tools.find_element(By.XPATH, ".//label[starts-with(normalize-space(), 'model')]/select")
    ).select_by_visible_text("all")
    # Sort by rows: ascending, then descending.
    header = browser.find_element(By.XPATH, f"//table[@id='{runs}']//th[normalize-space()='rows']")
    header.find_element(By.TAG_NAME, "button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    ascending = [int(row[5].replace(",", "")) for row in table_rows(browser, runs)]
    assert ascending == sorted(ascending), ascending
    header.find_element(By.TAG_NAME, "button").click()
    assert header.get_attribute("aria-sort") == "descending"
    descending = [int(row[5].replace(",", "")) for row in table_rows(browser, runs)]
    assert descending == sorted(descending, reverse=True) and descending != ascending, descending
    # The free-text filter of the groups table.
    search = browser.find_element(By.CSS_SELECTOR, "input[aria-label='Filter group versions']")
    search.send_keys("churned")
    groups = table_rows(browser, "groups-table")
    assert groups and all(row[0] == "churned_30d" for row in groups), groups
    browser.save_screenshot(str(ARTIFACTS / "index-sorted-and-filtered.png"))


def test_the_health_page_from_the_browse_menu_flags_the_group_left_a_night_behind(
    project: Project, airflow: Airflow, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from churn_demo.project import project as demo

    publish_the_next_night(project, tmp_path / "raw", LEFT_BEHIND)
    # Judged a minute after the next night was due (a moment, not the clock: the page's form
    # takes it as `fti monitor health --now` does), every group holds it but the one left behind.
    due = demo.group(LEFT_BEHIND).fresh_by.due(NEXT_NIGHT)
    moment = f"{due + timedelta(minutes=1):%Y-%m-%dT%H:%M}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        # Logged in, from Airflow's own pages: Browse -> fti health shows the page in Airflow.
        log_in(browser, airflow, "/fti/health")
        browser.get(f"{airflow.url}/")
        browser.find_element(By.CSS_SELECTOR, "[aria-label='Browse']").click()
        browser.find_element(By.XPATH, "//a[normalize-space()='fti health']").click()
        wait_for(
            "the fti health view",
            lambda: browser.current_url == f"{airflow.url}/plugin/fti-health",
            60,
        )
        browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, "iframe[title='fti health']"))
        at = browser.find_element(By.NAME, "now")
        at.send_keys(Keys.CONTROL, "a")
        at.send_keys(moment)
        browser.find_element(By.XPATH, "//button[normalize-space()='Judge']").click()
        judged = f"Judged at {moment.replace('T', ' ')} UTC"
        wait_for(judged, lambda: judged in browser.find_element(By.TAG_NAME, "body").text, 60)

        rows = freshness_rows(browser)
        groups = {name: cells for name, cells in rows.items() if cells[0] != "predictions"}
        assert {name: cells[2] for name, cells in groups.items()} == {
            group.name: "stale" if group.name == LEFT_BEHIND else "fresh" for group in demo.groups
        }, groups
        # The group left behind: a night behind, flagged, with the backfill of that night.
        stale = groups[LEFT_BEHIND]
        assert stale[:5] == [
            "features",
            LEFT_BEHIND,
            "stale",
            DEMO_END.isoformat(),
            NEXT_NIGHT.isoformat(),
        ], stale
        assert (stale[7], stale[8]) == ("1", "v1"), stale  # days behind, the version holding it
        assert stale[9] == (
            "airflow backfill create --dag-id churn_feature_pipeline "
            f"--from-date {NEXT_NIGHT} --to-date {NEXT_NIGHT}"
        ), stale
        flag = status_flag(browser, LEFT_BEHIND)
        assert (
            flag.get_attribute("data-status"),
            flag.value_of_css_property("background-color"),
        ) == (
            "stale",
            "rgba(231, 0, 11, 1)",  # Airflow's "failed" red (red.600)
        )
        # A group that got the night: fresh, its new version, nothing to catch up.
        fresh = groups["customer_activity"]
        assert fresh[2:5] == ["fresh", NEXT_NIGHT.isoformat(), NEXT_NIGHT.isoformat()], fresh
        assert (fresh[8], fresh[9]) == ("v2", ""), fresh
        assert status_flag(browser, "customer_activity").get_attribute("data-status") == "fresh"
        heading = browser.find_element(By.ID, "freshness")
        browser.execute_script("arguments[0].scrollIntoView()", heading)  # for the screenshot
    finally:
        browser.switch_to.default_content()
        browser.save_screenshot(str(ARTIFACTS / "health-page-stale-group.png"))


def publish_the_next_night(project: Project, raw: Path, left_behind: str) -> None:
    """The demo's next day (its generator run a day further: the same bytes up to DEMO_END,
    then NEXT_NIGHT) through the feature pipeline for every group but ``left_behind``, which
    stays at version 1 ending DEMO_END."""
    from churn_demo.generate import generate
    from churn_demo.project import project as demo
    from fti.pipelines.features import run_features

    generate(raw, DEMO_START, NEXT_NIGHT, customers=DEMO_CUSTOMERS, seed=3)  # as demo_raw
    groups = [group.name for group in demo.groups if group.name != left_behind]
    settings = demo_settings(project.home, raw)
    published = run_features(NEXT_NIGHT, NEXT_NIGHT, "next-night", settings, groups)
    assert {group: p["version"] for group, p in published["published"].items()} == dict.fromkeys(
        groups, 2
    )


def freshness_rows(browser: Any) -> dict[str, list[str]]:
    """The health page's freshness table: each row's cell texts by the row's name."""

    return {row[1]: row for row in table_rows(browser, "freshness-table")}


def status_flag(browser: Any, name: str) -> Any:
    """The status of ``name``'s row in the freshness table, as the page marks it up."""
    from selenium.webdriver.common.by import By

    return browser.find_element(
        By.XPATH,
        f"//table[@id='freshness-table']/tbody/tr[td[2][normalize-space()='{name}']]/td[3]//span",
    )


def assert_refused_without_login(airflow: Airflow) -> None:
    """No session, no token: a script gets 401 from fti as from Airflow's API, a browser the
    login page (through Airflow's login entry, with the way back); no fti data either way."""

    def get(path: str, **headers: str) -> httpx.Response:
        return wait_for(
            f"an answer from {path}",
            lambda: httpx.get(f"{airflow.url}{path}", headers=headers, timeout=10),
            60,
            airflow.log,
        )

    assert get("/api/v2/dags").status_code == 401
    for path in ("/fti/", "/fti/models/churn/1", "/fti/openapi.json"):
        response = get(path)
        assert response.status_code == 401, (path, response.text)
        assert "customer_activity" not in response.text
    response = get("/fti/", accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.is_redirect, response
    assert response.headers["location"] == "/api/v2/auth/login?next=%2Ffti%2F"
    login = get(response.headers["location"])
    assert login.is_redirect and login.headers["location"] == "/auth/login?next=%2Ffti%2F"


def _dag_known(airflow: Airflow) -> bool:
    try:
        api_runs(airflow)
    except httpx.HTTPStatusError:
        return False
    return True
