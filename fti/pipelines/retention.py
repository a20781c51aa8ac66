"""The retention step: `fti gc` and the retention DAG's task.

``plan_retention`` says what a gc would remove (`fti gc --dry-run`), ``collect_garbage`` removes
it, store by store, in the order that keeps each one readable if it is killed at any point
(``fti.retention``: first the model registry, since a pruned model version frees the group
versions it read; then staging, whose old training sets name group versions too; then the
feature store). A gc that was killed is finished by the next one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from fti import ownership
from fti.db.engine import session_scope
from fti.definitions import Project
from fti.pipelines.runs import setup
from fti.retention import models, staging
from fti.retention import store as store_step
from fti.retention.plan import Plan, StagedFile, decide_groups, staging_cuts
from fti.retention.policy import Policy, read_policy
from fti.settings import Settings
from fti.store.recovery import fault_point
from fti.store.tagged import served_keys
from fti.store.versions import FeatureStore

log = logging.getLogger("fti.pipelines")


@dataclass(frozen=True)
class Theirs:
    """What other projects own (``fti.ownership``): a project's gc leaves their models, group
    versions and staged runs and builds to their own gc. What nobody has claimed yet (written
    before ownership was recorded) is any gc's."""

    models: frozenset[str]
    groups: frozenset[str]


def theirs(settings: Settings, project: Project) -> Theirs:
    with session_scope(settings.db_url) as session:
        owners = ownership.owners(session)
    others = {(kind, name) for (kind, name), owner in owners.items() if owner != project.name}
    return Theirs(
        frozenset(name for kind, name in others if kind == ownership.MODEL),
        frozenset(name for kind, name in others if kind in ownership.GROUP_KINDS),
    )


def _staging_plan(
    settings: Settings, policy: Policy, next_dates: dict[str, Any], others: Theirs
) -> tuple[list[StagedFile], dict[str, str]]:
    """The staged files a gc removes now, and per source which days it keeps and why."""
    _, project = setup(settings)
    root = settings.staging_path
    cuts = staging_cuts(project, next_dates, staging.newest_days(root, project), policy.rerun_days)
    if not policy.staging:
        return [], {}
    files = staging.settled(
        staging.validated_removals(root, cuts)
        + staging.build_removals(root, next_dates, policy.rerun_days, others.groups)
        + staging.run_removals(root, policy.keep_model_versions, others.models),
        policy.staging_min_age_hours,
        time.time(),
    )
    said = {
        source: f"days before {first} go ({why})" if first else f"every day is kept ({why})"
        for source, (first, why) in cuts.items()
    }
    return files, said


def plan_retention(settings: Settings | None = None) -> Plan:
    """What `fti gc` would remove now, and why the rest stays (nothing is changed).

    Raises:
        ConfigError: params.yaml's ``retention`` section is not valid.
    """
    settings, project = setup(settings)
    policy = read_policy(settings.params_file)
    others = theirs(settings, project)
    store = FeatureStore(settings.store_path)
    with session_scope(settings.db_url) as session:
        model_plan = models.plan_models(
            session, policy.keep_model_versions, settings.artifacts_path, others.models
        )
        files, cuts = _staging_plan(settings, policy, store_step.next_dates(session), others)
        named = store_step.named_versions(
            session,
            settings.staging_path,
            pruned={(row.name, row.version) for row in model_plan.pruned},
            removed={f.path for f in files},
        )
        groups = decide_groups(
            store_step.own_tags(store, others.groups), named, policy.keep_group_versions
        )
    return Plan(model_plan, groups, files, cuts, policy.remote)


def collect_garbage(settings: Settings | None = None) -> dict[str, Any]:
    """Remove what retention does not keep (params.yaml ``retention``); returns a summary.

    Order: the model registry (a pruned version frees the group versions it read), staging
    (an old training set frees the group versions it names; the newest ones, of runs that may
    be in flight, stay), then the feature store.

    Raises:
        ConfigError: params.yaml's ``retention`` section is not valid.
        StoreError: git or DVC failed in the feature store (what was done stays done; the next
            gc goes on from there).
    """
    settings, project = setup(settings)
    policy = read_policy(settings.params_file)
    others = theirs(settings, project)
    with session_scope(settings.db_url, write=True) as session:
        model_plan = models.prune(
            session, policy.keep_model_versions, settings.artifacts_path, others.models
        )
    fault_point("gc.pruned")  # the kill tests stop a gc here: rows marked, files not removed
    with session_scope(settings.db_url, write=True) as session:
        artifact_bytes = models.remove_artifacts(session, model_plan.artifacts)
    log.info(
        "retention: %d model version(s) pruned, %d artifact file(s) removed (%d bytes)",
        len(model_plan.pruned),
        len(model_plan.artifacts),
        artifact_bytes,
    )
    with session_scope(settings.db_url) as session:
        files, cuts = _staging_plan(settings, policy, store_step.next_dates(session), others)
    staging_bytes = staging.remove(files)
    log.info("retention: %d staged file(s) removed (%d bytes)", len(files), staging_bytes)
    store = FeatureStore(settings.store_path)
    groups = store_step.drop_versions(
        store,
        settings.db_url,
        settings.staging_path,
        policy.keep_group_versions,
        served_keys(project),
        others.groups,
        policy.remote,
    )
    log.info("retention: %d group version(s) dropped: %s", len(groups.dropped), groups.dropped)
    plan = Plan(model_plan, groups, files, cuts, policy.remote)
    return plan.summary() | {"artifact_bytes": artifact_bytes, "staging_bytes": staging_bytes}
