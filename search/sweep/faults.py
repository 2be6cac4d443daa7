"""Why a trial failed, in one line a user recognises, from its error text.

Ray Tune records a failed trial's error as a traceback; when a trial ran out of
memory that traceback may be the trial's own MemoryError, an error Ray raised
after its memory monitor killed the worker, or the death of a worker the
kernel's out-of-memory killer SIGKILLed (which Ray cannot tell from any other
SIGKILL). Pure text tests: no Ray import.
"""

from typing import Optional

# Ray's memory monitor (RAY_memory_usage_threshold) killed the worker: ray.exceptions.OutOfMemoryError
_RAY_OOM = ("OutOfMemoryError: 1 worker", "OutOfMemoryError: Task was killed", "running low on memory")
# the trial's own allocation failed: numpy, Python, cupy
_IN_PROCESS_OOM = ("MemoryError", "Unable to allocate", "cudaErrorMemoryAllocation", "Out of memory allocating")
# Ray's message for a worker that died without a Python error (SIGKILL, e.g. by the kernel's OOM killer)
_KILLED = ("killed by SIGKILL by OOM killer",)


def failure_reason(error: str) -> Optional[str]:
    """A one-line reason for a failed trial when its error says it ran out of
    memory or its worker was killed; None for any other error (its own text says it)."""
    if any(marker in error for marker in _RAY_OOM):
        return ("out of memory: Ray's memory monitor killed the trial's worker because the node ran low on memory "
                "(RAY_memory_usage_threshold); give trials fewer at once per node or a smaller model")
    if any(marker in error for marker in _IN_PROCESS_OOM):
        return "out of memory: the trial could not allocate its model or a batch (MemoryError)"
    if any(marker in error for marker in _KILLED):
        return ("out of memory, most likely: the trial's worker process was killed (SIGKILL) without a Python error, "
                "which is what the kernel's out-of-memory killer does (a lost node or `kill -9` look the same)")
    return None
