"""search.faults: the one-line reason of a failed trial, from its error text."""

import pytest

from search.sweep.faults import failure_reason

RAY_OOM = ("ray.exceptions.OutOfMemoryError: 1 worker(s) were killed due to the node running low on memory. "
           "Memory on the node (IP: 10.0.0.1, ID: ab) was 9.89GB used / 23.59GB limit (0.419150)")
SIGKILLED = ("ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.\n"
             "Worker exit type: SYSTEM_ERROR Worker exit detail: Worker unexpectedly exits with a connection error code 2. "
             "End of file. There are some potential root causes. (1) The process is killed by SIGKILL by OOM killer due "
             "to high memory usage. (2) ray stop --force is called.")
NODE_LOST = ("ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.\n"
             "The actor's node was terminated unexpectedly: health check failed due to missing too many heartbeats")


@pytest.mark.parametrize("error, start", [
    (RAY_OOM, "out of memory: Ray's memory monitor killed the trial's worker"),
    ("numpy._core._exceptions._ArrayMemoryError: Unable to allocate 1.1 TiB for an array", "out of memory: the trial could not allocate"),
    ("Traceback (most recent call last):\nMemoryError", "out of memory: the trial could not allocate"),
    ("cupy.cuda.memory.OutOfMemoryError: Out of memory allocating 4,294,967,296 bytes", "out of memory: the trial could not allocate"),
    (SIGKILLED, "out of memory, most likely: the trial's worker process was killed (SIGKILL)"),
])
def test_out_of_memory_is_named(error, start):
    assert failure_reason(error).startswith(start)


@pytest.mark.parametrize("error", [NODE_LOST, "ValueError: BiLSTM nO must be a positive even number, got nO=31", ""])
def test_other_errors_have_no_reason_line(error):
    assert failure_reason(error) is None
