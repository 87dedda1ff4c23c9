"""The baseline losses against naive, explicit transcriptions of their papers."""

import math
from typing import Any

import pytest
import torch
from torch import Tensor

from torchgeo_decur import MultimodalBarlowTwinsTask, MultimodalVICRegTask
from torchgeo_decur.losses import (
    BarlowTwinsLoss,
    CLIPLoss,
    NTXentLoss,
    VICRegLoss,
    barlow_twins_loss,
    clip_loss,
    ntxent_loss,
    vicreg_loss,
)

from .reference import barlow, correlation


def pair(n: int = 10, k: int = 16, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, k, generator=g, dtype=torch.float64)
    return (
        base + 0.7 * torch.randn(n, k, generator=g, dtype=torch.float64),
        base + 0.7 * torch.randn(n, k, generator=g, dtype=torch.float64) + 0.3,
    )


# ------------------------------------------------------------ transcriptions
def unit(v: Tensor) -> Tensor:
    return v / torch.sqrt((v * v).sum())


def ntxent_naive(z1: Tensor, z2: Tensor, tau: float) -> Tensor:
    """SimCLR eq. (1): 2N anchors, positive = other modality, all others negative."""
    n = z1.shape[0]
    z = [unit(v) for v in z1] + [unit(v) for v in z2]
    total = torch.zeros((), dtype=torch.float64)
    for i in range(2 * n):
        pos = i + n if i < n else i - n
        num = torch.exp((z[i] * z[pos]).sum() / tau)
        den = sum(torch.exp((z[i] * z[k]).sum() / tau) for k in range(2 * n) if k != i)
        total = total - torch.log(num / den)
    return total / (2 * n)


def clip_naive(z1: Tensor, z2: Tensor, scale: float) -> Tensor:
    """CLIP pseudo-code: (CE over rows + CE over columns) / 2 of scaled cosines."""
    n = z1.shape[0]
    a, b = [unit(v) for v in z1], [unit(v) for v in z2]
    s = [[scale * (a[i] * b[j]).sum() for j in range(n)] for i in range(n)]
    rows = sum(
        -torch.log(torch.exp(s[i][i]) / sum(torch.exp(x) for x in s[i]))
        for i in range(n)
    )
    cols = sum(
        -torch.log(torch.exp(s[j][j]) / sum(torch.exp(s[i][j]) for i in range(n)))
        for j in range(n)
    )
    return torch.as_tensor((rows / n + cols / n) / 2)


def vicreg_naive(
    x: Tensor, y: Tensor, sim: float = 25.0, std: float = 25.0, cov: float = 1.0
) -> dict[str, Tensor]:
    """VICReg paper / code, element by element."""
    n, k = x.shape
    invariance = ((x - y) ** 2).sum() / (n * k)

    def hinge(z: Tensor) -> Tensor:
        total = torch.zeros((), dtype=z.dtype)
        for d in range(k):
            col = z[:, d]
            var = ((col - col.mean()) ** 2).sum() / (n - 1)
            total = total + torch.relu(1 - torch.sqrt(var + 1e-4))
        return total / k

    def off_cov(z: Tensor) -> Tensor:
        c = z - z.mean(0)
        total = torch.zeros((), dtype=z.dtype)
        for i in range(k):
            for j in range(k):
                if i != j:
                    total = total + ((c[:, i] * c[:, j]).sum() / (n - 1)) ** 2
        return total / k

    variance = hinge(x) / 2 + hinge(y) / 2
    covariance = off_cov(x) + off_cov(y)
    return {
        'total': sim * invariance + std * variance + cov * covariance,
        'invariance': invariance,
        'variance': variance,
        'covariance': covariance,
    }


# ----------------------------------------------------------------- formulas
@pytest.mark.parametrize('tau', [0.1, 0.5, 1.0])
def test_ntxent_matches_transcription(tau: float) -> None:
    z1, z2 = pair()
    ours = ntxent_loss(z1, z2, temperature=tau).total
    assert torch.allclose(ours.double(), ntxent_naive(z1, z2, tau), rtol=1e-5)
    assert torch.allclose(
        NTXentLoss(tau)(z1, z2).double(), ntxent_naive(z1, z2, tau), rtol=1e-5
    )


@pytest.mark.parametrize('tau', [0.07, 1.0])
def test_clip_matches_transcription(tau: float) -> None:
    z1, z2 = pair(seed=1)
    ref = clip_naive(z1, z2, 1 / tau)
    assert torch.allclose(clip_loss(z1, z2, 1 / tau).total.double(), ref, rtol=1e-5)
    for learnable in (True, False):
        loss = CLIPLoss(tau, learnable_temperature=learnable)
        assert torch.allclose(loss(z1, z2).double(), ref, rtol=1e-5)


