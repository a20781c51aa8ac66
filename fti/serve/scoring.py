"""Score entities on request: the online store's rows through batch inference's functions.

The rows of the requested entities of every group a served model reads come from the online
store in one statement (``fti.online.store.read_held``); they are decoded straight to Arrow
with the types the store published (as batch reads them from Parquet), joined row-wise by
``fti.inference.features.entity_model_rows`` (the row-wise twin of batch's ``within_ttl`` +
``model_rows``, property-tested to agree with them) into one record batch in the trained column
order, and scored by ``fti.inference.score.score_rows``, the function batch inference uses: a
served score equals the batch score of the same rows. No pandas before the model's input: a
request of a few entities costs little more than the model's own ``predict_proba``. The spine
group's row says which date an entity is scored as of (its ``feature_date``); another group's
row joins when it is at most the model's TTL for that group older than that date
(``features.joins``, the rule batch applies), else its features are null, as in batch and
training. (The online store holds only each entity's newest row: when another group is newer
than the spine, its newest row is used.)

Staleness. Features of date D are computed and published the night after D, so on day D + 1
they are as fresh as features can be. A group's row is *stale* when
``today - feature_date - 1 day`` exceeds the model's TTL for the group (0 days, the default:
only yesterday's rows are fresh; batch scoring on D uses the spine's rows of D and the other
groups' rows at most their TTL older). An entity is stale when any of its rows is. Stale
entities are scored with ``stale: true``, or, with ``FTI_SERVE_STALE=refuse``, answered with
``status: stale`` and no score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from fti.errors import SkewError, StoreError
from fti.inference.features import EntityRows, entity_model_rows, joined_positions
from fti.inference.score import as_records, score_rows
from fti.inference.skew import check_features
from fti.online.store import HeldRows, online_state, read_held
from fti.serve.models import GroupFeatures, Served

DATE_COLUMN = "feature_date"


@dataclass(frozen=True)
class Scored:
    """The answer of one request: one dict per requested entity (in the request's order), and
    for the metrics the age in days of each scored entity's spine row."""

    predictions: list[dict[str, Any]]
    ages: list[int]
    counts: dict[str, int]


def feature_age(feature_date: date, today: date) -> int:
    """Days since ``feature_date``'s features could first be served (the night after it)."""
    return (today - feature_date - timedelta(days=1)).days


def score_entities(
    served: Served, db_url: str, entities: Sequence[str], today: date, refuse_stale: bool
) -> Scored:
    """Score ``entities`` (their keys as text) with ``served``.

    Raises:
        SkewError: the online store does not hold the model's features with the trained dtypes.
        StoreError: the online store holds nothing of one of the model's groups.
    """
    unique = list(dict.fromkeys(entities))
    held = read_held(db_url, [g.group for g in served.groups], unique)
    reads = [_checked(served, group, held[group.group]) for group in served.groups]
    versions = {g.group: r.version for g, r in zip(served.groups, reads, strict=True)}
    spine_read = reads[0]
    # A key as the store holds it ("0494" is 494), as read_online looks it up.
    found = [e for e in unique if spine_read.typed.get(e) in spine_read.rows]
    spine = _entity_rows(spine_read, [spine_read.typed[e] for e in found], served.groups[0])
    others = [
        _entity_rows(r, list(r.rows), g) for g, r in zip(served.groups[1:], reads[1:], strict=True)
    ]
    # Another group's row joins only when at most its TTL older than the spine row, as in batch.
    joined = [joined_positions(spine, other) for other in others]

    answers: dict[str, dict[str, Any]] = {e: {"entity": e, "status": "not_found"} for e in unique}
    scored: list[int] = []  # positions in ``found``
    ages: list[int] = []
    for i, entity in enumerate(found):
        feature_date = spine.dates[i]
        stale = _stale(spine, i, today) or any(
            _stale(other, at[i], today) for other, at in zip(others, joined, strict=True)
        )
        lineage = {
            "feature_versions": versions,
            "feature_date": feature_date.isoformat(),
            "stale": stale,
        }
        if stale and refuse_stale:
            answers[entity] = {"entity": entity, "status": "stale", **lineage}
            continue
        answers[entity] = {"entity": entity, **lineage}
        scored.append(i)
        ages.append(feature_age(feature_date, today))

    if scored:
        spine_key = served.groups[0].key
        rows = entity_model_rows(
            spine, others, spine_key, spine_read.schema.field(0).type, served.features
        )
        if len(scored) < len(found):
            rows = rows.take(pa.array(scored, pa.int64()))
        records = as_records(score_rows(served.task, served.estimator, rows, served.features))
        for i, record in zip(scored, records, strict=True):
            entity = found[i]
            answers[entity] = {"entity": entity, **record, **_without_entity(answers[entity])}
    counts = {
        "scored": len(scored),
        "not_found": len(unique) - len(found),
        "stale_refused": len(found) - len(scored),
    }
    return Scored([answers[e] for e in entities], ages, counts)


def _stale(rows: EntityRows, at: int | None, today: date) -> bool:
    """Whether the row at ``at`` (None: no row joined) is older than the group's TTL."""
    return at is not None and feature_age(rows.dates[at], today) > rows.ttl_days


def _without_entity(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "entity"}


def _entity_rows(read: HeldRows, stored: list[str], group: GroupFeatures) -> EntityRows:
    """The rows of the ``stored`` keys of ``read``, the model's columns of ``group`` typed as
    published (decoded straight to Arrow)."""
    return EntityRows(
        keys=[read.key_value(k) for k in stored],
        dates=[read.rows[k][0] for k in stored],
        table=read.decode(stored, group.columns),
        ttl_days=group.ttl_days,
    )


def _checked(served: Served, group: GroupFeatures, read: HeldRows) -> HeldRows:
    """``read``, after the skew guard passed on its schema (once per online version)."""
    if read.version is None:
        raise StoreError(
            f"the online store holds nothing of {group.group}, which {served.label} reads; "
            "run `fti features materialise`"
        )
    where = (group.group, read.version)
    if where not in served.checked:
        try:
            check_features(
                served.label,
                group.features,
                _dtypes(read.schema),
                f"online store {group.group} v{read.version}",
            )
            served.checked[where] = None
        except SkewError as exc:
            served.checked[where] = str(exc)
    problem = served.checked[where]
    if problem is not None:
        raise SkewError(problem)
    return read


def check_online(served: Served, db_url: str) -> dict[str, int]:
    """The online version of each group ``served`` reads, after the skew guard passed on each.

    Raises:
        StoreError: a group has nothing in the online store.
        SkewError: a group's online schema lacks a trained feature or has another dtype.
    """
    versions = {}
    for group in served.groups:
        state = online_state(db_url, group.group)
        if state is None or state.get("version") is None:
            raise StoreError(
                f"the online store holds nothing of {group.group}, which {served.label} reads; "
                "run `fti features materialise`"
            )
        check_features(
            served.label,
            group.features,
            _dtypes(state["schema"]),
            f"online store {group.group} v{state['version']}",
        )
        versions[group.group] = int(state["version"])
    return versions


def _dtypes(schema: Any) -> dict[str, str]:
    if isinstance(schema, pa.Schema):
        return {f.name: str(f.type) for f in schema}
    if isinstance(schema, dict):
        return {str(k): str(v) for k, v in schema.items()}
    return {str(f["name"]): str(f["dtype"]) for f in schema}
