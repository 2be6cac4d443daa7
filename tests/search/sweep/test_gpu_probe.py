"""`archsweep probe-gpu`: the fraction suggested from a measured peak (pure), the
error without CuPy or a GPU, and the probe itself on a GPU (skipped without one)."""

import pytest
from search_testing import PATHS, TAGGER_CFG, run_cli
from thinc.util import has_cupy_gpu

from search.sweep.gpu_probe import CONTEXT_BYTES, probe_gpu, suggest_packing
from search.training.device import DeviceError

MIB = 2**20
GIB = 2**30


@pytest.mark.parametrize("peak, free, trials, fraction", [
    (100 * MIB, 80 * GIB, 8, 0.125),  # a small model: capped at 8 per GPU
    (4 * GIB, 20 * GIB, 3, 0.3333),  # 3 x (5 GiB + context) fit in 20 GiB, 4 do not; 3 x 0.3333 <= 1
    (7 * GIB, 20 * GIB, 2, 0.5),
    (12 * GIB, 20 * GIB, 1, 1.0),
    (20 * GIB, 20 * GIB, 0, 1.0),  # does not fit even alone
])
def test_the_largest_one_over_n_that_fits(peak, free, trials, fraction):
    packing = suggest_packing(peak, free)
    assert (packing.trials_per_gpu, packing.fraction) == (trials, fraction)
    assert packing.per_trial_bytes == int(peak * 1.25) + CONTEXT_BYTES
    assert packing.trials_per_gpu * packing.per_trial_bytes <= free
    assert packing.trials_per_gpu * packing.fraction <= 1.0


def test_margin_and_cap_are_settings():
    assert suggest_packing(1 * GIB, 16 * GIB, margin=0.0, context_bytes=0, max_trials=32).trials_per_gpu == 16
    assert suggest_packing(1 * GIB, 16 * GIB, margin=1.0, context_bytes=0, max_trials=32).trials_per_gpu == 8
    assert suggest_packing(1 * GIB, 16 * GIB, margin=0.0, context_bytes=0, max_trials=4).fraction == 0.25
    with pytest.raises(ValueError):
        suggest_packing(-1, GIB)


@pytest.mark.skipif(has_cupy_gpu, reason="a GPU is here: the probe runs (test_probe_on_a_gpu)")
def test_without_cupy_or_a_gpu_the_probe_says_so():
    with pytest.raises(DeviceError, match="needs CuPy and an NVIDIA GPU|no usable CUDA GPU"):
        probe_gpu(TAGGER_CFG, PATHS, steps=2)
    proc = run_cli("probe-gpu", str(TAGGER_CFG))
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


@pytest.mark.skipif(not has_cupy_gpu, reason="no CUDA GPU with CuPy available")
def test_probe_on_a_gpu():
    probe = probe_gpu(TAGGER_CFG, {**PATHS, "components.tagger.model.tok2vec.width": 96}, steps=10)
    assert 0 < probe.peak_bytes < probe.total_bytes and 0 < probe.free_bytes <= probe.total_bytes
    assert probe.packing == suggest_packing(probe.peak_bytes, probe.free_bytes)
    assert 1 <= probe.packing.trials_per_gpu <= 8  # the sample tagger is small
    args = ["probe-gpu", str(TAGGER_CFG), "--steps", "10"]
    for key, value in PATHS.items():
        args += [f"--{key}", value]
    proc = run_cli(*args, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "suggested: --gpus-per-trial " in proc.stdout
