"""Training one config: the loop `archsweep train` runs and every sweep trial runs.

`train()` is plain Python: it reports each evaluation through `on_evaluation`,
which the CLI table, a Ray Tune reporter or an MLflow logger can all consume.
"""

import gc
import json
import logging
import math
import random
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy
from confection import Config
from thinc.api import Optimizer, fix_random_seed, get_array_module, to_numpy

from archs import registry

from ..corpora.conllu import Corpus
from ..corpora.example import Example, count_words
from .config import ConfigError, apply_overrides, fill_config, load_config
from .corpus_cache import CorpusCache
from .debug import count_params
from .device import gpu_allocator, select_device
from .optimizer import FusedAdam
from .pipeline import Pipeline
from .run_output import RunOutput

logger = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """One row of training progress: what every reporter receives."""

    epoch: int
    step: int
    words: int  # training words seen so far
    seconds: float  # training time so far, evaluation excluded
    losses: Dict[str, float]  # summed since the previous evaluation
    scores: Dict[str, float]
    score: float  # weighted by [training.score_weights]
    words_per_second: float  # training speed over this interval
    best_score: float
    peak_memory_mb: float
    epochs_trained: float = 0.0  # training words seen / words in the training corpus
    model_params: int = 0  # parameters of all components (as `archsweep debug model` counts them)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    best_score: float
    best_scores: Dict[str, float]
    best_step: int
    final_scores: Dict[str, float]
    history: List[Evaluation] = field(default_factory=list)
    output_dir: Optional[Path] = None
    stop_reason: str = ""


EvaluationCallback = Callable[[Evaluation], Optional[bool]]


class StopTraining(Exception):
    """Raised by the loop when training must stop with a reason (e.g. a NaN loss)."""


def train(
    config: Union[Config, str, Path],
    output_dir: Optional[Union[str, Path]] = None,
    *,
    gpu_id: int = -1,
    overrides: Dict[str, Any] = {},
    on_evaluation: Optional[EvaluationCallback] = None,
    overwrite: bool = False,
    corpus_cache: Optional[CorpusCache] = None,
) -> TrainResult:
    """Train the pipeline a config describes.

    config: a Config or the path of a .cfg file. overrides: dotted keys applied
    on top. on_evaluation: called after every evaluation; returning True stops
    training (a sweep scheduler stopping the trial early). output_dir: where the
    filled config, model-best/, model-last/ and scores.json go (nothing is
    written when None). They are written beside it first and moved in when training
    ends, so a failed run leaves the folder as it was; a folder that holds a run
    already is refused unless overwrite. corpus_cache: where the corpora are
    looked up before they are read (a process that trains many configs).
    """
    try:
        if output_dir is None:
            return _train(config, None, gpu_id=gpu_id, overrides=overrides, on_evaluation=on_evaluation, corpus_cache=corpus_cache)
        output = RunOutput(output_dir, overwrite=overwrite)
        try:
            result = _train(
                config, output.staging, gpu_id=gpu_id, overrides=overrides, on_evaluation=on_evaluation, corpus_cache=corpus_cache
            )
        except BaseException:
            output.discard()
            raise
        output.commit()
        result.output_dir = output.path
        return result
    finally:
        gc.unfreeze()  # frozen by _train once set up: collectable again


def _train(
    config: Union[Config, str, Path],
    output_dir: Optional[Path],
    *,
    gpu_id: int,
    overrides: Dict[str, Any],
    on_evaluation: Optional[EvaluationCallback],
    corpus_cache: Optional[CorpusCache] = None,
) -> TrainResult:
    """train()'s loop, writing into output_dir (the run's staging folder) when given."""
    if isinstance(config, (str, Path)):
        config = load_config(config, overrides)
    else:
        config = fill_config(apply_overrides(config, overrides))
    C = config.interpolate()
    T = C["training"]
    select_device(gpu_id, allocator=gpu_allocator(C))
    fix_random_seed(T["seed"])
    rng = random.Random(T["seed"])

    resolved = registry.resolve({"corpora": C["corpora"], "training": {k: T[k] for k in ("optimizer", "batcher")}})
    train_corpus = _corpus(resolved["corpora"], T["train_corpus"], "training.train_corpus")
    dev_corpus = _corpus(resolved["corpora"], T["dev_corpus"], "training.dev_corpus")
    optimizer = resolved["training"]["optimizer"]
    if type(optimizer) is Optimizer:
        optimizer = FusedAdam.from_optimizer(optimizer)
    batcher = resolved["training"]["batcher"]
    if corpus_cache is None:
        train_examples = list(train_corpus())
        dev_examples = list(dev_corpus())
    else:
        train_examples = corpus_cache.examples(C["corpora"][T["train_corpus"].partition(".")[2]], train_corpus)
        dev_examples = corpus_cache.examples(C["corpora"][T["dev_corpus"].partition(".")[2]], dev_corpus)
    logger.info(
        "train: %d sentences, %d words; dev: %d sentences, %d words",
        len(train_examples), count_words(train_examples), len(dev_examples), count_words(dev_examples),
    )
    corpus_words = count_words(train_examples)
    if not corpus_words:
        raise ConfigError(f"{T['train_corpus']}: the training corpus is empty")

    if not dev_examples:
        raise ConfigError(f"{T['dev_corpus']}: the dev corpus is empty (it gives the scores training is judged by)")
    try:
        nlp = Pipeline.from_config(C)
        nlp.initialize(train_examples)
    except ValueError as err:  # a component's settings do not fit the config or the data
        raise ConfigError(str(err)) from err
    model_params = sum(count_params(component.model) for component in nlp.components.values())
    score_weights = _score_weights(T.get("score_weights"), nlp, dev_examples)

    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        config.to_disk(out / "config.cfg")

    history: List[Evaluation] = []
    best = Evaluation(0, 0, 0, 0.0, {}, {}, float("-inf"), 0.0, float("-inf"), 0.0)
    step = epoch = words = 0
    train_seconds = 0.0
    interval_words, interval_seconds = 0, 0.0
    # Each step's losses as the components return them (device scalars on a GPU): read
    # back to the host, checked and summed once per evaluation, not once per step.
    interval_losses: Dict[str, List[Tuple[int, Any]]] = {}
    stop_reason = ""
    eval_frequency = T["eval_frequency"]

    def evaluate() -> bool:
        nonlocal best, interval_words, interval_seconds, interval_losses
        losses = _sum_losses(interval_losses)
        with nlp.use_params(optimizer.averages):  # [training.optimizer] use_averages
            scores = nlp.evaluate(dev_examples)
        score = sum(scores.get(k, 0.0) * w for k, w in score_weights.items())
        row = Evaluation(
            epoch=epoch,
            step=step,
            words=words,
            seconds=train_seconds,
            losses=losses,
            scores=scores,
            score=score,
            words_per_second=interval_words / interval_seconds if interval_seconds else 0.0,
            best_score=max(score, best.score),
            peak_memory_mb=peak_memory_mb(),
            epochs_trained=words / corpus_words,
            model_params=model_params,
        )
        history.append(row)
        interval_words, interval_seconds = 0, 0.0
        if score > best.score:
            best = row
            if out is not None:
                with nlp.use_params(optimizer.averages):
                    nlp.to_disk(out / "model-best", config)
        stop = bool(on_evaluation(row)) if on_evaluation is not None else False
        return stop

    def out_of_budget() -> str:
        if T["max_steps"] and step >= T["max_steps"]:
            return f"max_steps {T['max_steps']} reached"
        if T["max_seconds"] and train_seconds >= T["max_seconds"]:
            return f"max_seconds {T['max_seconds']} reached"
        if T["patience"] and best.step and step - best.step >= T["patience"]:
            return f"no improvement for {T['patience']} steps"
        return ""

    # What lives for the whole run (the corpora, the pipeline, the optimizer's
    # state: hundreds of thousands of objects) leaves the cyclic garbage collector's
    # view, which otherwise rescans it whenever the steps' short-lived objects
    # trigger a full collection (about 5% of a parser's training time).
    gc.collect()
    gc.freeze()
    while not stop_reason:
        order = list(train_examples)
        rng.shuffle(order)
        for batch in batcher(order):
            start = time.perf_counter()
            losses = nlp.update(batch, drop=T["dropout"], sgd=optimizer)
            optimizer.step_schedules()  # learn_rate (and other) schedules follow the step
            elapsed = time.perf_counter() - start
            step += 1
            for name, loss in losses.items():
                interval_losses.setdefault(name, []).append((step, loss))
            n_words = count_words(batch)
            words += n_words
            train_seconds += elapsed
            interval_words += n_words
            interval_seconds += elapsed
            if step % eval_frequency == 0:
                if evaluate():
                    stop_reason = "stopped by the evaluation callback"
                    break
            stop_reason = out_of_budget()
            if stop_reason:
                break
        else:
            epoch += 1
            if T["max_epochs"] and epoch >= T["max_epochs"]:
                stop_reason = f"max_epochs {T['max_epochs']} reached"
    if not history or history[-1].step != step:
        if evaluate() and not stop_reason:
            stop_reason = "stopped by the evaluation callback"
    final = history[-1]
    if out is not None:
        with nlp.use_params(optimizer.averages):
            nlp.to_disk(out / "model-last", config)
        scores = {
            "best_score": best.score,
            "best_step": best.step,
            "best_scores": best.scores,
            "final_scores": final.scores,
            "stop_reason": stop_reason,
            "history": [h.to_dict() for h in history],
        }
        (out / "scores.json").write_text(json.dumps(scores, indent=2), encoding="utf8")
    return TrainResult(
        best_score=best.score,
        best_scores=best.scores,
        best_step=best.step,
        final_scores=final.scores,
        history=history,
        output_dir=out,
        stop_reason=stop_reason,
    )


