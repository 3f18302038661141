"""Fixtures shared by the component test modules."""
import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Torch on one thread per module: on a small, shared machine more threads only wait
    (two threads on a busy two-core machine ran ~30x slower than one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
