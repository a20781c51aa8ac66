"""The feature store: immutable feature-group versions in a DVC data registry."""
