"""What a team writes to bring its own data: entities, sources, feature groups, label groups,
models, collected in one ``Project``.

The shape follows Feast's feature repository (entities, sources, feature views) with labels
stored like features (Hopsworks): a label group is published to the feature store as a
versioned group, and a model names its label group and its features from one or more feature
groups. fti's core runs any ``Project``; the churn demo (``churn_demo.project``) is one of them.

A project may also read groups another project builds (``ReadGroup``, ``ReadLabelGroup``):
declared by name, entity, owner and the columns it uses with their types, without a build.
``Project.groups`` are the groups it builds (what its pipelines publish and its monitors
watch), ``Project.readable_groups`` those and the ones it reads (what its models may use).

``load_project`` imports ``module:attribute`` and checks the definition (``check_project``):
every problem is one line naming the object. ``fti check`` prints them, or what the project
defines, and writes the manifest the DAG files are generated from (``fti.manifest``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fti.errors import ConfigError, DefinitionError

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # names become store paths, git tags, DAG ids
TASKS = ("binary", "multiclass", "regression")
FORMATS = ("csv", "parquet")
MISSING_DAY = ("fail", "empty")
ENTITY_DTYPES = ("int64", "string")
LABEL_DATE = "label_date"  # the date column a label group's build returns
LABEL = "label"  # the value column a label group's build returns
FRESH_AT = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

# build(sources, dates): ``sources`` maps each of the group's source names to its validated
# events (the days fti hands over), ``dates`` the dates to compute.
BuildFunction = Callable[[Mapping[str, "pd.DataFrame"], Sequence[date]], "pd.DataFrame"]


@dataclass(frozen=True)
class Entity:
    """What rows are about: ``key`` is its column in every group, ``dtype`` int64 or string.

    A single series (one station, one store) is an entity with one key value.
    """

    name: str
    key: str
    dtype: Literal["int64", "string"] = "int64"


@dataclass(frozen=True)
class Source:
    """Raw input files, one per logical date: ``<raw>/<name>/<YYYY-MM-DD>.<format>``.

    ``schema``: pandera rules; columns with ``coerce=True`` are parsed from text to their type
    and every row rule is checked (a bad row is quarantined with its rule). ``time_column``
    must fall inside the logical date in ``timezone`` (the zone the files are written in; times
    without an offset are read in it, and every time is stored in UTC). ``id_column``, when
    given, must be unique: within a file, and across days (an id another day accepted is
    quarantined as its duplicate); ``unique_within_days`` bounds the days compared to those at
    most that many days apart (None: every day; the nightly check reads each compared day's
    id hashes, so a long history of big days is cheaper with a window). ``missing_day``: ``fail`` (the default: a day without a file fails
    the run) or ``empty`` (a day with no rows is a normal day).
    """

    name: str
    schema: pa.DataFrameSchema
    time_column: str
    id_column: str | None = None
    format: Literal["csv", "parquet"] = "csv"
    timezone: str = "UTC"
    missing_day: Literal["fail", "empty"] = "fail"
    unique_within_days: int | None = None

    @property
    def columns(self) -> list[str]:
        return list(self.schema.columns)


@dataclass(frozen=True)
class Freshness:
    """When the data of a date D is due: by ``at`` (``HH:MM``, UTC) on D + ``days_after``.

    ``FeatureGroup(..., fresh_by=Freshness(days_after=1, at="03:00"))``: the version holding
    D is published by 03:00 UTC on D+1. On a model: its predictions for D; on a label group:
    the labels the night of D publishes (those of D - ``horizon_days``). Undeclared, the
    default is the end of D+1. ``fti monitor health`` flags what is late.
    """

    days_after: int = 1
    at: str = "23:59"

    def due(self, day: date) -> datetime:
        """When the data of ``day`` is due (UTC)."""
        return datetime.combine(day + timedelta(days=self.days_after), self.time_of_day, UTC)

    def expected_date(self, now: datetime) -> date:
        """The newest date whose data is due at ``now`` (a naive ``now`` is read as UTC)."""
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        at = self.time_of_day
        shifted = now - timedelta(hours=at.hour, minutes=at.minute)
        return shifted.date() - timedelta(days=self.days_after)

    @property
    def time_of_day(self) -> time:
        return time.fromisoformat(self.at)

    def problems(self, where: str) -> list[str]:
        """What is wrong with it, one line each naming ``where`` (empty when sound)."""
        problems = []
        if not isinstance(self.days_after, int) or self.days_after < 0:
            problems.append(
                f"{where}: fresh_by days_after {self.days_after!r} must be a whole number "
                "of days >= 0"
            )
        if not isinstance(self.at, str) or not FRESH_AT.match(self.at):
            problems.append(
                f"{where}: fresh_by at {self.at!r} is not a UTC time of day as 'HH:MM' "
                "(00:00 to 23:59)"
            )
        return problems


DEFAULT_FRESHNESS = Freshness()


@dataclass(frozen=True)
class FeatureGroup:
    """A table keyed by (entity, date), computed by the team's ``build`` from its sources.

    ``build(sources, dates)`` returns one row per entity per date it has features for: the
    entity's key column, ``feature_date`` and the ``features`` columns (declared here, so a
    model's features are checked before anything runs). For a date D it may use events of
    [D - lookback_days + 1, D] only; fti checks that a range build and the same dates built one
    day at a time agree, and refuses to publish when they do not (the build peeked ahead).
    A build may be handed a shard of the entities: it must not assume it sees every one.
    ``fresh_by``: when the version holding a date is due (``Freshness``; default end of D+1).
    ``partition``: how the store files the group, ``"day"`` (a Parquet file a date) or
    ``"month"`` (a file a month, for a group whose days hold few rows: a one-row-a-day
    series keeps 12 files a year, not 365). Readers see dates either way. Changed on a group
    already published, its next publish rewrites every date the new way.
    """

    name: str
    entity: Entity
    sources: Sequence[Source]
    features: Sequence[str]
    build: BuildFunction
    lookback_days: int = 1
    description: str = ""
    fresh_by: Freshness = DEFAULT_FRESHNESS
    partition: str = "day"

    kind = "features"  # the catalog's word for it (feature_versions.kind)
    noun = "feature group"  # how messages name it
    horizon = 0  # days after a date that computing it may see


@dataclass(frozen=True)
class LabelGroup:
    """Labels stored like features: one row per (entity, label date) with a ``label`` value.

    ``build(sources, dates)`` returns the entity's key column, ``label_date`` and ``label``
    (binary, class or number; null when it cannot be known, never a made-up 0). A label for D
    needs events up to D + ``horizon_days``, so the feature pipeline of date T publishes the
    labels of T - horizon_days, handing the build events of
    [D - lookback_days + 1, D + horizon_days] and no later. ``fresh_by`` is when the labels
    the night of D publishes (those of D - horizon_days) are due (``Freshness``).
    ``partition``: ``"day"`` or ``"month"``, as for a ``FeatureGroup``.
    """

    name: str
    entity: Entity
    sources: Sequence[Source]
    horizon_days: int
    build: BuildFunction
    lookback_days: int = 1
    description: str = ""
    fresh_by: Freshness = DEFAULT_FRESHNESS
    partition: str = "day"

    kind = "labels"
    noun = "label group"

    @property
    def horizon(self) -> int:
        return self.horizon_days


@dataclass(frozen=True)
class ReadGroup:
    """A feature group another project builds and this one reads, without its build.

    ``owner``: the name of the project that builds and publishes it (not this one).
    ``features``: each column this project uses, mapped to its type as the store's catalog
    records it (Arrow type names: ``int64``, ``double``, ``string``, ``bool``,
    ``timestamp[us, tz=UTC]``; `fti features show GROUP` lists them; pandas aliases such as
    ``float64`` are read as their Arrow type). `fti check` compares them with the newest
    published version. ``lookback_days``: the owner's look-back (training leaves out the
    first days of the group, which warm up); ``fresh_by``: when the owner publishes a date.
    """

    name: str
    entity: Entity
    owner: str
    features: Mapping[str, str]
    lookback_days: int = 1
    description: str = ""
    fresh_by: Freshness = DEFAULT_FRESHNESS

    kind = "features"
    noun = "feature group"
    horizon = 0
    sources: ClassVar[Sequence[Source]] = ()  # built elsewhere: none of this project's sources

    @property
    def declared(self) -> dict[str, str]:
        """The columns this project reads with their declared types (Arrow names)."""
        return {name: arrow_type_name(kind) for name, kind in self.features.items()}


@dataclass(frozen=True)
class ReadLabelGroup:
    """A label group another project builds and this one reads, usable as a ``Model.label``.

    ``owner``: the project that publishes it; ``horizon_days``: its horizon (the owner's: the
    label of D is known D + horizon_days); ``label``: the type of its ``label`` column when
    declared (Arrow name, e.g. ``bool``, ``double``), compared by `fti check`.
    """

    name: str
    entity: Entity
    owner: str
    horizon_days: int
    label: str | None = None
    lookback_days: int = 1
    description: str = ""
    fresh_by: Freshness = DEFAULT_FRESHNESS

    kind = "labels"
    noun = "label group"
    sources: ClassVar[Sequence[Source]] = ()

    @property
    def horizon(self) -> int:
        return self.horizon_days

    @property
    def declared(self) -> dict[str, str]:
        return {} if self.label is None else {LABEL: arrow_type_name(self.label)}


def arrow_type_name(name: str) -> str:
    """``name`` as the catalog writes the type: an alias (``float64``, ``str``) as its Arrow
    name (``double``, ``string``), any other name as it is."""
    import pyarrow as pa

    try:
        return str(pa.type_for_alias(name))
    except (ValueError, TypeError):
        return str(name)


@dataclass(frozen=True)
class Model:
    """A model: its label group, task, metric, estimator and features from one or more groups.

    ``features``: ``"group.column"`` or ``"group.*"``; the first group named is the model's
    *spine*: training keeps the label rows that have a row of it, and scoring scores every
    entity it has on the date. Each group joins point in time on the entity: the newest row at
    or before the label (or scoring) date, at most ``ttl[group]`` days old (0, the default:
    the same date). ``metric``: a scikit-learn scorer name or a loss (``log_loss``,
    ``brier_score_loss``, ``mean_squared_error``, ...), see ``fti.training.metrics``.
    ``estimator(params, features)`` builds the unfitted estimator from params.yaml's
    ``train.<model>`` section and the feature column names.
    Training uses label dates every ``label_every_days`` over ``training_days`` before the
    newest matured label, the newest ``holdout_share`` of them as holdout; fewer than
    ``min_train_rows`` / ``min_holdout_rows`` rows is an error, not a useless model. Past
    ``max_training_rows`` label rows (None: no limit), training uses a sample of the entities
    (a stable hash of the key, the same in every rebuild) with every label date of theirs, so
    its memory follows that bound, not the entity base.
    ``fresh_by``: when the predictions for a date are due (``Freshness``; default end of D+1).
    """

    name: str
    label: LabelGroup | ReadLabelGroup
    task: Literal["binary", "multiclass", "regression"]
    metric: str
    features: Sequence[str]
    estimator: Callable[[dict[str, Any], list[str]], Any]
    ttl: Mapping[str, int] = field(default_factory=dict)
    training_days: int = 120
    label_every_days: int = 7
    holdout_share: float = 0.25
    min_train_rows: int = 50
    min_holdout_rows: int = 20
    max_training_rows: int | None = 2_000_000
    description: str = ""
    fresh_by: Freshness = DEFAULT_FRESHNESS


@dataclass(frozen=True)
class ModelFeature:
    """One resolved feature of a model: its group and column."""

    group: str
    name: str


@dataclass(frozen=True)
class Project:
    """Everything a team declares. ``start_date``: the first logical date the DAGs may run.

    ``reads``: groups other projects build that this one's models use (``ReadGroup``,
    ``ReadLabelGroup``)."""

    name: str
    start_date: date | str
    entities: Sequence[Entity]
    sources: Sequence[Source]
    feature_groups: Sequence[FeatureGroup]
    labels: Sequence[LabelGroup]
    models: Sequence[Model]
    reads: Sequence[ReadGroup | ReadLabelGroup] = ()

    @property
    def first_date(self) -> date:
        return (
            self.start_date
            if isinstance(self.start_date, date)
            else date.fromisoformat(str(self.start_date))
        )

    # ---- look-ups (each raises DefinitionError naming what the project does define) ----------
    def source(self, name: str) -> Source:
        return _find(self.sources, name, "source")

    def feature_group(self, name: str) -> FeatureGroup:
        return _find(self.feature_groups, name, "feature group")

    def label(self, name: str) -> LabelGroup:
        return _find(self.labels, name, "label group")

    def model(self, name: str) -> Model:
        return _find(self.models, name, "model")

    def group(self, name: str) -> FeatureGroup | LabelGroup:
        """A feature group or a label group: both are groups of the feature store."""
        return _find([*self.feature_groups, *self.labels], name, "feature or label group")

    @property
    def groups(self) -> list[FeatureGroup | LabelGroup]:
        """The groups this project builds and publishes (not those it reads)."""
        return [*self.feature_groups, *self.labels]

    @property
    def readable_groups(self) -> list[AnyGroup]:
        """The groups its models may use: those it builds, then those it reads."""
        return [*self.groups, *self.reads]

    def readable_group(self, name: str) -> AnyGroup:
        """A group it builds or reads, feature or label group."""
        return _find(self.readable_groups, name, "feature or label group (built or read)")

    def readable_feature_group(self, name: str) -> FeatureGroup | ReadGroup:
        """A feature group it builds or reads."""
        groups = [g for g in self.readable_groups if isinstance(g, FeatureGroup | ReadGroup)]
        return _find(groups, name, "feature group (built or read)")

    def model_features(
        self, model: Model, chosen: Sequence[str] | None = None
    ) -> list[ModelFeature]:
        """The model's features (or ``chosen``, same syntax) resolved to (group, column)."""
        return resolve_features(self, model, chosen if chosen is not None else model.features)

    def model_groups(self, model: Model, chosen: Sequence[str] | None = None) -> list[str]:
        """The feature groups a model reads, spine first."""
        return list(dict.fromkeys(f.group for f in self.model_features(model, chosen)))


