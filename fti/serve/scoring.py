"""Score entities on request: the online store's rows through batch inference's functions.

For each group a served model reads, the rows of the requested entities come from the online
store (``fti.online.store.read_online``); they are turned into the dtypes the store published
(as batch reads them from Parquet), joined by ``fti.inference.features.model_rows`` and scored
by ``fti.inference.score.score_rows``: the functions batch inference uses, so a served score
equals the batch score of the same rows. The spine group's row says which date an entity is
scored as of (its ``feature_date``); another group's row joins when it is at most the model's
TTL for that group older than that date (``fti.inference.features.within_ttl``, the rule batch
applies), else its features are null, as in batch and training. (The online store holds only
each entity's newest row: when another group is newer than the spine, its newest row is used.)

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

import pandas as pd
import pyarrow as pa

from fti.errors import SkewError, StoreError
from fti.inference.features import model_rows, within_ttl
from fti.inference.score import as_records, score_rows
from fti.inference.skew import check_features
from fti.online.store import OnlineRows, online_state, parse_keys, read_online
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
    reads = [_read_group(served, db_url, group, unique) for group in served.groups]
    versions = {g.group: r.version for g, r in zip(served.groups, reads, strict=True)}
    spine = served.groups[0]
    spine_rows = reads[0].rows
    # Another group's row joins only when at most its TTL older than the spine row, as in batch.
    held = [spine_rows] + [
        within_ttl(r.rows, spine_rows[DATE_COLUMN], g.ttl_days)
        for g, r in zip(served.groups[1:], reads[1:], strict=True)
    ]
    position = {str(key): i for i, key in enumerate(spine_rows.index)}
    # A key as the store holds it ("0494" is 494), as read_online looked it up.
    stored = parse_keys(unique, reads[0].schema.field(spine.key).type)
    row_of = {e: position[stored[e]] for e in unique if stored.get(e) in position}
    dates = [_dates(rows) for rows in held]

    answers: dict[str, dict[str, Any]] = {}
    scored: list[str] = []
    ages: list[int] = []
    for entity in unique:
        if entity not in row_of:
            answers[entity] = {"entity": entity, "status": "not_found"}
            continue
        key = spine_rows.index[row_of[entity]]
        stale = any(
            group_dates.get(key) is not None
            and feature_age(group_dates[key], today) > group.ttl_days
            for group, group_dates in zip(served.groups, dates, strict=True)
        )
        feature_date = dates[0][key]
        lineage = {
            "feature_versions": versions,
            "feature_date": feature_date.isoformat(),
            "stale": stale,
        }
        if stale and refuse_stale:
            answers[entity] = {"entity": entity, "status": "stale", **lineage}
            continue
        answers[entity] = {"entity": entity, **lineage}
        scored.append(entity)
        ages.append(feature_age(feature_date, today))

    if scored:
        frames = [
            _as_published(rows, r.schema, g, [row_of[e] for e in scored] if i == 0 else None)
            for i, (g, r, rows) in enumerate(zip(served.groups, reads, held, strict=True))
        ]
        rows = model_rows(frames[0].reset_index(), frames[1:], spine.key, served.features)
        records = as_records(score_rows(served.task, served.estimator, rows, served.features))
        for entity, record in zip(scored, records, strict=True):
            lineage = answers[entity]
            answers[entity] = {
                "entity": entity,
                **record,
                **{k: v for k, v in lineage.items() if k != "entity"},
            }
    counts = {
        "scored": len(scored),
        "not_found": sum(1 for a in answers.values() if a.get("status") == "not_found"),
        "stale_refused": sum(1 for a in answers.values() if a.get("status") == "stale"),
    }
    return Scored([answers[e] for e in entities], ages, counts)


def _read_group(
    served: Served, db_url: str, group: GroupFeatures, entities: list[str]
) -> OnlineRows:
    """The group's online rows of ``entities``, after the skew guard passed on its schema."""
    read = read_online(db_url, group.group, entities, group.columns)
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


def _dates(rows: pd.DataFrame) -> dict[Any, date]:
    return dict(zip(rows.index, rows[DATE_COLUMN], strict=True))


def _as_published(
    rows: pd.DataFrame, schema: pa.Schema, group: GroupFeatures, take: list[int] | None
) -> pd.DataFrame:
    """``rows`` (optionally the rows at positions ``take``) with the published dtypes, as batch
    reads them from Parquet, indexed by the entity key."""
    if take is not None:
        rows = rows.iloc[take]
    names = [group.key, *group.columns]
    table = pa.Table.from_pandas(
        rows.reset_index()[names],
        schema=pa.schema([schema.field(name) for name in names]),
        preserve_index=False,
    )
    return table.to_pandas().set_index(group.key)


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
