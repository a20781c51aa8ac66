"""Training/serving skew guard: score only on exactly the features a model was trained on."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fti.errors import SkewError


def check_features(
    model: str, trained: list[dict[str, str]], serving: dict[str, str], where: str
) -> None:
    """Raise SkewError unless every trained feature is served with the same dtype.

    ``trained`` is the registry's feature list (name + dtype), ``serving`` the schema read from
    the store (name -> dtype); ``where`` names the feature version for the message.
    """
    missing = [f["name"] for f in trained if f["name"] not in serving]
    changed = [
        f"{f['name']} (trained on {f['dtype']}, {where} has {serving[f['name']]})"
        for f in trained
        if f["name"] in serving and serving[f["name"]] != f["dtype"]
    ]
    problems = []
    if missing:
        problems.append(f"missing feature(s) {', '.join(missing)}")
    if changed:
        problems.append(f"dtype changed for {', '.join(changed)}")
    if problems:
        raise SkewError(
            f"refusing to score {model} on {where}: {'; '.join(problems)}. "
            "Score with a model trained on this feature schema, or publish features with the old one."
        )


class ServingProfile:
    """What is being scored, feature by feature, accumulated one record batch at a time.

    Compared with the model's training statistics it reports features that are entirely null
    (but were not in training) or have values far outside their training range: further than
    one training range-width below the training minimum or above the training maximum.
    These are warnings, stored on the prediction run and logged; they do not stop scoring.
    """

    def __init__(self, features: list[str], training: dict[str, dict[str, Any]]) -> None:
        self.training = training
        self.rows = 0
        self.nulls = dict.fromkeys(features, 0)
        self.far = dict.fromkeys(features, 0)
        self.bounds = {name: _far_bounds(training.get(name, {})) for name in features}

    def add(self, batch: pa.RecordBatch, probabilities: object = None) -> None:
        self.rows += batch.num_rows
        for name in self.nulls:
            column = batch.column(name)
            self.nulls[name] += column.null_count
            bounds = self.bounds[name]
            if bounds is not None and pa.types.is_integer(column.type) | pa.types.is_floating(
                column.type
            ):
                outside = pc.or_(pc.less(column, bounds[0]), pc.greater(column, bounds[1]))
                self.far[name] += int(pc.sum(outside).as_py() or 0)

    def counts(self) -> dict[str, Any]:
        """What was counted, as JSON-ready numbers (a scoring shard's share of its run)."""
        return {"rows": self.rows, "nulls": dict(self.nulls), "far": dict(self.far)}

    def merge(self, counts: dict[str, Any]) -> None:
        """Add another profile's ``counts()`` of the same features (another shard's rows)."""
        self.rows += int(counts["rows"])
        for name in self.nulls:
            self.nulls[name] += int(counts["nulls"][name])
            self.far[name] += int(counts["far"][name])

    def warnings(self) -> list[dict[str, Any]]:
        found = []
        for name, nulls in self.nulls.items():
            trained = self.training.get(name, {})
            if (
                self.rows
                and nulls == self.rows
                and trained.get("nulls", 0) < trained.get("count", 1)
            ):
                found.append(
                    {
                        "feature": name,
                        "rule": "all_null",
                        "message": f"{name} is null in all {self.rows} rows",
                    }
                )
            if self.far[name]:
                low, high = self.bounds[name] or (None, None)
                found.append(
                    {
                        "feature": name,
                        "rule": "far_out_of_range",
                        "message": (
                            f"{name}: {self.far[name]} of {self.rows} values outside [{low:g}, {high:g}]"
                            f" (training range [{trained['min']:g}, {trained['max']:g}] widened by its width)"
                        ),
                    }
                )
        return found


def _far_bounds(stats: dict[str, Any]) -> tuple[float, float] | None:
    low, high = stats.get("min"), stats.get("max")
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return None
    width = (high - low) or max(abs(high), 1.0)
    return low - width, high + width
