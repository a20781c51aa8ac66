"""Scoring: `fti infer` (batch) and `fti serve` (real time), registered on the root app in
``fti/cli/__init__.py``, and `fti predictions …`, the prediction runs they leave."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from fti.cli import output
from fti.cli.options import JsonFlag, cli_run_id, parse_date, settings
from fti.errors import FtiError

predictions_app = typer.Typer(help="Prediction runs and tables.", no_args_is_help=True)


def infer(
    model: Annotated[str, typer.Option(help="Model name from the project.")],
    date_: Annotated[str, typer.Option("--date", help="As-of date (YYYY-MM-DD).")],
    version: Annotated[str, typer.Option(help="Model version or alias.")] = "champion",
    feature_version: Annotated[
        str, typer.Option(help="Version of the model's first feature group, or 'latest'.")
    ] = "latest",
    as_json: JsonFlag = False,
) -> None:
    """Batch inference for one date -> a prediction run (replaces that date's slice)."""
    from fti.pipelines.inference import score_batch

    s = settings()

    def run() -> dict[str, Any]:
        return score_batch(
            model, parse_date(date_), cli_run_id("infer"), version, feature_version, s
        )

    output.emit(run(), as_json)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    insecure_no_token: Annotated[
        bool,
        typer.Option(
            "--insecure-no-token",
            help="Serve without authentication when FTI_SERVE_TOKEN is not set (trusted networks only).",
        ),
    ] = False,
    now: Annotated[
        str | None,
        typer.Option(
            help="The day staleness is judged on: clock (today, UTC), data (the day after the "
            "newest raw date: a project on past data) or an ISO date. Default: params.yaml's "
            "monitor.now, else clock."
        ),
    ] = None,
) -> None:
    """Real-time scoring service: POST /models/{name}/predict; /health, /ready, /metrics.

    It scores with the alias's model (champion by default), following promotions and
    rollbacks."""
    # One OpenMP thread per request, before scikit-learn loads its runtime: a one-row
    # predict_proba across every core waits for busy cores (p99 876 ms vs 44 ms with one thread,
    # benchmarks/bench_serving.py); more throughput comes from more processes (--scale).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import uvicorn

    from fti.monitoring.clock import serving_day
    from fti.pipelines.runs import setup
    from fti.serve.app import create_app
    from fti.serve.config import serve_config

    config = serve_config()
    if config.token is None and not insecure_no_token:
        raise FtiError(
            "FTI_SERVE_TOKEN is not set: set it to a long random secret (e.g. `openssl rand "
            "-hex 32`), or pass --insecure-no-token to serve without authentication"
        )
    s, project = setup(settings())
    try:
        today = serving_day(now, s, project)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--now") from exc
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    logging.getLogger("fti.serve").info(
        "staleness judged on %s (now: %s)", today(), now or "params.yaml monitor.now"
    )
    uvicorn.run(create_app(s, config, project, today), host=host, port=port, log_level="info")


@predictions_app.command("runs")
def predictions_runs(as_json: JsonFlag = False, limit: int = 50) -> None:
    """Prediction runs with model and feature versions and row counts, newest first."""
    from fti.db.engine import session_scope
    from fti.inference.runs import list_runs

    with session_scope(settings().db_url) as session:
        rows = list_runs(session, limit)
    output.emit(
        rows,
        as_json,
        [
            "run_id",
            "model_name",
            "model_version",
            "feature_version",
            "as_of_date",
            "status",
            "row_count",
            "finished_at",
            "warnings",
        ],
    )
