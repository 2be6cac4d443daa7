"""Where a process computes: the one place that selects CPU or GPU ops.

Every entry point that trains or predicts (`archsweep train`, `evaluate`, a sweep
trial, `probe-gpu`) calls `select_device` with its GPU id and the config's GPU
allocator. On the CPU that is NumpyOps with one BLAS thread; on a GPU it is
Thinc's `require_gpu` (CupyOps, and the torch device where torch has CUDA), after
routing CuPy's allocations through PyTorch or TensorFlow when the config asks
for it, or when a transformer shares the device with Thinc's own arrays.

The GPU itself sits behind a small interface (`GpuBackend`). `CupyBackend` is the
real one; `gpu_backend` swaps in another, which is how tests drive the GPU path
up to the device boundary on a machine without one (a backend that keeps
NumpyOps and records what it was asked).
"""

import contextlib
from typing import Any, Dict, Iterator, Optional, Protocol, Tuple

from thinc.api import Ops, get_current_ops, set_current_ops
from threadpoolctl import threadpool_limits

from archs.cpu_ops import CpuOps

# What Thinc's set_gpu_allocator accepts: CuPy's own pool is the default, used when none is set.
ALLOCATORS = ("pytorch", "tensorflow")


class DeviceError(RuntimeError):
    """The requested device cannot be used here (no CuPy, no GPU, no such GPU, bad allocator)."""


class GpuBackend(Protocol):
    """What archsweep needs from a GPU runtime."""

    def device_count(self) -> int:
        """GPUs this process can see; raises DeviceError when the runtime is missing."""

    def set_allocator(self, allocator: str) -> None:
        """Route array allocations through "pytorch" or "tensorflow"."""

    def activate(self, gpu_id: int) -> None:
        """Make GPU gpu_id current and its ops (CupyOps) Thinc's current ops."""

    def memory(self, gpu_id: int) -> Tuple[int, int]:
        """Free and total bytes on the GPU."""

    def pool_bytes(self) -> int:
        """Bytes the allocators hold (CuPy's pool, torch's caching allocator): their peak."""

    def synchronize(self, gpu_id: int) -> None:
        """Wait until the GPU has finished the work queued on it."""


class CupyBackend:
    """NVIDIA GPUs through CuPy and Thinc's CupyOps."""

    def _cupy(self) -> Any:
        try:
            import cupy
        except ImportError as err:
            raise DeviceError(
                "a GPU needs CuPy and an NVIDIA GPU: install archsweep[cuda12] (or [cuda13]) on a machine "
                f"with one, or leave out --gpu-id to train on the CPU ({err})"
            ) from None
        return cupy

    def device_count(self) -> int:
        cupy = self._cupy()
        try:
            return int(cupy.cuda.runtime.getDeviceCount())
        except cupy.cuda.runtime.CUDARuntimeError as err:
            raise DeviceError(f"no usable CUDA GPU: {err}") from None

    def set_allocator(self, allocator: str) -> None:
        from thinc.api import set_gpu_allocator

        try:
            set_gpu_allocator(allocator)
        except (ImportError, ValueError) as err:
            raise DeviceError(f"system.gpu_allocator {allocator!r}: {err}") from None

    def activate(self, gpu_id: int) -> None:
        from thinc.api import require_gpu

        try:
            require_gpu(gpu_id)
        except ValueError as err:
            raise DeviceError(f"GPU {gpu_id}: {err}") from None

    def memory(self, gpu_id: int) -> Tuple[int, int]:
        cupy = self._cupy()
        with cupy.cuda.Device(gpu_id):
            free, total = cupy.cuda.runtime.memGetInfo()
        return int(free), int(total)

    def pool_bytes(self) -> int:
        held = int(self._cupy().get_default_memory_pool().total_bytes())
        try:
            import torch
        except ImportError:
            return held
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            held = max(held, int(torch.cuda.max_memory_reserved()))
        return held

    def synchronize(self, gpu_id: int) -> None:
        self._cupy().cuda.Device(gpu_id).synchronize()


_backend: GpuBackend = CupyBackend()


def current_backend() -> GpuBackend:
    return _backend


@contextlib.contextmanager
def gpu_backend(backend: GpuBackend) -> Iterator[GpuBackend]:
    """Use `backend` for GPU requests within the block (then the previous one again)."""
    global _backend
    previous, _backend = _backend, backend
    try:
        yield backend
    finally:
        _backend = previous


def use_cpu() -> Ops:
    """archsweep's CpuOps (NumpyOps with a faster dropout mask) with numpy's BLAS
    (OpenBLAS) for matrix products instead of blis (1.6x faster gemm here), pinned
    to one thread: results then do not
    depend on the machine's core count (a sweep trial and `archsweep train`
    of its exported config give the same scores), and a second thread gained
    nothing measurable at these matrix sizes."""
    threadpool_limits(limits=1, user_api="blas")
    ops = CpuOps(use_blis=False)
    set_current_ops(ops)
    return ops


def gpu_allocator(config: Dict[str, Any]) -> Optional[str]:
    """The allocator a config's training needs on a GPU: `[system] gpu_allocator`
    when set, else "pytorch" when a transformer shares the device (one pool for
    torch and CuPy, so neither runs out while the other holds freed memory),
    else None (CuPy's own pool)."""
    configured = (config.get("system") or {}).get("gpu_allocator")
    if configured is not None:
        if configured not in ALLOCATORS:
            raise DeviceError(
                f"system.gpu_allocator: expected null (CuPy's own pool), \"pytorch\" or \"tensorflow\", "
                f"got {configured!r}"
            )
        return str(configured)
    names = (config.get("nlp") or {}).get("pipeline") or []
    components = config.get("components") or {}
    if any((components.get(name) or {}).get("factory") == "transformer" for name in names):
        return "pytorch"
    return None


def select_device(gpu_id: int, *, allocator: Optional[str] = None) -> Ops:
    """Make the CPU (gpu_id < 0) or GPU gpu_id this process's device and return
    its ops. allocator: None (CuPy's pool), "pytorch" or "tensorflow". Raises
    DeviceError with one line saying what is missing."""
    if gpu_id < 0:
        return use_cpu()
    if allocator is not None and allocator not in ALLOCATORS:
        raise DeviceError(f"GPU allocator: expected \"pytorch\" or \"tensorflow\", got {allocator!r}")
    backend = _backend
    count = backend.device_count()
    if gpu_id >= count:
        raise DeviceError(f"no GPU {gpu_id}: this machine has {count} (ids 0-{count - 1})" if count else "no CUDA GPU found")
    if allocator is not None:
        backend.set_allocator(allocator)
    backend.activate(gpu_id)
    return get_current_ops()
