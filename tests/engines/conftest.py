"""One intra-op thread for these CPU tests: on a busy machine, torch's default thread pool spends most of each
tiny forward pass waiting for its own threads (1 s instead of 4 ms for a toy U-Net on a shared 2-core box)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread_torch():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
