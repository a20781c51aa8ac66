"""Access per team: params.yaml's ``access.roles`` becomes every project DAG's access_control,
as the dag-processor hands it to the FAB auth manager (``sync_perm_for_dag``); without the
section the DAGs carry none, and a bad section fails the parse saying which key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PARAMS, REPO

DAGS = REPO / "dags"
OPERATE = {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read", "can_create"}}


def parse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, access: Any) -> Any:
    """The DAG folder parsed with the repository's params.yaml and ``access`` (None: none)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    params = yaml.safe_load(PARAMS.read_text())
    params.pop("access", None)
    if access is not None:
        params["access"] = access
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("FTI_PARAMS_FILE", str(path))
    return BundleDagBag(str(DAGS), bundle_path=DAGS)


def synced(dag: Any) -> Any:
    """What the dag-processor gives FAB's sync_perm_for_dag: the serialized DAG's."""
    from airflow.serialization.serialized_objects import DagSerialization, LazyDeserializedDAG

    return LazyDeserializedDAG(data=DagSerialization.to_dict(dag)).access_control


def test_the_listed_roles_operate_every_dag_of_the_project(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bag = parse(monkeypatch, tmp_path, {"roles": ["churn_team", "ml_ops"]})
    assert bag.import_errors == {}
    project = set(bag.dags)
    assert {
        "churn_feature_pipeline",
        "churn_training",
        "churn_inference",
        "churn_retention",
    } <= project
    for dag_id, dag in bag.dags.items():
        expected = {"churn_team": OPERATE, "ml_ops": OPERATE}
        assert dag.access_control == expected, dag_id
        assert synced(dag) == expected, dag_id
    # roles: [] is a grant to nobody, which Airflow syncs (revoking what teams held), not None.
    bag = parse(monkeypatch, tmp_path, {"roles": []})
    assert {dag_id: synced(bag.dags[dag_id]) for dag_id in project} == dict.fromkeys(project, {})
    # No section (the repository's params.yaml): no access_control, the global roles decide.
    bag = parse(monkeypatch, tmp_path, None)
    assert {dag_id: synced(dag) for dag_id, dag in bag.dags.items()} == dict.fromkeys(bag.dags)


def test_a_bad_section_is_an_import_error_naming_the_key(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bag = parse(monkeypatch, tmp_path, {"roles": ["churn_team"], "viewer": ["x"]})
    assert "churn_inference" not in bag.dags
    errors = {Path(path).name: error for path, error in bag.import_errors.items()}
    assert set(errors) == {
        "feature_pipeline.py",
        "training_pipeline.py",
        "batch_inference_pipeline.py",
        "retention.py",
    }
    for error in errors.values():
        assert "params.yaml access: unknown key(s) ['viewer']; known: ['roles']" in error
