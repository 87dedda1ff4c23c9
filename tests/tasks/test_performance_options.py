"""channels_last and bf16 autocast: faster layouts/precisions, same training."""

import argparse

import torch
from lightning.pytorch import Trainer

from benchmarks.train_step import loss_trajectory, max_relative_difference
from torchgeo_decur import DeCURTask
from torchgeo_decur.tasks.performance import ChannelsLast

TINY = {
    'model': 'resnet18',
    'projector_dims': [32, 32],
    'common_dim': 24,
    'crop_size': 32,
}


def tiny_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        'image_s1': torch.rand(8, 4, 40, 40, generator=g),
        'image_s2': torch.rand(8, 26, 40, 40, generator=g),
    }


def loss_and_grads(channels_last: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(0)
    task = DeCURTask(**TINY)
    if channels_last:
        ChannelsLast().setup(Trainer(logger=False), task, 'fit')
    task.log = lambda *a, **k: None  # type: ignore[method-assign]
    torch.manual_seed(1)  # augmentation draws
    loss = task.training_step(tiny_batch(), 0)
    loss.backward()
    return loss.detach(), [p.grad for p in task.parameters() if p.grad is not None]


def test_channels_last_changes_layout_not_results() -> None:
    task = DeCURTask(**TINY)
    ChannelsLast().setup(Trainer(logger=False), task, 'fit')
    conv = task.backbones['s2'].conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert not conv.is_contiguous()
    plain_loss, plain_grads = loss_and_grads(False)
    cl_loss, cl_grads = loss_and_grads(True)
    assert torch.allclose(cl_loss, plain_loss, rtol=1e-5)
    assert len(cl_grads) == len(plain_grads)
    for a, b in zip(cl_grads, plain_grads, strict=True):
        # Only the summation order of the convolutions differs.
        assert torch.linalg.vector_norm(a - b) <= 1e-4 * torch.linalg.vector_norm(b)


def test_bf16_autocast_keeps_loss_close_to_fp32() -> None:
    # The benchmark's own training loop: identical weights, inputs and
    # augmentation draws; only the autocast precision differs.
    args = argparse.Namespace(
        model='resnet18',
        projector_dims=[64, 64],
        common_dim=56,
        size=32,
        batch_size=16,
        input_size=40,
        lr=1e-4,
        seed=0,
    )
    device = torch.device('cpu')
    fp32 = loss_trajectory(args, device, 'fp32', False, steps=3)
    bf16 = loss_trajectory(args, device, 'bf16', True, steps=3)
    diff = max_relative_difference(bf16, fp32)
    assert diff > 0  # bf16 really ran (rounding is visible) ...
    assert diff < 0.03  # ... and stayed within 3 % of fp32 over the run
