"""Who may operate a project's DAGs: params.yaml's ``access`` section as Airflow's per-DAG
``access_control``.

```yaml
access:
  roles: [churn_team]   # auth manager roles that operate this project's DAGs
```

Each listed role may read, edit (pause, and change a model's champion from the fti pages) and
trigger (create runs of) every DAG of the project, and nothing more: ``GRANT``. Airflow's
dag-processor applies it when it parses the DAGs, with the FAB auth manager
(``sync_perm_for_dag``), and revokes what other roles (but Admin) held on those DAGs. No
section (or no ``roles`` key): no ``access_control``, Airflow's global roles decide alone;
``roles: []`` revokes every team's grants on the project's DAGs.

The DAG files import this module at parse time: it imports nothing but the standard library.
"""

from __future__ import annotations

from typing import Any

# What a listed role gets on each DAG of the project, in FAB's resource and action names: read
# and edit the DAG ("DAG:<id>"), read and create its runs ("DAG Run:<id>"). Triggering needs
# both edit on the DAG and create on its runs; promoting from the fti pages needs edit.
GRANT: dict[str, frozenset[str]] = {
    "DAGs": frozenset({"can_read", "can_edit"}),
    "DAG Runs": frozenset({"can_read", "can_create"}),
}
KEYS = ("roles",)


def access_control(
    section: Any, where: str = "params.yaml"
) -> dict[str, dict[str, set[str]]] | None:
    """The ``access_control`` of every DAG of the project, from params.yaml's ``access``.

    Args:
        section: the ``access`` section as read from the file (None when there is none).
        where: the file, as the errors name it.

    Returns:
        ``{role: GRANT}`` per listed role (``{}`` for ``roles: []``), or None when the section
        or its ``roles`` key is absent.

    Raises:
        ValueError: the section is not a mapping, has an unknown key, or ``roles`` is not a
            list of role names.
    """
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ValueError(
            f"{where} access: expected a mapping such as {{roles: [churn_team]}}, got {section!r}"
        )
    unknown = sorted(str(key) for key in set(section) - set(KEYS))
    if unknown:
        raise ValueError(f"{where} access: unknown key(s) {unknown}; known: {list(KEYS)}")
    roles = section.get("roles")
    if roles is None:
        return None
    if not isinstance(roles, list):
        raise ValueError(
            f"{where} access.roles: expected a list of role names such as [churn_team], "
            f"got {roles!r}"
        )
    for role in roles:
        if not isinstance(role, str) or not role.strip() or role != role.strip():
            raise ValueError(
                f"{where} access.roles: {role!r} is not a role name; write the name of a "
                "role of Airflow's auth manager, e.g. churn_team"
            )
    return {role: {resource: set(actions) for resource, actions in GRANT.items()} for role in roles}
