"""The promotion gate: a candidate replaces the champion only when it is better on the same rows."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fti.training.metrics import is_better, score


def gate(
    metric: str,
    margin: float,
    holdout: pd.DataFrame,
    label: str,
    candidate: tuple[int, Any, list[str]],
    champion: tuple[int, Any, list[str]] | None,
) -> dict[str, Any]:
    """Score candidate and champion (version, model, features) on ``holdout``; decide.

    Both models read their own feature columns from the same holdout rows (same feature version,
    same label window). Returns the decision with both scores and the reason in words.
    """
    version, model, features = candidate
    decision: dict[str, Any] = {"metric": metric, "margin": margin, "candidate_version": version}
    decision["candidate"] = score(metric, model, holdout[features], holdout[label])
    if champion is None:
        return decision | {
            "champion_version": None,
            "champion": None,
            "promoted": True,
            "reason": "first version of the model",
        }
    champion_version, champion_model, champion_features = champion
    decision["champion_version"] = champion_version
    missing = [f for f in champion_features if f not in holdout.columns]
    if missing:
        return decision | {
            "champion": None,
            "promoted": False,
            "reason": f"champion v{champion_version} needs {missing}, absent from this holdout",
        }
    decision["champion"] = score(metric, champion_model, holdout[champion_features], holdout[label])
    if decision["candidate"] is None or decision["champion"] is None:
        return decision | {
            "promoted": False,
            "reason": f"{metric} is not computable on this holdout",
        }
    promoted = is_better(metric, decision["candidate"], decision["champion"], margin)
    reason = (
        f"{metric} {decision['candidate']:.4f} vs champion v{champion_version} "
        f"{decision['champion']:.4f} on the same holdout (margin {margin}): "
        + ("better" if promoted else "not better")
    )
    return decision | {"promoted": promoted, "reason": reason}