def _sum_losses(per_step: Dict[str, List[Tuple[int, Any]]]) -> Dict[str, float]:
    """Each component's summed loss over an interval, as floats; empties `per_step`.

    Device scalars are stacked and copied to the host once per component. Raises
    StopTraining naming the first step (and how many more) with a non-finite loss.
    """
    totals: Dict[str, float] = {}
    for name, entries in per_step.items():
        steps = [s for s, _ in entries]
        values = _to_floats([v for _, v in entries])
        bad = [(s, v) for s, v in zip(steps, values) if not math.isfinite(v)]
        if bad:
            first_step, first_value = bad[0]
            more = f" (and at {len(bad) - 1} later steps, up to step {bad[-1][0]})" if len(bad) > 1 else ""
            raise StopTraining(f"component {name!r} had a non-finite loss ({first_value}) at step {first_step}{more}")
        total = 0.0
        for value in values:  # in step order, in float64, as the per-step sum always was
            total += value
        totals[name] = total
    per_step.clear()
    return totals


def _to_floats(values: List[Any]) -> List[float]:
    """Python floats for a list of losses: floats, host (numpy) scalars or device
    scalars (CuPy 0-d arrays), the device ones read back in one copy."""
    floats: List[Optional[float]] = [None] * len(values)
    on_device: List[int] = []
    for i, value in enumerate(values):
        if isinstance(value, (float, int, numpy.generic, numpy.ndarray)):
            floats[i] = float(value)
        else:
            on_device.append(i)
    if on_device:
        xp = get_array_module(values[on_device[0]])
        host = to_numpy(xp.stack([values[i].reshape(()) for i in on_device]))
        for i, value in zip(on_device, host.tolist()):
            floats[i] = float(value)
    return floats  # type: ignore[return-value]


def peak_memory_mb() -> float:
    """This process's peak resident memory (VmHWM on Linux, which
    reset_peak_memory() can lower; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/status", encoding="utf8", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_memory() -> None:
    """Start peak_memory_mb() again from the memory in use now (Linux), so that a
    process that trains one config after another reports each one's own peak."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def _corpus(corpora: Dict[str, Corpus], dotted: str, key: str) -> Corpus:
    section, _, name = dotted.partition(".")
    if section != "corpora" or name not in corpora:
        raise ConfigError(f"{key}: {dotted!r} is not a block under [corpora] (have: {', '.join(corpora) or 'none'})")
    return corpora[name]


def _score_weights(weights: Optional[Dict[str, Any]], nlp: Pipeline, dev: List[Example]) -> Dict[str, float]:
    available = nlp.evaluate(dev[:1]) if dev else {}
    if not weights:
        keys = list(available)
        return {k: 1.0 / len(keys) for k in keys}
    result = {k: float(v) for k, v in weights.items() if v is not None}
    unknown = [k for k in result if k not in available]
    if unknown:
        raise ConfigError(
            f"training.score_weights: {', '.join(unknown)} not produced by the pipeline (it scores: {', '.join(available)})"
        )
    return result
