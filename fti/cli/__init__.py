"""`fti`: the command line every pipeline step, listing and registry action is reachable from.

This module assembles the root app, :data:`app` (the ``fti`` console script and the CLI
reference of the docs site both load ``fti.cli:app``), from one module per command group:

- ``project.py``: ``fti init``, ``check``, ``demo``, ``new``, ``run``, ``airflow-env``,
  ``airflow``, ``sql``
- ``models.py``: ``fti train`` and ``fti models …``
- ``predictions.py``: ``fti infer``, ``fti serve`` and ``fti predictions …``
- ``gc.py``: ``fti gc`` (retention)
- ``features.py``, ``quarantine.py``, ``monitor.py``: ``fti features|quarantine|monitor …``

What the commands share lives in ``output.py`` (the console, tables and JSON, one-line errors
with exit code 1) and ``options.py`` (``--json``, dates, the settings, run ids). A command
imports what it needs (pandas, scikit-learn, the stores) inside its body, so ``fti --help``
stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from fti.cli import gc, models, predictions, project
from fti.cli.features import features_app
from fti.cli.models import models_app
from fti.cli.monitor import monitor_app
from fti.cli.output import OneLineErrors
from fti.cli.predictions import predictions_app
from fti.cli.quarantine import quarantine_app

app = typer.Typer(
    cls=OneLineErrors,
    help="fti: nightly feature, training and batch-inference pipelines.",
    no_args_is_help=True,
)


@app.callback()
def global_options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="FTI_DEBUG",
            help="Show the full traceback of an error (for bug reports) instead of one line.",
        ),
    ] = False,
) -> None:
    """Options of every command. An error prints one line per problem on stderr and exits
    with code 1; --debug (or FTI_DEBUG=1) prints its traceback instead."""
    # The project's folder (where `fti new` wrote the package and the .env that names it) is
    # the folder fti runs in: like `python -m`, fti imports from it, without `pip install -e`.
    # Last on the path, so it never shadows an installed module; `fti run` and `fti airflow`
    # hand the folder on to Airflow's processes (fti.runner.airflow_variables).
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.append(here)


# Top-level commands, in the order `fti --help` lists them.
app.command("init")(project.init)
app.command("check")(project.check)
app.command("demo")(project.demo)
app.command("new")(project.new)
app.command("run")(project.run)
app.command("airflow-env")(project.airflow_env)
app.command("airflow")(project.airflow)
app.command("train")(models.train)
app.command("infer")(predictions.infer)
app.command("serve")(predictions.serve)
app.command("sql")(project.sql)
app.command("gc")(gc.gc)

# Command groups: `fti features …` and so on.
app.add_typer(features_app, name="features")
app.add_typer(models_app, name="models")
app.add_typer(predictions_app, name="predictions")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(monitor_app, name="monitor")

__all__ = ["app"]
