"""Drift between a model's training data and a batch being scored, feature by feature.

At training time ``reference`` bins each feature of the training rows (deciles for numbers,
the most frequent values for text, nulls in a bin of their own) and the model's holdout
probabilities (ten equal-width bins on [0, 1]). At scoring time ``DriftCounter`` counts the
batch into the same bins, one record batch at a time, so memory does not grow with the batch.
``compare`` gives per feature and for the prediction:

- the population stability index, PSI = sum((a - e) * ln(a / e)) over bins of shares
  (e: training, a: scored; empty bins count as 0.0001), and
- a chi-square test of the two binned samples (scipy's ``chi2_contingency``); with many rows
  tiny shifts are "significant", so the p-value is reported and PSI decides the breach.

A batch of fewer than ``Thresholds.min_rows`` rows is not judged: with a handful of rows most
bins are empty and PSI is large whatever the distribution (one row scores a PSI of 8.3 against
ten equal bins). Its results still carry PSI and the p-value, for information, but never a
breach, and say why (``judged`` false, ``reason`` "not enough rows to judge: 1 < 100").

A series of a few rows a day is judged at all by pooling: with ``Thresholds.window_days`` N, a
run's counts are merged (``DriftCounter.merge``) with those of the newest runs of the N - 1
dates before it that the same model version scored (fti.monitoring.results.window_counts), and
the window is judged as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import chi2_contingency

from fti.errors import ConfigError

NUMERIC_BINS = 10
TOP_VALUES = 20
PREDICTION = "prediction"  # the name drift results use for the probability distribution
FLOOR = 1e-4  # share used for an empty bin, so PSI stays finite


@dataclass(frozen=True)
class Thresholds:
    psi: float = 0.2  # 0.1-0.2 is commonly read as "moderate", above 0.2 as "significant"
    p_value: float = 0.001  # reported, not a breach on its own
    min_rows: int = 100  # scored rows a run (its window) needs before its drift is judged
    window_days: int = 1  # as-of dates pooled: the run's and the N - 1 before it

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> Thresholds:
        """The ``monitor`` section of params.yaml: psi_threshold, p_value, min_rows,
        window_days."""
        min_rows = int(section.get("min_rows", cls.min_rows))
        if min_rows < 1:
            raise ConfigError(
                f"monitor.min_rows must be at least 1, got {min_rows}: set it in params.yaml "
                "to the fewest scored rows a run needs before its drift is judged"
            )
        window_days = section.get("window_days", cls.window_days)
        if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
            raise ConfigError(
                f"monitor.window_days must be a whole number of days, at least 1, got "
                f"{window_days!r}: set it in params.yaml to the as-of dates a run's drift pools "
                "(1: the run's own rows)"
            )
        return cls(
            psi=float(section.get("psi_threshold", cls.psi)),
            p_value=float(section.get("p_value", cls.p_value)),
            min_rows=min_rows,
            window_days=window_days,
        )

    def unjudged(self, rows: int) -> str | None:
        """Why a run of ``rows`` scored rows is not judged, or None when it is."""
        if rows < self.min_rows:
            return f"not enough rows to judge: {rows} < {self.min_rows}"
        return None


def reference(
    columns: dict[str, np.ndarray | pa.Array],
    probabilities: np.ndarray,
    numeric_prediction: bool = False,
) -> dict[str, Any]:
    """Bins and counts of the training rows' features and of the holdout predictions.

    Predictions are probabilities binned in tenths, or with ``numeric_prediction`` (a
    regression's values) binned at the holdout's deciles like a numeric feature.
    """
    bins: dict[str, Any] = {}
    for name, values in columns.items():
        array = pa.array(values) if not isinstance(values, pa.Array) else values
        if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
            spec = {"kind": "numeric", "edges": _decile_edges(array)}
        else:
            counts = pc.value_counts(pc.drop_null(array.cast(pa.string()))).to_pylist()
            counts.sort(key=lambda c: -c["counts"])
            spec = {"kind": "categorical", "values": [c["values"] for c in counts[:TOP_VALUES]]}
        counter = _Bins(spec)
        counter.add(array)
        bins[name] = spec | {"counts": counter.counts.tolist()}
    predictions = pa.array(probabilities, pa.float64())
    prediction_spec = {
        "kind": "numeric",
        "edges": _decile_edges(predictions)
        if numeric_prediction
        else np.linspace(0, 1, 11)[1:-1].round(6).tolist(),
    }
    counter = _Bins(prediction_spec)
    counter.add(predictions)
    return {"features": bins, PREDICTION: prediction_spec | {"counts": counter.counts.tolist()}}


def _decile_edges(array: pa.Array) -> list[float]:
    valid = pc.drop_null(array).to_numpy(zero_copy_only=False).astype(float)
    valid = valid[np.isfinite(valid)]
    if not len(valid):
        return []
    return list(np.unique(np.quantile(valid, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1])).tolist())


class _Bins:
    """Counts values into a reference's bins: numeric ranges or values (+ other), and null."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        if spec["kind"] == "numeric":
            self.edges = np.asarray(spec["edges"], dtype=float)
            size = len(self.edges) + 1
        else:
            self.values = pa.array(spec["values"], pa.string())
            size = len(spec["values"]) + 1  # + other
        self.counts = np.zeros(size + 1, dtype=np.int64)  # last bin: null / not a number

    def add(self, array: pa.Array | pa.ChunkedArray) -> None:
        if self.spec["kind"] == "numeric":
            values = pc.fill_null(array.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
            missing = ~np.isfinite(values)
            places = np.searchsorted(self.edges, values[~missing], side="right")
            self.counts[: len(self.edges) + 1] += np.bincount(places, minlength=len(self.edges) + 1)
            self.counts[-1] += int(missing.sum())
        else:
            text = array.cast(pa.string())
            index = pc.index_in(text, value_set=self.values).to_numpy(zero_copy_only=False)
            nulls = np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            known = ~np.isnan(index.astype(float)) & ~nulls
            self.counts[: len(self.values)] += np.bincount(
                index[known].astype(np.int64), minlength=len(self.values)
            )
            self.counts[len(self.values)] += int((~known & ~nulls).sum())
            self.counts[-1] += int(nulls.sum())


class DriftCounter:
    """A scoring run's counts in its model's reference bins, added batch by batch."""

    def __init__(self, drift_reference: dict[str, Any], features: list[str]) -> None:
        self.reference = drift_reference
        known = drift_reference.get("features", {})
        self.features = {name: _Bins(known[name]) for name in features if name in known}
        self.prediction = (
            _Bins(drift_reference[PREDICTION]) if PREDICTION in drift_reference else None
        )
        self.rows = 0

    def add(self, batch: pa.RecordBatch, probabilities: np.ndarray) -> None:
        self.rows += batch.num_rows
        for name, bins in self.features.items():
            bins.add(batch.column(name))
        if self.prediction is not None:
            self.prediction.add(pa.array(probabilities, pa.float64()))

    def counts(self) -> dict[str, Any]:
        """What was counted, as JSON-ready numbers (a scoring shard's share of its run)."""
        return {
            "rows": self.rows,
            "features": {name: bins.counts.tolist() for name, bins in self.features.items()},
            PREDICTION: None if self.prediction is None else self.prediction.counts.tolist(),
        }

    def merge(self, counts: dict[str, Any]) -> None:
        """Add another counter's ``counts()`` of the same reference (another shard's rows):
        counts add up exactly, so the merged run compares as one counter of every row would."""
        self.rows += int(counts["rows"])
        for name, bins in self.features.items():
            bins.counts += np.asarray(counts["features"][name], dtype=np.int64)
        if self.prediction is not None:
            self.prediction.counts += np.asarray(counts[PREDICTION], dtype=np.int64)

    def compare(self, thresholds: Thresholds) -> list[dict[str, Any]]:
        """One result per feature (and ``prediction``): PSI, p-value, breached, both histograms.

        Each also has ``rows`` (the scored rows counted), ``judged`` and ``reason``: a run
        of fewer than ``thresholds.min_rows`` rows is not judged and breaches nothing.
        """
        reason = thresholds.unjudged(self.rows)
        results = [
            _compare(name, self.reference["features"][name], bins, thresholds, "feature", reason)
            for name, bins in self.features.items()
        ]
        if self.prediction is not None:
            results.append(
                _compare(
                    PREDICTION,
                    self.reference[PREDICTION],
                    self.prediction,
                    thresholds,
                    "prediction",
                    reason,
                )
            )
        return results


def _compare(
    name: str,
    reference: dict[str, Any],
    observed: _Bins,
    thresholds: Thresholds,
    kind: str,
    unjudged: str | None,
) -> dict[str, Any]:
    expected = np.asarray(reference["counts"], dtype=float)
    actual = observed.counts.astype(float)
    value = psi(expected, actual)
    return {
        "feature": name,
        "kind": kind,
        "psi": value,
        "p_value": chi_square_p(expected, actual),
        "breached": unjudged is None and bool(value > thresholds.psi),
        "judged": unjudged is None,
        "reason": unjudged,
        "rows": int(actual.sum()),
        "bins": bin_labels(reference),
        "expected": expected.astype(int).tolist(),
        "observed": actual.astype(int).tolist(),
    }


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    if expected.sum() == 0 or actual.sum() == 0:
        return 0.0
    e = np.maximum(expected / expected.sum(), FLOOR)
    a = np.maximum(actual / actual.sum(), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def chi_square_p(expected: np.ndarray, actual: np.ndarray) -> float | None:
    used = (expected + actual) > 0
    if used.sum() < 2 or expected.sum() == 0 or actual.sum() == 0:
        return None
    return float(chi2_contingency(np.vstack([expected[used], actual[used]]))[1])


def bin_labels(reference: dict[str, Any]) -> list[str]:
    if reference["kind"] == "numeric":
        edges = [f"{e:.4g}" for e in reference["edges"]]
        if not edges:
            return ["all", "null"]
        return [
            f"< {edges[0]}",
            *(f"{a} to {b}" for a, b in zip(edges, edges[1:], strict=False)),
            f">= {edges[-1]}",
            "null",
        ]
    return [*map(str, reference["values"]), "other", "null"]
