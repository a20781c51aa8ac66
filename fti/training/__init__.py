"""Training pipeline steps: point-in-time training sets, fitting, evaluation, artifacts."""
