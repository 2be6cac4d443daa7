"""search.training.loop's peak memory: each trial of a process that runs one after
another (a sweep worker) reports its own peak, not the process's."""

import os

import numpy
import pytest

from search.training.loop import peak_memory_mb, reset_peak_memory


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux's VmHWM only")
def test_reset_starts_the_peak_again_from_the_memory_in_use():
    big = numpy.ones(200 * 2**20, dtype="uint8")  # 200 MiB, touched
    during = peak_memory_mb()
    del big
    assert peak_memory_mb() > during - 10  # a peak stays after the memory is freed (counters lag a little)
    reset_peak_memory()
    assert peak_memory_mb() < during - 150
