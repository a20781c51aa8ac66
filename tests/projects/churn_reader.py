"""Another team's project on the churn demo's groups, in the live deployment
(``tests/live/test_production.py``): project ``winback`` builds nothing; it reads four columns of
``customer_activity`` and the ``churned_30d`` labels that project ``churn`` publishes, and trains,
promotes and scores its own model, ``winback``, when churn's nightly run publishes them.
"""

from __future__ import annotations

from typing import Any

from fti.definitions import Entity, Model, Project, ReadGroup, ReadLabelGroup

customer = Entity("customer", key="customer_id", dtype="int64")
# As the catalog lists them (`fti features show customer_activity`).
TYPES = {
    "logins_30d": "int64",
    "purchases_30d": "int64",
    "spend_30d": "double",
    "tickets_30d": "int64",
}
activity = ReadGroup(
    "customer_activity", entity=customer, owner="churn", features=TYPES, lookback_days=30
)
churned = ReadLabelGroup(
    "churned_30d", entity=customer, owner="churn", horizon_days=30, lookback_days=30, label="int64"
)


def make_logistic(params: dict[str, Any], features: list[str]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=float(params.get("C", 1.0)), max_iter=500)
    )


winback = Model(
    "winback",
    label=churned,
    task="binary",
    metric="roc_auc",
    features=["customer_activity.*"],
    estimator=make_logistic,
)
project = Project(
    "winback",
    start_date="2026-01-01",
    entities=[customer],
    sources=[],
    feature_groups=[],
    labels=[],
    models=[winback],
    reads=[activity, churned],
)
