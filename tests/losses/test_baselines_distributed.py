"""Every baseline loss under 2-process DDP equals one process with the whole batch.

All losses run in the suite's one process group (tests/distributed.py) to keep
the suite fast; each is compared separately: every rank's loss value, and the DDP-averaged gradients of the
encoders and of the loss's own parameters (CLIP's learnable temperature).
"""

import functools

import torch
from torch import Tensor, nn

from torchgeo_decur.losses import BarlowTwinsLoss, CLIPLoss, NTXentLoss, VICRegLoss

from ..distributed import Results
from .ddp_harness import (
    LossStep,
    assert_results_equivalent,
    rank_results,
    with_single_process,
)


class CrossModal(nn.Module):
    """Adapt a two-embedding loss to the harness: view 1 of modality 1 vs 2."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, z1_1: Tensor, z1_2: Tensor, z2_1: Tensor, z2_2: Tensor) -> Tensor:
        return self.loss(z1_1, z2_1)  # type: ignore[no-any-return]


def make(name: str, gather: bool) -> CrossModal:
    """Build loss ``name``; ``*_local`` variants never gather (sanity checks)."""
    gather = gather and not name.endswith('_local')
    losses: dict[str, nn.Module] = {
        'ntxent': NTXentLoss(temperature=0.2, gather_distributed=gather),
        'clip': CLIPLoss(temperature=0.1, gather_distributed=gather),
        'clip_fixed': CLIPLoss(
            temperature=0.5, learnable_temperature=False, gather_distributed=gather
        ),
        'barlow_twins': BarlowTwinsLoss(gather_distributed=gather),
        'vicreg': VICRegLoss(gather_distributed=gather),
    }
    return CrossModal(losses[name.removesuffix('_local')])


GATHERED = ['ntxent', 'clip', 'clip_fixed', 'barlow_twins', 'vicreg']
LOCAL = ['ntxent_local', 'vicreg_local']
FACTORIES = {n: functools.partial(make, n) for n in GATHERED + LOCAL}


def ddp_job(rank: int, world_size: int) -> dict[str, dict[str, object]]:
    """This module's part of the suite's process group (tests/distributed.py)."""
    return rank_results(rank, world_size, FACTORIES)  # type: ignore[arg-type]


def test_two_process_ddp_equals_single_process(distributed: Results) -> None:
    results = with_single_process(FACTORIES, distributed['baseline_losses'])  # type: ignore[arg-type]
    for name in GATHERED:
        assert_results_equivalent(name, *results[name], rtol=1e-5)
    # Without gathering, per-rank negatives / statistics give other losses, so the
    # comparison above can fail.
    for name in LOCAL:
        dist_out, single = results[name]
        assert not torch.allclose(dist_out['loss'], single['loss'], rtol=1e-3), name  # type: ignore[arg-type]


def test_clip_temperature_gradient_is_compared() -> None:
    # The harness collects every parameter of the loss, so the DDP test above
    # compares the learnable temperature's gradient as well.
    names = [n for n, _ in LossStep(make('clip', False)).named_parameters()]
    assert 'loss_fn.loss.log_scale' in names
    assert 'loss_fn.loss.log_scale' not in [
        n for n, _ in LossStep(make('clip_fixed', False)).named_parameters()
    ]
