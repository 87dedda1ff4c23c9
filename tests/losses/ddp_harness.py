"""Check that a gathered loss under DDP equals the single-process loss.

``check_ddp_equivalence(make_loss, world_size=2)`` trains nothing: it builds two small
encoders without BatchNorm (SyncBatchNorm cannot run on CPU/gloo), feeds each of
``world_size`` gloo processes its slice of one global batch, runs the loss with
gathering enabled under ``DistributedDataParallel`` and returns the loss and the
DDP-averaged gradients of rank 0, together with the loss and gradients of one
process that sees the whole batch. Any multimodal loss with the signature
``loss(z1_1, z1_2, z2_1, z2_2) -> scalar`` (extra views unused is fine) can use it.
"""

import os
import tempfile
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

LossFactory = Callable[[bool], Callable[..., Tensor]]

PER_RANK = 6
IN_DIM = 5
OUT_DIM = 24


class TwoEncoders(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc1 = nn.Sequential(
            nn.Linear(IN_DIM, 16), nn.ReLU(), nn.Linear(16, OUT_DIM)
        )
        self.enc2 = nn.Sequential(
            nn.Linear(IN_DIM, 16), nn.ReLU(), nn.Linear(16, OUT_DIM)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        # x: 4 x N x IN_DIM = (m1 v1, m1 v2, m2 v1, m2 v2)
        return [self.enc1(x[0]), self.enc1(x[1]), self.enc2(x[2]), self.enc2(x[3])]


def global_batch(world_size: int) -> Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, PER_RANK * world_size, IN_DIM, generator=g)


def _worker(rank: int, world_size: int, folder: str, make_loss: LossFactory) -> None:
    dist.init_process_group(
        'gloo',
        init_method=f'file://{os.path.join(folder, "rendezvous")}',
        rank=rank,
        world_size=world_size,
    )
    try:
        model = DistributedDataParallel(TwoEncoders())
        x = global_batch(world_size)[:, rank * PER_RANK : (rank + 1) * PER_RANK]
        loss = make_loss(True)(*model(x))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.module.named_parameters()}  # type: ignore[union-attr]
        torch.save(
            {'loss': loss.detach(), 'grads': grads},
            os.path.join(folder, f'rank{rank}.pt'),
        )
    finally:
        dist.destroy_process_group()


def check_ddp_equivalence(
    make_loss: LossFactory, world_size: int = 2
) -> tuple[dict[str, object], dict[str, object]]:
    """Run the loss distributed and on one process; return both results.

    Args:
        make_loss: Picklable callable: ``make_loss(gather_distributed)`` returns the
            loss function.
        world_size: Number of gloo processes.

    Returns:
        ``(distributed, single)``, each ``{'loss': Tensor, 'grads': {name: Tensor}}``;
        ``distributed`` also has ``'ranks'``, the results of every rank.
    """
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(
            _worker, args=(world_size, folder, make_loss), nprocs=world_size, join=True
        )
        ranks = [
            torch.load(os.path.join(folder, f'rank{r}.pt')) for r in range(world_size)
        ]

    model = TwoEncoders()
    loss = make_loss(False)(*model(global_batch(world_size)))
    loss.backward()
    single = {
        'loss': loss.detach(),
        'grads': {n: p.grad for n, p in model.named_parameters()},
    }
    return {**ranks[0], 'ranks': ranks}, single


def assert_ddp_equivalent(
    make_loss: LossFactory, world_size: int = 2, rtol: float = 1e-5
) -> None:
    """Assert loss and DDP-averaged gradients equal the single-process ones."""
    dist_out, single = check_ddp_equivalence(make_loss, world_size)
    for rank in dist_out['ranks']:  # type: ignore[attr-defined]
        assert torch.allclose(rank['loss'], single['loss'], rtol=rtol), (
            rank['loss'],
            single['loss'],
        )
    grads = dist_out['grads']
    # Absolute tolerance relative to the overall gradient scale: some gradients are
    # exactly zero in theory (a bias right before batch standardisation) and only
    # rounding noise in practice.
    scale = max(g.abs().max() for g in single['grads'].values())  # type: ignore[attr-defined]
    for name, g in single['grads'].items():  # type: ignore[attr-defined]
        got = grads[name]  # type: ignore[index]
        assert torch.allclose(got, g, rtol=rtol, atol=1e-6 * scale), name
