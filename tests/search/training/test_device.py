"""Device selection: every entry point (train, evaluate, a sweep trial, probe-gpu,
and the CLI commands over them) reaches `select_device` with the GPU id and
allocator it should, then builds and trains. A fake GPU backend stands in for
the device: it records what it is asked and keeps NumpyOps, so the GPU path is
exercised up to the device boundary on a machine without a GPU."""

from typing import List, Optional, Tuple

import optuna
import pytest
from search_testing import DEV, PATHS, REPO, TAGGER_CFG
from thinc.api import NumpyOps, get_current_ops
from thinc.util import has_cupy_gpu
from typer.testing import CliRunner

from search.cli import app
from search.space import Space
from search.sweep import DefineByRun
from search.sweep.gpu_probe import largest_batch_size, probe_gpu, suggest_packing
from search.sweep.trial import run_trial
from search.training.device import CupyBackend, DeviceError, gpu_allocator, gpu_backend, select_device, use_cpu
from search.training.evaluate import evaluate
from search.training.loop import train

GIB = 2**30
SHORT = {**PATHS, "training.max_steps": 4, "training.eval_frequency": 2}


class FakeGpu:
    """A GPU backend with `count` devices that keeps NumpyOps: records every call.
    memory() reports `total` minus what the probe's training "used" (`used`
    after the first reading)."""

    def __init__(self, count: int = 1, total: int = 80 * GIB, used: int = 3 * GIB, pool: int = 2 * GIB) -> None:
        self.count, self.total, self.used, self.pool = count, total, used, pool
        self.calls: List[Tuple[str, object]] = []
        self.readings = 0

    def device_count(self) -> int:
        return self.count

    def set_allocator(self, allocator: str) -> None:
        self.calls.append(("set_allocator", allocator))

    def activate(self, gpu_id: int) -> None:
        self.calls.append(("activate", gpu_id))
        use_cpu()

    def memory(self, gpu_id: int) -> Tuple[int, int]:
        self.calls.append(("memory", gpu_id))
        self.readings += 1
        return (self.total if self.readings == 1 else self.total - self.used), self.total

    def pool_bytes(self) -> int:
        return self.pool

    def synchronize(self, gpu_id: int) -> None:
        self.calls.append(("synchronize", gpu_id))

    def selections(self) -> List[Tuple[str, object]]:
        return [call for call in self.calls if call[0] in ("set_allocator", "activate")]


@pytest.fixture
def fake_gpu():
    with gpu_backend(FakeGpu()) as backend:
        yield backend
    use_cpu()


@pytest.mark.parametrize("config, expected", [
    ({"system": {"gpu_allocator": None}}, None),
    ({"system": {}}, None),
    ({}, None),
    ({"system": {"gpu_allocator": "pytorch"}}, "pytorch"),
    ({"system": {"gpu_allocator": "tensorflow"}}, "tensorflow"),
    # a transformer shares the device with CuPy: one pool, torch's
    ({"nlp": {"pipeline": ["transformer", "tagger"]},
      "components": {"transformer": {"factory": "transformer"}, "tagger": {"factory": "tagger"}}}, "pytorch"),
    # the configured allocator wins
    ({"system": {"gpu_allocator": "tensorflow"}, "nlp": {"pipeline": ["transformer"]},
      "components": {"transformer": {"factory": "transformer"}}}, "tensorflow"),
    # a transformer block that is not in the pipeline does not count
    ({"nlp": {"pipeline": ["tagger"]},
      "components": {"transformer": {"factory": "transformer"}, "tagger": {"factory": "tagger"}}}, None),
])
def test_the_allocator_is_set_only_when_configured_or_a_transformer_shares_the_device(config, expected):
    assert gpu_allocator(config) == expected


@pytest.mark.parametrize("value", ["cupy", "torch", 1])
def test_an_unknown_allocator_names_the_key_and_the_choices(value):
    with pytest.raises(DeviceError, match=r"system\.gpu_allocator: expected null .*\"pytorch\" or \"tensorflow\""):
        gpu_allocator({"system": {"gpu_allocator": value}})


def test_cpu_is_numpy_ops_and_asks_nothing_of_the_gpu(fake_gpu):
    assert isinstance(select_device(-1), NumpyOps)
    assert fake_gpu.calls == []


@pytest.mark.parametrize("gpu_id, allocator, expected", [
    (0, None, [("activate", 0)]),
    (1, None, [("activate", 1)]),
    (0, "pytorch", [("set_allocator", "pytorch"), ("activate", 0)]),
])
def test_a_gpu_id_selects_that_gpu_after_its_allocator(gpu_id, allocator, expected):
    with gpu_backend(FakeGpu(count=2)) as fake:
        select_device(gpu_id, allocator=allocator)
    assert fake.selections() == expected


@pytest.mark.parametrize("count, gpu_id, allocator, message", [
    (1, 1, None, "no GPU 1: this machine has 1"),
    (0, 0, None, "no CUDA GPU found"),
    (1, 0, "cupy", 'expected "pytorch" or "tensorflow"'),
])
def test_an_unusable_gpu_request_is_one_clear_error(count, gpu_id, allocator, message):
    with gpu_backend(FakeGpu(count=count)) as fake, pytest.raises(DeviceError, match=message):
        select_device(gpu_id, allocator=allocator)
    assert fake.selections() == []