def test_clip_is_symmetric_and_differs_from_one_direction() -> None:
    z1, z2 = pair(seed=2)
    assert torch.allclose(clip_loss(z1, z2, 10.0).total, clip_loss(z2, z1, 10.0).total)
    # The row direction alone (the reference baseline) is a different number.
    a, b = torch.nn.functional.normalize(z1), torch.nn.functional.normalize(z2)
    rows_only = torch.nn.functional.cross_entropy(10 * a @ b.T, torch.arange(10))
    assert not torch.allclose(clip_loss(z1, z2, 10.0).total, rows_only)


@pytest.mark.parametrize(('n', 'k'), [(12, 20), (30, 8)])
@pytest.mark.parametrize('method', ['gram', 'direct', 'auto'])
def test_barlow_twins_matches_transcription(n: int, k: int, method: str) -> None:
    z1, z2 = pair(n, k, seed=3)
    ref = barlow(correlation(z1, z2), 1.0, 0.0051)
    out = barlow_twins_loss(z1, z2, method=method)  # type: ignore[arg-type]
    assert torch.allclose(out.total.double(), ref, rtol=1e-6)
    c = correlation(z1, z2)
    assert torch.allclose(out.cross_diag.double(), torch.diagonal(c).mean(), rtol=1e-6)
    assert torch.allclose(
        BarlowTwinsLoss(lambd=0.01)(z1, z2).double(), barlow(c, 1.0, 0.01), rtol=1e-6
    )


def test_vicreg_matches_transcription() -> None:
    z1, z2 = pair(9, 7, seed=4)
    # Small values so the variance hinge is active in some dimensions.
    z1, z2 = 0.6 * z1, 0.6 * z2
    ref = vicreg_naive(z1, z2)
    out = vicreg_loss(z1, z2)
    assert 0 < float(out.variance) < 1
    for name, value in ref.items():
        assert torch.allclose(getattr(out, name).double(), value, rtol=1e-6), name
    weighted = VICRegLoss(sim_coeff=1.0, std_coeff=2.0, cov_coeff=3.0)(z1, z2)
    ref2 = vicreg_naive(z1, z2, 1.0, 2.0, 3.0)['total']
    assert torch.allclose(weighted.double(), ref2, rtol=1e-6)


@pytest.mark.parametrize(
    'loss_and_ref',
    [
        (
            lambda a, b: ntxent_loss(a, b, 0.2).total,
            lambda a, b: ntxent_naive(a, b, 0.2),
        ),
        (lambda a, b: clip_loss(a, b, 5.0).total, lambda a, b: clip_naive(a, b, 5.0)),
        (
            lambda a, b: barlow_twins_loss(a, b).total,
            lambda a, b: barlow(correlation(a, b), 1.0, 0.0051),
        ),
        (
            lambda a, b: vicreg_loss(0.5 * a, 0.5 * b).total,
            lambda a, b: vicreg_naive(0.5 * a, 0.5 * b)['total'],
        ),
    ],
    ids=['ntxent', 'clip', 'barlow_twins', 'vicreg'],
)
def test_gradients_match_transcription(loss_and_ref: tuple) -> None:  # type: ignore[type-arg]
    loss, ref = loss_and_ref
    z = [t.requires_grad_() for t in pair(6, 5, seed=5)]
    loss(*z).backward()
    ours = [t.grad.clone() for t in z]  # type: ignore[union-attr]
    z_ref = [t.detach().clone().requires_grad_() for t in z]
    ref(*z_ref).backward()
    for g, t in zip(ours, z_ref, strict=True):
        assert torch.allclose(g, t.grad, rtol=1e-6, atol=1e-9)  # type: ignore[arg-type]


# ------------------------------------------------------------------ monitors
def test_contrastive_monitors() -> None:
    z1, _ = pair(8, 16, seed=6)
    same = ntxent_loss(z1, z1.clone())
    assert same.positive_similarity == pytest.approx(1.0)
    assert same.top1 == 1.0
    assert same.negative_similarity < 0.9
    collapsed = clip_loss(torch.ones(8, 16), torch.ones(8, 16), 10.0)
    assert collapsed.negative_similarity == pytest.approx(1.0)
    # A collapsed batch has nothing to tell apart: the loss is log N.
    assert collapsed.total == pytest.approx(math.log(8), rel=1e-5)


def test_barlow_and_vicreg_monitors_flag_collapse() -> None:
    const = torch.ones(8, 16)
    assert barlow_twins_loss(const, const).cross_diag == 0
    out = vicreg_loss(const, const)
    assert out.variance == pytest.approx(1 - math.sqrt(1e-4))
    assert out.invariance == 0


# -------------------------------------------------------------- temperature
def test_clip_learnable_temperature() -> None:
    z1, z2 = pair(seed=7)
    loss = CLIPLoss(0.07)
    assert [n for n, _ in loss.named_parameters()] == ['log_scale']
    assert loss.temperature == pytest.approx(0.07)
    loss(z1.float(), z2.float()).backward()
    assert loss.log_scale.grad is not None
    assert loss.log_scale.grad != 0
    fixed = CLIPLoss(0.5, learnable_temperature=False)
    assert list(fixed.parameters()) == []
    assert 'log_scale' in fixed.state_dict()
    # 1/τ is capped at max_logit_scale: an overshoot (e.g. by an optimiser step) is
    # clamped back onto the cap, where the parameter still has a gradient.
    capped = CLIPLoss(0.07, max_logit_scale=100.0)
    with torch.no_grad():
        capped.log_scale.fill_(10.0)
    assert capped.temperature == pytest.approx(0.01)
    value = capped(z1.float(), z2.float())
    assert capped.log_scale.item() == pytest.approx(math.log(100.0))
    value.backward()
    assert capped.log_scale.grad is not None
    assert capped.log_scale.grad != 0
    reference = CLIPLoss(0.01, max_logit_scale=100.0)
    assert value.item() == pytest.approx(reference(z1.float(), z2.float()).item())


# ----------------------------------------------------------------- validation
@pytest.mark.parametrize('fn', [ntxent_loss, barlow_twins_loss, vicreg_loss])
def test_bad_inputs(fn) -> None:  # type: ignore[no-untyped-def]
    z = torch.randn(4, 8)
    with pytest.raises(
        ValueError,
        match=r'z1 and z2 must have the same shape, got \(4, 8\) and \(4, 7\)',
    ):
        fn(z, z[:, :7])
    with pytest.raises(ValueError, match=r'z1 must have shape \(N, K\), got \(8,\)'):
        fn(z[0], z[0])
    with pytest.raises(ValueError, match='at least 2 samples, got 1'):
        fn(z[:1], z[:1])


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match='temperature must be > 0, got 0'):
        NTXentLoss(0)
    with pytest.raises(ValueError, match='temperature must be > 0'):
        CLIPLoss(-1.0)
    with pytest.raises(ValueError, match='exceeds max_logit_scale'):
        CLIPLoss(0.001)
    with pytest.raises(ValueError, match="method must be 'auto', 'gram' or 'direct'"):
        barlow_twins_loss(*pair(), method='fast')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r'lambd must be finite and >= 0, got -0\.1'):
        barlow_twins_loss(*pair(), lambd=-0.1)
    with pytest.raises(ValueError, match='eps must be finite and > 0, got 0'):
        barlow_twins_loss(*pair(), eps=0.0)


@pytest.mark.parametrize('fn', [ntxent_loss, barlow_twins_loss, vicreg_loss])
def test_half_precision_inputs_are_computed_in_float32(fn) -> None:  # type: ignore[no-untyped-def]
    z1, z2 = pair(16, 32, seed=8)
    full = fn(z1.float(), z2.float()).total
    half = fn(z1.bfloat16(), z2.bfloat16()).total
    assert half.dtype == torch.float32
    assert torch.allclose(half, full, rtol=0.05)


@pytest.mark.parametrize(
    ('make', 'name'),
    [
        (lambda: VICRegLoss(std_coeff=-25.0), 'std_coeff'),
        (lambda: VICRegLoss(sim_coeff=float('nan')), 'sim_coeff'),
        (lambda: VICRegLoss(cov_coeff=-1.0), 'cov_coeff'),
        (lambda: VICRegLoss(eps=0.0), 'eps'),
        (lambda: BarlowTwinsLoss(lambd=-0.0051), 'lambd'),
        # A small projector: the default 8192-wide one takes seconds to initialise.
        (
            lambda: MultimodalVICRegTask(
                model='resnet18', projector_dims=[32, 32], std_coeff=-1.0
            ),
            'std_coeff',
        ),
        (
            lambda: MultimodalBarlowTwinsTask(
                model='resnet18', projector_dims=[32, 32], lambd=-1.0
            ),
            'lambd',
        ),
    ],
)
def test_negative_loss_weights_are_rejected(make: Any, name: str) -> None:
    with pytest.raises(ValueError, match=f'{name} must be finite and'):
        make()
