"""The DAGs of the churn demo's manifest, parsed once per module, and a helper that runs one
with dag.test()."""

from __future__ import annotations

from datetime import date
from typing import Any

import pendulum
import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def dags():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.utils import db

    db.initdb()
    bag = BundleDagBag(str(REPO / "dags"), bundle_path=REPO / "dags")
    assert bag.import_errors == {}
    for dag in bag.dags.values():  # a failing task should fail the test now, not after retry delays
        for task in dag.tasks:
            task.retries = 0
    return bag.dags


def run(dag, day: date, expect: str = "success", **conf: Any):  # type: ignore[no-untyped-def]
    defaults = dag.params.dump()  # dag.test() merges conf into the DAG's params in place
    from fti_common import without_deadline_alerts  # apache/airflow#73428

    dag_run = without_deadline_alerts(dag).test(
        logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"),
        run_conf={**defaults, **conf},
    )
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == expect, states
    return dag_run