@pytest.mark.skipif(has_cupy_gpu, reason="a GPU is here")
def test_without_cupy_or_a_gpu_the_real_backend_says_what_is_missing():
    with pytest.raises(DeviceError, match="needs CuPy and an NVIDIA GPU|no usable CUDA GPU") as err:
        select_device(0)
    assert "\n" not in str(err.value)
    assert isinstance(get_current_ops(), NumpyOps)


def test_train_with_a_gpu_id_selects_it_then_trains(fake_gpu):
    result = train(TAGGER_CFG, None, gpu_id=0, overrides=SHORT)
    assert fake_gpu.selections() == [("activate", 0)]
    assert result.history[-1].step == 4 and 0.0 < result.best_score <= 1.0


def test_train_passes_the_configured_allocator(fake_gpu):
    train(TAGGER_CFG, None, gpu_id=0, overrides={**SHORT, "system.gpu_allocator": "pytorch"})
    assert fake_gpu.selections() == [("set_allocator", "pytorch"), ("activate", 0)]


def test_a_sweep_trial_with_a_gpu_selects_it_then_trains(fake_gpu):
    space = Space.from_disk(REPO / "spaces" / "tagger.cfg", {**SHORT, "training.max_epochs": 0})
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    sampled = {**DefineByRun(space, sweep_seed=0)(trial), **trial.params}
    reports: List[dict] = []
    result = run_trial(space, sampled, reports.append, gpu_id=0)
    assert fake_gpu.selections() == [("activate", 0)]
    assert reports and reports[-1]["training_finished"] and result.best_score > 0.0


def test_evaluate_with_a_gpu_id_selects_it_then_scores(fake_gpu, trained_tagger):
    scores = evaluate(trained_tagger.output_dir / "model-best", DEV, gpu_id=0)
    assert fake_gpu.selections() == [("activate", 0)]
    assert scores["pos_acc"] == pytest.approx(trained_tagger.result.best_scores["pos_acc"])


def test_probe_selects_the_gpu_trains_and_measures(fake_gpu):
    probe = probe_gpu(TAGGER_CFG, PATHS, steps=2, gpu_id=0)
    assert fake_gpu.selections() == [("activate", 0), ("activate", 0)]  # the probe's context, then training's
    assert ("synchronize", 0) in fake_gpu.calls
    assert probe.peak_bytes == 3 * GIB  # what the device lost, more than the pool held
    assert probe.free_bytes == probe.total_bytes == 80 * GIB
    assert probe.packing == suggest_packing(3 * GIB, 80 * GIB)


@pytest.mark.parametrize("size, expected", [
    (2000, 2000),
    (True, None),
    ("abc", None),
])
def test_largest_batch_size_of_a_number(size, expected):
    assert largest_batch_size(size) == expected


def test_largest_batch_size_of_a_schedule_is_where_it_ends():
    from thinc.api import compounding

    assert largest_batch_size(compounding(100.0, 1000.0, 1.001)) == 1000


runner = CliRunner()


def _cli(*args: str) -> Tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _path_args(paths: Optional[dict] = None) -> List[str]:
    return [arg for key, value in (paths or PATHS).items() for arg in (f"--{key}", str(value))]


def test_cli_train_with_a_gpu_id_selects_it(fake_gpu, tmp_path):
    code, output = _cli("train", str(TAGGER_CFG), "--gpu-id", "0", "--output", str(tmp_path / "run"),
                        *_path_args(), "--training.max_steps", "4", "--training.eval_frequency", "2")
    assert code == 0, output
    assert fake_gpu.selections() == [("activate", 0)]
    assert (tmp_path / "run" / "model-best" / "config.cfg").exists()


def test_cli_evaluate_with_a_gpu_id_selects_it(fake_gpu, trained_tagger):
    code, output = _cli("evaluate", str(trained_tagger.output_dir / "model-best"), str(DEV), "--gpu-id", "0")
    assert code == 0, output
    assert fake_gpu.selections() == [("activate", 0)]
    assert "pos_acc" in output


def test_cli_probe_gpu_selects_it_and_suggests_a_fraction(fake_gpu):
    code, output = _cli("probe-gpu", str(TAGGER_CFG), "--steps", "2", *_path_args())
    assert code == 0, output
    assert fake_gpu.selections()[-1] == ("activate", 0)
    assert "suggested: --gpus-per-trial 0.125" in output


@pytest.mark.parametrize("args", [
    ("train", str(TAGGER_CFG), "--gpu-id", "3"),
    ("probe-gpu", str(TAGGER_CFG), "--gpu-id", "3"),
    ("train", str(TAGGER_CFG), "--gpu-id", "0", "--system.gpu_allocator", "cupy"),
])
def test_cli_an_unusable_gpu_is_one_error_line(fake_gpu, args):
    code, output = _cli(*args, *_path_args())
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and ("no GPU 3" in errors[0] or "system.gpu_allocator" in errors[0]), output
    assert "Traceback" not in output


def test_the_real_backend_is_restored_after_a_fake():
    with gpu_backend(FakeGpu()):
        pass
    from search.training.device import current_backend

    assert isinstance(current_backend(), CupyBackend)
