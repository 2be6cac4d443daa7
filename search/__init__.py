"""Training, sweeps, tracking and the `archsweep` command line.

Sub-packages by role, imports pointing one way (the later ones use the earlier):
`corpora` (readers: files to Examples), `training` (config, pipeline, batching,
the training loop, evaluation; no Ray, Optuna or MLflow), `tasks` (the components
a pipeline is built from), `space` (search spaces), `sweep` (Ray Tune + Optuna),
`tracking` (MLflow, export of the best config), `report`, and `cli`.
"""

# Importing these registers the readers, batchers and component factories.
from . import corpora, tasks, training  # noqa: F401
