"""The churn demo: a subscription business's raw events, features, label and model."""
