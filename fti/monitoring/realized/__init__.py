"""Realized performance: how a model's predictions turned out once their labels landed.

A label group version labels some dates (the partitions it wrote). For each model version
trained on that label group that scored one of those dates, the scores it wrote for the date
are joined on the entity with the labels of the date and scored by ``fti.training.metrics``
exactly as the holdout was (``holdout_metrics`` on a stand-in model that answers with the
stored scores), plus calibration for classifiers (Brier score, reliability curve) and the
error distribution for regressors. One ``realized_metrics`` row per (model, version, date);
recomputing replaces it. Where the metric is not defined on a date's rows (one row has no
ROC AUC) its value is None and the row says why.

A figure over several dates (a window for health and alerts, a comparison, a run's summary)
is the metric of those dates' prediction/label rows pooled (``Pool``), read again one date at
a time, never an average of the dates' values: on one row a day an average of per-date RMSEs
is a mean absolute error, and a ROC AUC has no per-date value at all.

The scores come from ``predictions`` (one version per model and date: the slice's writer)
and from ``shadow_predictions``: the scores of a version shadow-scored beside it (the
``challenger``, fti.pipelines.inference.score_shadow), one slice per (model, version, date), written by
``write_shadow_slice``.

This package's public face is this module; inside it, ``_record`` records the metrics of
the dates labels land for, ``_score`` scores one slice (and pools several), ``_pool`` reads
the scores and labels behind them, ``_tables`` reads the recorded rows and writes shadow
slices, and ``_alerts`` judges the windows' pooled metrics against params.yaml's
``monitor.realized`` rules.
"""

from fti.monitoring.realized._alerts import (
    FEATURE_DAG,
    Breach,
    RealizedRules,
    Window,
    breaches_of,
    realized_alerts,
    realized_breaches,
    realized_rules,
    realized_windows,
)
from fti.monitoring.realized._pool import LabelReader, read_labels, read_scores
from fti.monitoring.realized._record import (
    record_realized,
    record_realized_after_publish,
    record_realized_of_scored,
    refresh_realized,
)
from fti.monitoring.realized._score import (
    ERROR_QUANTILES,
    RELIABILITY_BINS,
    Pool,
    error_distribution,
    realized,
    reliability,
)
from fti.monitoring.realized._tables import (
    COLUMNS,
    as_dict,
    compare_realized,
    realized_rows,
    reason_of,
    write_shadow_slice,
)

__all__ = [
    "COLUMNS",
    "ERROR_QUANTILES",
    "FEATURE_DAG",
    "RELIABILITY_BINS",
    "Breach",
    "LabelReader",
    "Pool",
    "RealizedRules",
    "Window",
    "as_dict",
    "breaches_of",
    "compare_realized",
    "error_distribution",
    "realized",
    "realized_alerts",
    "realized_breaches",
    "realized_rows",
    "read_labels",
    "read_scores",
    "realized_rules",
    "reason_of",
    "realized_windows",
    "record_realized",
    "record_realized_after_publish",
    "record_realized_of_scored",
    "refresh_realized",
    "reliability",
    "write_shadow_slice",
]
