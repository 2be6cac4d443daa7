"""How many trials of a config fit on one GPU: a short measured probe, and the
`--gpus-per-trial` fraction it suggests (`archsweep probe-gpu CONFIG`).

The probe trains the config for a few steps (and one evaluation) on one GPU, at
the largest batch size its batcher reaches (a compounding schedule starts small),
and reads how much device memory that took: what the allocator holds at the end
(CuPy's pool and PyTorch's caching allocator keep freed blocks, so this is their
peak) and what the device lost meanwhile, whichever is larger. `suggest_packing`
turns that into the largest 1/N such that N trials, each its measured peak plus
a safety margin plus its own CUDA context, fit in the GPU's free memory
(N at most MAX_TRIALS_PER_GPU). Ray only schedules by the fraction: it does not
enforce memory, so the margin is what keeps a trial whose batches grow from
running out.
"""

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

from archs import registry

from ..training.config import load_config
from ..training.device import current_backend, gpu_allocator, select_device
from ..training.loop import train

MAX_TRIALS_PER_GPU = 8
SAFETY_MARGIN = 0.25  # added to the measured peak: later batches can be longer than the probe's
CONTEXT_BYTES = 512 * 2**20  # each trial is its own process with its own CUDA context (about 300-500 MiB)
PROBE_SCHEDULE_STEPS = 100_000


@dataclass
class GpuPacking:
    trials_per_gpu: int  # 0: one trial does not fit in the free memory
    fraction: float  # --gpus-per-trial (1.0 when not even one trial fits: then it cannot be packed)
    per_trial_bytes: int  # peak plus margin plus context
    free_bytes: int


@dataclass
class GpuProbe:
    peak_bytes: int
    free_bytes: int  # free on the device before the probe trained
    total_bytes: int
    steps: int
    packing: GpuPacking


def suggest_packing(
    peak_bytes: int, free_bytes: int, *, margin: float = SAFETY_MARGIN, context_bytes: int = CONTEXT_BYTES,
    max_trials: int = MAX_TRIALS_PER_GPU,
) -> GpuPacking:
    """The largest 1/N with N trials of `peak_bytes` each (plus margin and a CUDA
    context) in `free_bytes`, N capped at max_trials. The fraction is rounded down
    to Ray's resource precision (1e-4), so N of them still add up to at most one GPU."""
    if peak_bytes < 0 or free_bytes < 0 or margin < 0 or max_trials < 1:
        raise ValueError("peak and free memory, the margin and max_trials must be positive")
    per_trial = int(math.ceil(peak_bytes * (1 + margin))) + context_bytes
    n = min(max_trials, free_bytes // per_trial) if per_trial else max_trials
    fraction = 1.0 if n <= 1 else math.floor(10_000 / n) / 10_000
    return GpuPacking(int(n), fraction, per_trial, free_bytes)


def largest_batch_size(size: Any) -> Optional[int]:
    """The largest batch a `[training.batcher] size` asks for: the number itself, or
    the most a schedule (an iterable of sizes, such as compounding.v1, which grows
    towards its stop value) reaches within its first 100,000 steps. None when it
    is not a size at all."""
    if isinstance(size, bool) or isinstance(size, (str, bytes)):
        return None
    if isinstance(size, (int, float)):
        return int(size)
    try:
        sizes = iter(size)
    except TypeError:
        return None
    return int(max(itertools.islice(sizes, PROBE_SCHEDULE_STEPS)))


def probe_gpu(
    config_path: Union[str, Path], overrides: Dict[str, Any], *, steps: int = 20, gpu_id: int = 0,
    margin: float = SAFETY_MARGIN, max_trials: int = MAX_TRIALS_PER_GPU,
) -> GpuProbe:
    """Train the config for `steps` steps and one evaluation on GPU gpu_id at its
    largest batch size (a growing schedule's first batches are its smallest) and
    measure its peak device memory. Raises DeviceError without CuPy or a GPU."""
    config = load_config(config_path, overrides)
    batcher = config.interpolate()["training"]["batcher"]
    size = largest_batch_size(registry.resolve({"size": batcher["size"]})["size"]) if "size" in batcher else None
    probe_overrides = {**overrides, "training.max_steps": steps, "training.eval_frequency": steps, "training.max_epochs": 0}
    if size is not None:
        probe_overrides["training.batcher.size"] = size
    select_device(gpu_id, allocator=gpu_allocator(config.interpolate()))  # the CUDA context is not the model's
    backend = current_backend()
    free_before, total = backend.memory(gpu_id)
    train(config_path, None, gpu_id=gpu_id, overrides=probe_overrides)
    backend.synchronize(gpu_id)
    free_after, _ = backend.memory(gpu_id)
    peak = max(backend.pool_bytes(), free_before - free_after)
    return GpuProbe(peak, free_before, total, steps, suggest_packing(peak, free_before, margin=margin, max_trials=max_trials))
