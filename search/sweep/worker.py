"""What a sweep's worker processes run: Ray Tune's function trainable. This module
imports the training side only (no Optuna, MLflow or report plotting), so that a
worker starts quickly; one worker process runs trial after trial (reuse_actors)."""

import os
from typing import Any, Dict

import ray
from ray import tune

from ..space import Space
from ..training.corpus_cache import PROCESS_CACHE, process_cache_enabled
from .trial import run_trial


def trainable(config: Dict[str, Any], *, space: Space, workdir: str) -> None:
    """The plain trial with tune.report as its reporter. The worker process keeps
    the corpora it read for the trials it runs next (search.training.corpus_cache)."""
    os.chdir(workdir)  # relative paths in the space mean the driver's working directory
    gpu_id = 0 if ray.get_gpu_ids() else -1
    cache = PROCESS_CACHE if process_cache_enabled() else None
    run_trial(space, config, lambda metrics: tune.report(metrics), gpu_id=gpu_id, corpus_cache=cache)
