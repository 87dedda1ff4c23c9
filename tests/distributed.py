"""One two-process gloo group for every distributed check of the suite.

Starting processes costs far more than the checks themselves (each new process
imports torch, Lightning and this package), so every check that needs ranks runs
here, in one ``torch.multiprocessing.spawn`` per test session: the DDP parity of
the losses, the TerraMesh stream's split over ranks and data loader workers, and
a DeCURTask fit under Lightning's DDP strategy. The tests read their part of the
results through the session fixture ``distributed`` (tests/conftest.py), which
runs the group once even when pytest-xdist spreads those tests over workers.

A check is a function ``job(rank, world_size)`` in :data:`JOBS`, called on every
rank in order with the process group initialised; what it returns (tensors,
numbers, strings and lists or dicts of them) is collected per rank. Jobs import
what they need when called, so a rank only imports what the checks use.
"""

import os
import tempfile
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

#: Processes in the group.
WORLD_SIZE = 2

#: Job name -> ``'module:function'`` (imported in the ranks by name, so that the
#: list stays importable without the test modules).
JOBS = {
    'decur_loss': 'tests.losses.test_decur_distributed:ddp_job',
    'baseline_losses': 'tests.losses.test_baselines_distributed:ddp_job',
    'decur_loss_3_modalities': 'tests.losses.test_decur_multi:ddp_job',
    'terramesh_coverage': 'tests.datasets.test_terramesh:ddp_job',
    # Last: Lightning leaves its DDP settings in the environment of the rank
    # (so do the Lightning runs after it, which set them again).
    'decur_task_fit': 'tests.tasks.test_decur_ddp:ddp_job',
    'embed_shards': 'tests.test_embed_shards:ddp_job',
}

#: Results: job name -> one result per rank.
Results = dict[str, list[Any]]


def _job(name: str) -> Callable[[int, int], Any]:
    import importlib

    module, function = JOBS[name].split(':')
    job: Callable[[int, int], Any] = getattr(importlib.import_module(module), function)
    return job


def _rank(rank: int, world_size: int, folder: str, names: list[str]) -> None:
    dist.init_process_group(
        'gloo',
        init_method=f'file://{os.path.join(folder, "rendezvous")}',
        rank=rank,
        world_size=world_size,
    )
    try:
        results = {}
        for name in names:
            try:
                results[name] = _job(name)(rank, world_size)
            except BaseException as error:
                error.add_note(f'in distributed job {name!r} on rank {rank}')
                raise
        torch.save(results, os.path.join(folder, f'rank{rank}.pt'))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_jobs(names: list[str] | None = None, world_size: int = WORLD_SIZE) -> Results:
    """Run the jobs in one process group of ``world_size`` ranks.

    Args:
        names: Jobs to run, in :data:`JOBS` order; all of them by default.
        world_size: Number of processes.

    Returns:
        Job name -> the result of every rank, in rank order.
    """
    names = [n for n in JOBS if names is None or n in names]
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(  # type: ignore[attr-defined]
            _rank, args=(world_size, folder, names), nprocs=world_size, join=True
        )
        ranks = [
            torch.load(os.path.join(folder, f'rank{r}.pt'), weights_only=True)
            for r in range(world_size)
        ]
    return {name: [ranks[r][name] for r in range(world_size)] for name in names}
