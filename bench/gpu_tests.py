"""pytest plugin for bench/gpu.py: keep only the GPU-only tests, those marked to
skip when there is no CUDA GPU with CuPy (`skipif(not has_cupy_gpu, reason="no
CUDA GPU with CuPy available")` and the like), and deselect every other test.

    PYTHONPATH=bench:. python -m pytest -p gpu_tests tests/...

A test counts as GPU-only when one of its skipif marks gives a reason that says
a CUDA GPU is missing or needed ("no CUDA GPU", "needs a CUDA GPU", "with a CUDA
GPU is not available"). Tests that skip *because* a GPU is present ("a GPU is
here") are not selected.
"""

import re
from typing import Any, List

GPU_ONLY_REASON = re.compile(r"\b(no|needs a|with a) CUDA GPU\b", re.I)


def is_gpu_only(item: Any) -> bool:
    return any(GPU_ONLY_REASON.search(str(mark.kwargs.get("reason", ""))) for mark in item.iter_markers("skipif"))


def pytest_collection_modifyitems(config: Any, items: List[Any]) -> None:
    keep = [item for item in items if is_gpu_only(item)]
    dropped = [item for item in items if not is_gpu_only(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
