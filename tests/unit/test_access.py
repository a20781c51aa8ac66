"""params.yaml's ``access`` section as Airflow's per-DAG access_control (fti.access)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fti.access import access_control

# What each listed role gets on every DAG of the project: read and edit it, read and create its
# runs (FAB's resource and action names), nothing else.
OPERATE = {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read", "can_create"}}


def test_each_listed_role_may_read_edit_and_trigger_and_nothing_more() -> None:
    grants = access_control({"roles": ["churn_team", "ops"]})
    assert grants == {"churn_team": OPERATE, "ops": OPERATE}
    grants["churn_team"]["DAGs"].add("can_delete")  # each DAG gets a copy of its own
    assert access_control({"roles": ["churn_team"]}) == {"churn_team": OPERATE}


@pytest.mark.parametrize("section", [None, {}, {"roles": None}])
def test_no_section_or_no_roles_leaves_access_to_the_global_roles(section: Any) -> None:
    assert access_control(section) is None


def test_an_empty_list_of_roles_grants_nothing_and_makes_airflow_revoke() -> None:
    assert access_control({"roles": []}) == {}  # not None: Airflow syncs it, revoking grants


@pytest.mark.parametrize(
    ("section", "error"),
    [
        (["churn_team"], "params.yaml access: expected a mapping such as {roles: [churn_team]}"),
        (
            {"roles": ["churn_team"], "viewers": ["x"]},
            "params.yaml access: unknown key(s) ['viewers']; known: ['roles']",
        ),
        ({"roles": "churn_team"}, "params.yaml access.roles: expected a list of role names"),
        ({"roles": ["churn_team", 7]}, "params.yaml access.roles: 7 is not a role name"),
        ({"roles": [""]}, "params.yaml access.roles: '' is not a role name"),
        ({"roles": [" churn_team"]}, "params.yaml access.roles: ' churn_team' is not a role"),
        ({"roles": [{"churn_team": ["can_read"]}]}, "{'churn_team': ['can_read']} is not a role"),
    ],
)
def test_a_bad_section_is_one_line_naming_the_key(section: Any, error: str) -> None:
    with pytest.raises(ValueError) as raised:
        access_control(section)
    assert error in str(raised.value)
    assert "\n" not in str(raised.value)


def test_fti_check_reports_a_bad_section_naming_the_file(tmp_path: Path) -> None:
    from fti.checks import access_problems

    params = tmp_path / "params.yaml"
    params.write_text("queues: {features: features}\naccess:\n  roles: [churn_team, 7]\n")
    assert access_problems(params) == [
        f"{params}: access.roles: 7 is not a role name; write the name of a role of Airflow's "
        "auth manager, e.g. churn_team"
    ]
    params.write_text("access:\n  roles: [churn_team]\n")
    assert access_problems(params) == []
