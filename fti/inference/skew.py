"""Training/serving skew guard: score only on exactly the features a model was trained on."""

from __future__ import annotations

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
