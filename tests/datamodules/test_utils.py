import os
import platform
import subprocess
import sys

import pytest

from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule
from torchgeo_decur.datamodules.utils import (
    retain_freed_memory_in_worker,
    tune_worker_memory,
)

from ..conftest import DATA, ROOT

GLIBC = platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc'


# Runs in a fresh interpreter: a long-lived pytest process may already have
# raised glibc's dynamic thresholds (by freeing big blocks), which its forked
# workers would inherit, hiding the difference. Each item allocates, writes and
# drops 20 batches of 8 paired-sample-sized buffers (1.8 + 0.3 MB, 264 px) in a
# DataLoader worker and returns the worker's minor page faults. The tuned loader
# is the SSL4EO-S12 data module's own (its worker_init_fn), the untuned one a
# plain DataLoader.
PAGE_FAULTS = """
import os, resource, sys
import numpy as np, torch
from torch.utils.data import DataLoader, Dataset
from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule, utils

class PageFaults(Dataset):
    def __len__(self):
        return 1
    def __getitem__(self, index):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            batch = [np.ones(n, np.uint8) for _ in range(8) for n in (1812096, 278784)]
            del batch
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        return torch.tensor([faults, int(utils._tuned_pid == os.getpid())])

plain = DataLoader(PageFaults(), batch_size=1, num_workers=1)
print(*next(iter(plain))[0].tolist())
dm = SSL4EOS12PairsDataModule(root=sys.argv[1], size=24, batch_size=1, num_workers=1)
dm.dataset = PageFaults()
print(*next(iter(dm.train_dataloader()))[0].tolist())
"""


def test_retain_freed_memory_leaves_the_main_process_alone() -> None:
    assert retain_freed_memory_in_worker() is False
    assert retain_freed_memory_in_worker(0) is False


def test_data_module_loaders_tune_their_workers() -> None:
    dm = SSL4EOS12PairsDataModule(
        root=os.path.join(DATA, 'ssl4eo_s12'), size=24, batch_size=2
    )
    dm.setup('fit')
    assert dm.train_dataloader().worker_init_fn is tune_worker_memory


@pytest.mark.skipif(not GLIBC, reason='mallopt thresholds exist only in glibc')
def test_retain_freed_memory_in_worker_stops_refaulting() -> None:
    env = os.environ | {'PYTHONPATH': ROOT}
    result = subprocess.run(
        [sys.executable, '-c', PAGE_FAULTS, os.path.join(DATA, 'ssl4eo_s12')],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    (untuned, off), (tuned, on) = (
        map(int, line.split()) for line in result.stdout.split('\n')[:2]
    )
    assert (off, on) == (0, 1)
    # 20 batches x 16 MiB = 80k pages faulted in without the tuning (glibc trims
    # or unmaps the freed buffers); with it only the first batch faults.
    assert untuned > 40_000
    assert tuned < untuned / 5
