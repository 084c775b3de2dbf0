"""Shared test set-up: tiny configs, CPU, few threads, temporary folders."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TENKU_NO_PROGRESS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield
