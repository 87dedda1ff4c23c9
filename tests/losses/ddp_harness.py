"""Check that a gathered loss under DDP equals the single-process loss.

``check_ddp_equivalence_many({name: make_loss}, world_size=2)`` trains nothing:
it builds two small encoders without BatchNorm (SyncBatchNorm cannot run on CPU/gloo), feeds each of
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
#: Per loss name: (distributed results of rank 0 plus ``'ranks'``, single-process
#: results), as :func:`check_ddp_equivalence_many` returns them.
DDPResults = dict[str, tuple[dict[str, object], dict[str, object]]]

PER_RANK = 6
IN_DIM = 5
OUT_DIM = 24


class TwoEncoders(nn.Module):
    """One small encoder per modality (two by default)."""

    def __init__(self, modalities: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.modalities = modalities
        for m in range(1, modalities + 1):
            setattr(
                self,
                f'enc{m}',
                nn.Sequential(nn.Linear(IN_DIM, 16), nn.ReLU(), nn.Linear(16, OUT_DIM)),
            )

    def forward(self, x: Tensor) -> list[Tensor]:
        # x: 2M x N x IN_DIM = (m1 v1, m1 v2, m2 v1, m2 v2, ...)
        return [getattr(self, f'enc{v // 2 + 1}')(x[v]) for v in range(len(x))]


def global_batch(world_size: int, modalities: int = 2) -> Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(2 * modalities, PER_RANK * world_size, IN_DIM, generator=g)


class LossStep(nn.Module):
    """The two encoders followed by the loss.

    A loss that is a module (e.g. with a learnable temperature) becomes a submodule,
    so DDP averages its gradients too, as when the loss lives inside a task.
    """

    def __init__(self, loss_fn: Callable[..., Tensor], modalities: int = 2) -> None:
        super().__init__()
        self.encoders = TwoEncoders(modalities)
        self.loss_fn = loss_fn

    def forward(self, x: Tensor) -> Tensor:
        return self.loss_fn(*self.encoders(x))


def _grads(step: nn.Module) -> dict[str, Tensor]:
    return {
        n: p.grad.clone()  # type: ignore[union-attr]
        for n, p in step.named_parameters()
        if p.requires_grad
    }


def _worker(
    rank: int,
    world_size: int,
    folder: str,
    factories: dict[str, LossFactory],
    modalities: int = 2,
) -> None:
    dist.init_process_group(
        'gloo',
        init_method=f'file://{os.path.join(folder, "rendezvous")}',
        rank=rank,
        world_size=world_size,
    )
    try:
        for name, make_loss in factories.items():
            model = DistributedDataParallel(LossStep(make_loss(True), modalities))
            x = global_batch(world_size, modalities)[
                :, rank * PER_RANK : (rank + 1) * PER_RANK
            ]
            loss = model(x)
            loss.backward()
            grads = _grads(model.module)
            torch.save(
                {'loss': loss.detach(), 'grads': grads},
                os.path.join(folder, f'{name}.rank{rank}.pt'),
            )
    finally:
        dist.destroy_process_group()


def check_ddp_equivalence_many(
    factories: dict[str, LossFactory], world_size: int = 2, modalities: int = 2
) -> DDPResults:
    """Run losses distributed and on one process; return both results per loss.

    Spawning the processes dominates the run time, so checking several losses in
    one spawn keeps the suite fast.

    ``modalities`` encoders get 2 x ``modalities`` views, and the losses are called
    with (m1 v1, m1 v2, m2 v1, m2 v2, ...).

    Args:
        factories: Loss name -> picklable callable: ``make_loss(gather_distributed)``
            returns the loss function.
        world_size: Number of gloo processes.
        modalities: Number of modalities (encoders).

    Returns:
        ``{name: (distributed, single)}``, each ``{'loss': Tensor, 'grads':
        {name: Tensor}}``; ``distributed`` also has ``'ranks'``, the results of
        every rank.
    """
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(  # type: ignore[attr-defined]
            _worker,
            args=(world_size, folder, factories, modalities),
            nprocs=world_size,
            join=True,
        )
        ranks = {
            name: [
                torch.load(os.path.join(folder, f'{name}.rank{r}.pt'))
                for r in range(world_size)
            ]
            for name in factories
        }

    out = {}
    for name, make_loss in factories.items():
        step = LossStep(make_loss(False), modalities)
        loss = step(global_batch(world_size, modalities))
        loss.backward()
        single = {'loss': loss.detach(), 'grads': _grads(step)}
        out[name] = ({**ranks[name][0], 'ranks': ranks[name]}, single)
    return out


def assert_results_equivalent(
    name: str, dist_out: dict[str, object], single: dict[str, object], rtol: float
) -> None:
    """Assert one loss's distributed and single-process results agree."""
    for rank in dist_out['ranks']:  # type: ignore[attr-defined]
        assert torch.allclose(rank['loss'], single['loss'], rtol=rtol), (
            name,
            rank['loss'],
            single['loss'],
        )
    grads = dist_out['grads']
    assert set(grads) == set(single['grads']), name  # type: ignore[call-overload,arg-type]
    # Absolute tolerance relative to the overall gradient scale: some gradients are
    # exactly zero in theory (a bias right before batch standardisation) and only
    # rounding noise in practice.
    scale = max(g.abs().max() for g in single['grads'].values())  # type: ignore[attr-defined]
    for param, g in single['grads'].items():  # type: ignore[attr-defined]
        got = grads[param]  # type: ignore[index]
        assert torch.allclose(got, g, rtol=rtol, atol=1e-6 * scale), (name, param)
