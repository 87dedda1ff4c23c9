import platform
import subprocess
import sys

import pytest

from torchgeo_decur.datasets.utils import (
    distinct_subset,
    retain_freed_memory_in_worker,
)

GLIBC = platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc'


# Runs in a fresh interpreter: a long-lived pytest process may already have
# raised glibc's dynamic thresholds (by freeing big blocks), which its forked
# workers would inherit, hiding the difference. Each item allocates, writes and
# drops 20 batches of 8 paired-sample-sized buffers (1.8 + 0.3 MB, 264 px) in a
# DataLoader worker and returns the worker's minor page faults.
PAGE_FAULTS = """
import resource, sys
import numpy as np, torch
from torch.utils.data import DataLoader, Dataset
from torchgeo_decur.datasets.utils import retain_freed_memory_in_worker

class PageFaults(Dataset):
    def __init__(self, tune):
        self.tune = tune
    def __len__(self):
        return 1
    def __getitem__(self, index):
        applied = retain_freed_memory_in_worker() if self.tune else False
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            batch = [np.ones(n, np.uint8) for _ in range(8) for n in (1812096, 278784)]
            del batch
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        return torch.tensor([faults, int(applied)])

for tune in (False, True):
    loader = DataLoader(PageFaults(tune), batch_size=None, num_workers=1)
    print(*next(iter(loader)).tolist())
"""


def test_retain_freed_memory_leaves_the_main_process_alone() -> None:
    assert retain_freed_memory_in_worker() is False


@pytest.mark.skipif(not GLIBC, reason='mallopt thresholds exist only in glibc')
def test_retain_freed_memory_in_worker_stops_refaulting() -> None:
    result = subprocess.run(
        [sys.executable, '-c', PAGE_FAULTS], capture_output=True, text=True, check=True
    )
    (untuned, off), (tuned, on) = (
        map(int, line.split()) for line in result.stdout.split('\n')[:2]
    )
    assert (off, on) == (0, 1)
    # 20 batches x 16 MiB = 80k pages faulted in without the tuning (glibc trims
    # or unmaps the freed buffers); with it only the first batch faults.
    assert untuned > 40_000
    assert tuned < untuned / 5


def test_distinct_subset() -> None:
    assert distinct_subset(['s2', 's1'], ['s1', 's2']) == ('s2', 's1')
    for bad in ([], ['s1', 's1'], ['s3']):
        with pytest.raises(ValueError, match='modalities must be distinct'):
            distinct_subset(bad, ['s1', 's2'])