AnyGroup = FeatureGroup | LabelGroup | ReadGroup | ReadLabelGroup


def _find(items: Sequence[Any], name: str, kind: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    known = ", ".join(i.name for i in items) or "none"
    raise DefinitionError(
        f"this project defines no {kind} {name!r}; it has: {known} (after changing the "
        "definitions, run `fti check` so that the DAGs follow)"
    )


def resolve_features(project: Project, model: Model, refs: Sequence[str]) -> list[ModelFeature]:
    """``group.column`` / ``group.*`` references to (group, column), in order, without repeats.

    A bare column name is accepted when exactly one of the model's groups has it (the
    training form lists bare names).
    """
    groups = {g.name: g for g in project.readable_groups if isinstance(g, FeatureGroup | ReadGroup)}
    named = list(dict.fromkeys(r.partition(".")[0] for r in model.features if "." in r))
    found: list[ModelFeature] = []
    for ref in refs:
        group_name, dot, column = str(ref).partition(".")
        if not dot:
            owners = [g for g in named if g in groups and ref in groups[g].features]
            if len(owners) != 1:
                raise DefinitionError(
                    f"model {model.name!r}: feature {ref!r} is in "
                    f"{'none' if not owners else ' and '.join(owners)} of its groups "
                    f"({', '.join(named)}); name it as 'group.column'"
                )
            group_name, column = owners[0], str(ref)
        if group_name not in groups:
            raise DefinitionError(
                f"model {model.name!r}: feature {ref!r} names no feature group of the project "
                f"(it has {', '.join(groups) or 'none'})"
            )
        group = groups[group_name]
        columns = list(group.features) if column == "*" else [column]
        for name in columns:
            if name not in group.features:
                raise DefinitionError(
                    f"model {model.name!r}: feature group {group_name!r} has no feature "
                    f"{name!r} (it has {', '.join(group.features)})"
                )
            feature = ModelFeature(group_name, name)
            if feature not in found:
                found.append(feature)
    return found


# ---- checks -------------------------------------------------------------------------------------
def check_project(project: Project) -> list[str]:
    """Every problem of the definition, one line each naming the object; empty when sound."""
    from fti.store.layout import PERIODS
    from fti.training.metrics import metric_problem

    problems: list[str] = []

    def named(kind: str, items: Sequence[Any]) -> None:
        seen: set[str] = set()
        for item in items:
            if not isinstance(getattr(item, "name", None), str) or not NAME.match(item.name):
                problems.append(
                    f"{kind} {getattr(item, 'name', item)!r}: name must be lower-case letters, "
                    "digits and underscores, starting with a letter (at most 63)"
                )
            elif item.name in seen:
                problems.append(f"{kind} {item.name!r} is defined twice")
            seen.add(getattr(item, "name", ""))

    named("entity", project.entities)
    named("source", project.sources)
    named("model", project.models)
    named("feature or label group", project.groups)
    named("read group", project.reads)
    if not NAME.match(str(project.name)):
        problems.append(f"project {project.name!r}: name must be lower-case letters, digits, _")
    try:
        project.first_date  # noqa: B018 - the property parses it
    except ValueError:
        problems.append(
            f"project {project.name!r}: start_date {project.start_date!r} is not a date"
        )

    for entity in project.entities:
        if entity.dtype not in ENTITY_DTYPES:
            problems.append(
                f"entity {entity.name!r}: dtype {entity.dtype!r} is not one of {ENTITY_DTYPES}"
            )
    for source in project.sources:
        problems += _source_problems(source)

    entities = {e.name: e for e in project.entities}
    sources = {s.name: s for s in project.sources}
    for group in project.groups:
        kind = group.noun
        if group.entity.name not in entities or entities[group.entity.name] != group.entity:
            problems.append(
                f"{kind} {group.name!r}: entity {group.entity.name!r} is not in the project's entities"
            )
        if not group.sources:
            problems.append(f"{kind} {group.name!r}: no sources")
        for source in group.sources:
            if sources.get(source.name) is not source:
                problems.append(
                    f"{kind} {group.name!r}: source {source.name!r} is not in the project's sources"
                )
        if not callable(group.build):
            problems.append(f"{kind} {group.name!r}: build is not a function")
        if group.lookback_days < 1:
            problems.append(f"{kind} {group.name!r}: lookback_days must be at least 1")
        if group.partition not in PERIODS:
            problems.append(
                f"{kind} {group.name!r}: partition {group.partition!r} is not one of {PERIODS}"
            )
        if isinstance(group, LabelGroup) and group.horizon_days < 1:
            problems.append(f"label group {group.name!r}: horizon_days must be at least 1")
        if isinstance(group, FeatureGroup):
            problems += _feature_group_problems(group)
        problems += _freshness_problems(f"{kind} {group.name!r}", group.fresh_by)

    problems += _read_problems(project, entities)
    labels = {
        g.name: g for g in project.readable_groups if isinstance(g, LabelGroup | ReadLabelGroup)
    }
    for model in project.models:
        problems += _model_problems(project, model, labels, metric_problem)
    return problems


def _source_problems(source: Source) -> list[str]:
    problems = []
    columns = source.columns
    where = f"source {source.name!r}"
    if source.time_column not in columns:
        problems.append(f"{where}: time_column {source.time_column!r} is not in its schema")
    if source.id_column is not None and source.id_column not in columns:
        problems.append(f"{where}: id_column {source.id_column!r} is not in its schema")
    if source.format not in FORMATS:
        problems.append(f"{where}: format {source.format!r} is not one of {FORMATS}")
    if source.missing_day not in MISSING_DAY:
        problems.append(f"{where}: missing_day {source.missing_day!r} is not one of {MISSING_DAY}")
    window = source.unique_within_days
    if window is not None and (
        not isinstance(window, int) or isinstance(window, bool) or window < 1
    ):
        problems.append(
            f"{where}: unique_within_days {window!r} must be a whole number of days >= 1, "
            "or None for every day"
        )
    if window is not None and source.id_column is None:
        problems.append(f"{where}: unique_within_days needs an id_column to compare")
    try:
        ZoneInfo(source.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}: timezone {source.timezone!r} is not an IANA time zone")
    return problems


def _feature_group_problems(group: FeatureGroup) -> list[str]:
    where = f"feature group {group.name!r}"
    problems = []
    if not group.features:
        problems.append(f"{where}: declares no features")
    reserved = {group.entity.key, "feature_date"}
    for name in group.features:
        if name in reserved:
            problems.append(f"{where}: feature {name!r} is a key column, not a feature")
    for name in sorted({n for n in group.features if list(group.features).count(n) > 1}):
        problems.append(f"{where}: feature {name!r} is declared twice; declare it once")
    return problems


def _model_problems(
    project: Project,
    model: Model,
    labels: Mapping[str, LabelGroup | ReadLabelGroup],
    metric_problem: Callable[[str, str], str | None],
) -> list[str]:
    where = f"model {model.name!r}"
    problems = []
    if model.task not in TASKS:
        problems.append(f"{where}: task {model.task!r} is not one of {TASKS}")
    else:
        problem = metric_problem(model.metric, model.task)
        if problem:
            problems.append(f"{where}: {problem}")
    if labels.get(model.label.name) is not model.label:
        problems.append(
            f"{where}: label group {model.label.name!r} is not in the project's labels or reads"
        )
    if not callable(model.estimator):
        problems.append(f"{where}: estimator is not a function")
    try:
        features = project.model_features(model)
    except DefinitionError as exc:
        return [*problems, str(exc)]
    if not features:
        problems.append(f"{where}: no features")
        return problems
    groups = project.model_groups(model)
    for name in groups:
        group = project.readable_group(name)
        if group.entity != model.label.entity:
            problems.append(
                f"{where}: feature group {name!r} is about entity {group.entity.name!r} but "
                f"label group {model.label.name!r} is about {model.label.entity.name!r}"
            )
    for name, days in model.ttl.items():
        if name not in groups:
            problems.append(
                f"{where}: ttl names {name!r}, not one of its groups ({', '.join(groups)})"
            )
        elif not isinstance(days, int) or days < 0:
            problems.append(f"{where}: ttl of {name!r} must be a whole number of days >= 0")
    owners: dict[str, str] = {}
    for feature in features:
        if feature.name in owners and owners[feature.name] != feature.group:
            problems.append(
                f"{where}: feature {feature.name!r} comes from both {owners[feature.name]!r} "
                f"and {feature.group!r}; choose one"
            )
        owners.setdefault(feature.name, feature.group)
    if not 0 < model.holdout_share < 1:
        problems.append(f"{where}: holdout_share {model.holdout_share} must be between 0 and 1")
    if model.label_every_days < 1 or model.training_days < model.label_every_days:
        problems.append(
            f"{where}: training_days ({model.training_days}) must be at least "
            f"label_every_days ({model.label_every_days}), which must be at least 1"
        )
    if model.min_train_rows < 1 or model.min_holdout_rows < 1:
        problems.append(f"{where}: min_train_rows and min_holdout_rows must be at least 1")
    if model.max_training_rows is not None and (
        model.max_training_rows < model.min_train_rows + model.min_holdout_rows
    ):
        problems.append(
            f"{where}: max_training_rows {model.max_training_rows} is below min_train_rows + "
            "min_holdout_rows; raise it (or None: no limit)"
        )
    fresh = _freshness_problems(where, model.fresh_by)
    spine = project.readable_group(groups[0]).fresh_by
    if not fresh and not _freshness_problems("", spine):
        day = date(2000, 1, 1)  # any date: the offsets are compared
        if model.fresh_by.due(day) < spine.due(day):
            fresh.append(
                f"{where}: fresh_by (D+{model.fresh_by.days_after} {model.fresh_by.at} UTC) is "
                f"before that of its feature group {groups[0]!r} (D+{spine.days_after} "
                f"{spine.at} UTC): predictions need the features first"
            )
    return problems + fresh


def _read_problems(project: Project, entities: Mapping[str, Entity]) -> list[str]:
    """The reads' own rules: a name none of the built groups has, one of the project's
    entities, an owner that is another project's valid name, declared columns and types."""
    problems = []
    built = {g.name for g in project.groups}
    for group in project.reads:
        if not isinstance(group, ReadGroup | ReadLabelGroup):
            problems.append(
                f"project {project.name!r}: reads holds {group!r}, not a ReadGroup or "
                "ReadLabelGroup"
            )
            continue
        where = f"read {group.noun} {group.name!r}"
        if group.name in built:
            problems.append(
                f"{where}: this project builds a group of that name too; rename one of them"
            )
        if group.entity.name not in entities or entities[group.entity.name] != group.entity:
            problems.append(
                f"{where}: entity {group.entity.name!r} is not in the project's entities"
            )
        if not isinstance(group.owner, str) or not NAME.match(group.owner):
            problems.append(
                f"{where}: owner {group.owner!r} is not a project name (lower-case letters, "
                "digits and _)"
            )
        elif group.owner == project.name:
            problems.append(
                f"{where}: owner is this project ({project.name!r}); a group it builds is a "
                "FeatureGroup or LabelGroup, not a read"
            )
        if isinstance(group, ReadGroup):
            problems += _read_feature_problems(where, group)
        elif not isinstance(group.horizon_days, int) or group.horizon_days < 1:
            problems.append(f"{where}: horizon_days must be at least 1 (the owner's horizon)")
        if not isinstance(group.lookback_days, int) or group.lookback_days < 1:
            problems.append(f"{where}: lookback_days must be at least 1")
        problems += _freshness_problems(where, group.fresh_by)
    return problems


def _read_feature_problems(where: str, group: ReadGroup) -> list[str]:
    if not isinstance(group.features, Mapping) or not group.features:
        return [
            f"{where}: features must map each column it reads to its type, e.g. "
            "{'tenure_days': 'int64'}"
        ]
    problems = []
    reserved = {group.entity.key, "feature_date"}
    for name, kind in group.features.items():
        if name in reserved:
            problems.append(f"{where}: feature {name!r} is a key column, not a feature")
        if not isinstance(kind, str) or not kind:
            problems.append(
                f"{where}: feature {name!r} has type {kind!r}; declare its Arrow type name "
                "as the catalog lists it (`fti features show` ...), e.g. 'double'"
            )
    return problems


def _freshness_problems(where: str, fresh_by: object) -> list[str]:
    if not isinstance(fresh_by, Freshness):
        return [f"{where}: fresh_by {fresh_by!r} is not an fti.definitions.Freshness"]
    return fresh_by.problems(where)


def data_problems(project: Project, raw_root: Path) -> list[str]:
    """Problems between the definition and the raw files there are: a start date after the
    first file of a source (those days would never be processed), or before it for a source
    whose days must have a file (``missing_day="fail"``: the runs of the days before it would
    fail). A source without files yet is no problem: its first file is awaited."""
    problems = []
    start = project.first_date
    for source in project.sources:
        files = raw_files(raw_root, source)
        if not files:
            continue
        first = min(files)
        if first < start:
            problems.append(
                f"project {project.name!r}: start_date {start} is after the first raw file of "
                f"source {source.name!r} ({first}, in {raw_root / source.name}); those days "
                "would never be processed: move start_date back"
            )
        elif first > start and source.missing_day == "fail":
            problems.append(
                f"project {project.name!r}: start_date {start} is before the first raw file of "
                f"source {source.name!r} ({first}, in {raw_root / source.name}); the runs of "
                f"{start}..{first - timedelta(days=1)} would fail on their missing files: set "
                f"start_date to {first}, or declare missing_day='empty' on the source"
            )
    return problems


def raw_files(raw_root: Path, source: Source) -> dict[date, Path]:
    """The raw files of ``source`` by their date: ``<raw_root>/<source>/<YYYY-MM-DD>.<format>``
    (other files there are not the source's)."""
    folder = raw_root / source.name
    found = {}
    for path in folder.glob(f"*.{source.format}") if folder.is_dir() else []:
        try:
            day = date.fromisoformat(path.stem)
        except ValueError:
            continue
        if day.isoformat() == path.stem:  # not 20250101.csv, which no run reads
            found[day] = path
    return found


def _where_to_import(package: str, error: Exception) -> str:
    """What to do when ``package`` does not import: the command, when its folder is near."""
    general = (
        "Set FTI_PROJECT to 'package.module:attribute' of an importable module (fti commands "
        "import it from the folder they run in, the project's folder with its .env; else it "
        "must be on PYTHONPATH, or installed)."
    )
    missing = error.name if isinstance(error, ModuleNotFoundError) else None
    if missing is None or missing.partition(".")[0] != package:
        return general  # the package imports, or fails on something else: see the error
    here = Path.cwd()  # not a candidate: a command that runs here imports from here
    try:
        below = sorted(p for p in here.iterdir() if p.is_dir())
    except OSError:
        below = []
    for folder in [*here.parents, *below]:
        if (folder / package / "__init__.py").is_file() or (folder / f"{package}.py").is_file():
            if (folder / ".env").is_file():
                return f"Its package is in {folder}: run fti there (`cd {folder}`)."
            return (
                f"Its package is in {folder}: put that folder on the import path "
                f"(`export PYTHONPATH={folder}`, or `pip install -e` the project)."
            )
    return general


def load_project(reference: str) -> Project:
    """Import ``module:attribute`` (FTI_PROJECT), check it, and return the Project.

    Raises:
        ConfigError: the module or attribute cannot be imported, or is not a Project.
        DefinitionError: the definition breaks a rule (every problem, one line each).
    """
    module_name, _, attribute = reference.partition(":")
    try:
        project = getattr(importlib.import_module(module_name), attribute or "project")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot load project definition {reference!r}: {exc}. "
            + _where_to_import(module_name.partition(".")[0], exc)
        ) from exc
    if not isinstance(project, Project):
        raise ConfigError(
            f"{reference!r} is a {type(project).__name__}, not an fti.definitions.Project"
        )
    problems = check_project(project)
    if problems:
        raise DefinitionError(
            f"{reference}: {len(problems)} problem(s) in the definition:\n" + "\n".join(problems)
        )
    return project
