"""Tracking sweeps in MLflow (`mlflow`: a parent run per sweep, a child per trial,
a durable queue of writes while the server is away) and exporting the best
trial's config (`export`)."""
