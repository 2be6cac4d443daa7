"""One sweep trial, the same with or without Ray: fill the space with the
sampled values, train, and report every evaluation through a callback."""

import hashlib
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from confection import Config

from ..space import Primitive, Space
from ..training.corpus_cache import CorpusCache
from ..training.loop import Evaluation, TrainResult, reset_peak_memory, train

SEED_KEY = "archsweep.seed"


class FixedSuggester:
    """Replays sampled values (as the sampler returned them, e.g. an ordinal's index)."""

    def __init__(self, values: Dict[str, Any]) -> None:
        self.values = values

    def _get(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise KeyError(f"no sampled value for dimension {name!r}") from None

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return self._get(name)

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        return self._get(name)

    def suggest_categorical(self, name: str, choices: Sequence[Primitive]) -> Primitive:
        return self._get(name)


def derive_seed(sweep_seed: int, trial_number: int) -> int:
    """A trial's training seed: a hash of the sweep seed and the trial's number."""
    digest = hashlib.sha256(f"{sweep_seed}:{trial_number}".encode()).hexdigest()
    return int(digest[:8], 16) % (2**31 - 1)


def trial_config(space: Space, sampled: Dict[str, Any]) -> Tuple[Config, Dict[str, Any]]:
    """The training config of a trial and its searched values (as they appear in
    the config). `sampled` holds the sampler's raw values and the trial seed."""
    config, values = space.sample(FixedSuggester(sampled))
    if SEED_KEY in sampled:
        config["training"]["seed"] = int(sampled[SEED_KEY])
    return config, values


def evaluation_metrics(row: Evaluation) -> Dict[str, float]:
    """The flat metrics one evaluation reports (to Ray Tune, MLflow, a table)."""
    metrics: Dict[str, float] = {
        "score": row.score,
        "best_score": row.best_score,
        "step": row.step,
        "epoch": row.epoch,
        "words": row.words,
        "train_seconds": row.seconds,
        "words_per_second": row.words_per_second,
        "peak_memory_mb": row.peak_memory_mb,
        "epochs_trained": row.epochs_trained,
        "model_params": row.model_params,
    }
    metrics.update(row.scores)
    metrics.update({f"loss_{name}": loss for name, loss in row.losses.items()})
    return metrics


def run_trial(
    space: Space,
    sampled: Dict[str, Any],
    report: Callable[[Dict[str, Any]], Optional[bool]],
    *,
    gpu_id: int = -1,
    output_dir: Optional[str] = None,
    corpus_cache: Optional[CorpusCache] = None,
) -> TrainResult:
    """Train one sampled config. Every evaluation is reported (with the
    trial's wall time so far as `trial_seconds`) with
    `training_finished = False`; when training ends by itself, a last report
    repeats the final scores with `training_finished = True`. A trial stopped
    early (report returned True, or the process was stopped) never sends it.
    corpus_cache: where corpora read by earlier trials in this process are kept.
    peak_memory_mb is this trial's own peak, also when the process ran others before."""
    config, _ = trial_config(space, sampled)
    reset_peak_memory()
    start = time.perf_counter()

    def on_evaluation(row: Evaluation) -> bool:
        elapsed = time.perf_counter() - start
        return bool(report({**evaluation_metrics(row), "trial_seconds": elapsed, "training_finished": False}))

    result = train(config, output_dir, gpu_id=gpu_id, on_evaluation=on_evaluation, corpus_cache=corpus_cache)
    if result.stop_reason != "stopped by the evaluation callback":
        final = result.history[-1]
        elapsed = time.perf_counter() - start
        report({**evaluation_metrics(final), "best_score": result.best_score, "trial_seconds": elapsed, "training_finished": True})
    return result
