"""Fixtures shared by tests/archs and tests/search."""

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch at one thread for a module's tests (as the benchmarks measure it), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
