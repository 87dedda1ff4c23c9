"""Check that a gathered loss under DDP equals the single-process loss.

Trains nothing: ``rank_results(rank, world_size, {name: make_loss})``, called on
every rank of the suite's one process group (tests/distributed.py), builds two
small encoders without BatchNorm (SyncBatchNorm cannot run on CPU/gloo), feeds each of
``world_size`` gloo processes its slice of one global batch, runs the loss with
gathering enabled under ``DistributedDataParallel`` and returns the loss and the
DDP-averaged gradients of rank 0, together with the loss and gradients of one
process that sees the whole batch (``with_single_process``). Any multimodal loss with the signature
``loss(z1_1, z1_2, z2_1, z2_2) -> scalar`` (extra views unused is fine) can use it.
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

LossFactory = Callable[[bool], Callable[..., Tensor]]
#: Per loss name: (distributed results of rank 0 plus ``'ranks'``, single-process
#: results), as :func:`with_single_process` returns them.
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


def rank_results(
    rank: int,
    world_size: int,
    factories: dict[str, LossFactory],
    modalities: int = 2,
) -> dict[str, dict[str, object]]:
    """On one rank of an initialised process group: each loss's loss and gradients.

    Args:
        rank: This process's rank.
        world_size: Number of ranks.
        factories: Loss name -> ``make_loss(gather_distributed)``.
        modalities: Number of modalities (encoders).

    Returns:
        ``{name: {'loss': Tensor, 'grads': {name: Tensor}}}`` of this rank, the
        gradients averaged over the ranks by ``DistributedDataParallel``.
    """
    out: dict[str, dict[str, object]] = {}
    for name, make_loss in factories.items():
        model = DistributedDataParallel(LossStep(make_loss(True), modalities))
        x = global_batch(world_size, modalities)[
            :, rank * PER_RANK : (rank + 1) * PER_RANK
        ]
        loss = model(x)
        loss.backward()
        out[name] = {'loss': loss.detach(), 'grads': _grads(model.module)}
    return out


def with_single_process(
    factories: dict[str, LossFactory],
    ranks: list[dict[str, dict[str, object]]],
    modalities: int = 2,
) -> DDPResults:
    """Pair every rank's results (:func:`rank_results`) with one process's.

    The single process sees the whole global batch of ``len(ranks)`` ranks.

    Returns:
        ``{name: (distributed, single)}``, each ``{'loss': Tensor, 'grads':
        {name: Tensor}}``; ``distributed`` (rank 0's) also has ``'ranks'``, the
        results of every rank.
    """
    out = {}
    for name, make_loss in factories.items():
        step = LossStep(make_loss(False), modalities)
        loss = step(global_batch(len(ranks), modalities))
        loss.backward()
        single = {'loss': loss.detach(), 'grads': _grads(step)}
        per_rank = [r[name] for r in ranks]
        out[name] = ({**per_rank[0], 'ranks': per_rank}, single)
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
