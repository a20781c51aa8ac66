"""The service's Prometheus metrics, in a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
AGE_BUCKETS = (0, 1, 2, 3, 7, 14, 30, 90, 365)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fti_serve_requests",
            "HTTP requests answered, by route, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "fti_serve_errors",
            "Requests answered with an error (status >= 400), by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fti_serve_request_seconds",
            "Time to answer a request, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.entities = Counter(
            "fti_serve_entities",
            "Entities answered, by model and outcome (scored, not_found, stale_refused)",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.feature_entities = Counter(
            "fti_serve_feature_entities",
            "Entities answered by POST /features/{group}, by group and outcome (found, not_found)",
            ["group", "outcome"],
            registry=self.registry,
        )
        self.model_version = Gauge(
            "fti_serve_model_version",
            "The model version each alias serves",
            ["model", "alias"],
            registry=self.registry,
        )
        self.feature_age = Histogram(
            "fti_serve_feature_age_days",
            "Age of the served features in days (today - feature_date - 1), by model",
            ["model"],
            buckets=AGE_BUCKETS,
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "fti_serve_log_dropped",
            "Served predictions not logged because the log's queue was full",
            registry=self.registry,
        )
