import pytest
import torch
from torch import Tensor

from torchgeo_decur.losses import DeCURLoss, batch_standardize, decur_loss

from .reference import correlation, decur_reference


def embeddings(
    n: int, k: int, seed: int = 0, dtype: torch.dtype = torch.float32
) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, k, generator=g)
    # Correlated views so that every term is non-trivial.
    return [
        (base + 0.5 * torch.randn(n, k, generator=g) + 0.1 * i).to(dtype)
        for i in range(4)
    ]


@pytest.mark.parametrize('method', ['gram', 'direct', 'auto'])
@pytest.mark.parametrize(
    ('n', 'k', 'common_dim'), [(16, 64, 48), (96, 32, 28), (8, 40, 0), (8, 40, 40)]
)
@pytest.mark.parametrize('weighting', ['reference', 'sum'])
def test_matches_reference(
    method: str, n: int, k: int, common_dim: int, weighting: str
) -> None:
    z = embeddings(n, k)
    ours = decur_loss(*z, common_dim=common_dim, weighting=weighting, method=method)  # type: ignore[arg-type]
    ref = decur_reference(*z, common_dim=common_dim, weighting=weighting)
    for name, value in ref.items():
        got = getattr(ours, name).double()
        assert torch.allclose(got, value, rtol=1e-5, atol=1e-4), (name, got, value)


@pytest.mark.parametrize('method', ['gram', 'direct'])
def test_gradients_match_reference(method: str) -> None:
    z = [t.double().requires_grad_() for t in embeddings(12, 48, seed=3)]
    decur_loss(*z, common_dim=36, method=method).total.backward()  # type: ignore[arg-type]
    ours = [t.grad.clone() for t in z]  # type: ignore[union-attr]
    z_ref = [t.detach().clone().requires_grad_() for t in z]
    decur_reference(*z_ref, common_dim=36)['total'].backward()
    for g, t in zip(ours, z_ref, strict=True):
        assert torch.allclose(g, t.grad, rtol=1e-7, atol=1e-10)  # type: ignore[arg-type]


def test_gram_and_direct_agree_in_float32_at_paper_scale_ratio() -> None:
    # K much larger than N, as in the paper (256 x 8192), scaled down.
    z = embeddings(64, 2048, seed=1)
    gram = decur_loss(*z, common_dim=1792, method='gram')
    direct = decur_loss(*z, common_dim=1792, method='direct')
    ref = decur_reference(*z, common_dim=1792)
    for name in ('total', 'intra1', 'intra2', 'common', 'unique'):
        r = ref[name]
        assert abs(getattr(gram, name).double() - r) <= 1e-5 * abs(r), name
        assert abs(getattr(direct, name).double() - r) <= 1e-5 * abs(r), name


def test_identical_views_leave_only_off_diagonal() -> None:
    z = embeddings(32, 24, seed=2, dtype=torch.float64)
    # eps must be > 0; 1e-300 changes nothing at float64 precision for var ~ 1.
    out = decur_loss(z[0], z[0], z[2], z[2], common_dim=12, eps=1e-300)
    c = correlation(z[0], z[0], eps=0.0)
    off = (c**2).sum() - (torch.diagonal(c) ** 2).sum()
    assert torch.allclose(out.intra1, 0.0051 * off, rtol=1e-10)
    assert out.intra1 > 0


def test_permutation_invariance() -> None:
    z = embeddings(20, 16, seed=4)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    a = decur_loss(*z, common_dim=10)
    b = decur_loss(*(t[perm] for t in z), common_dim=10)
    for x, y in zip(a, b, strict=True):
        assert torch.allclose(x, y, rtol=1e-5, atol=1e-6)


def test_common_dim_edges() -> None:
    z = embeddings(10, 8, seed=5)
    none_common = decur_loss(*z, common_dim=0)
    assert none_common.common == 0
    assert none_common.common_diag == 0
    assert none_common.unique > 0
    all_common = decur_loss(*z, common_dim=8)
    assert all_common.unique == 0
    assert all_common.unique_diag == 0
    # With everything common the cross term is plain Barlow Twins of view 1.
    assert torch.allclose(
        all_common.common.double(),
        decur_reference(z[0], z[1], z[2], z[3], 8)['common'],
        rtol=1e-5,
    )


def test_monitors_are_block_diagonal_means() -> None:
    z = embeddings(30, 20, seed=6)
    out = decur_loss(*z, common_dim=15)
    diag = torch.diagonal(correlation(z[0], z[2]))
    assert torch.allclose(out.common_diag.double(), diag[:15].mean(), atol=1e-6)
    assert torch.allclose(out.unique_diag.double(), diag[15:].mean(), atol=1e-6)
    assert not out.common_diag.requires_grad


@pytest.mark.parametrize('common_dim', [-1, 9])
def test_common_dim_out_of_range(common_dim: int) -> None:
    z = embeddings(4, 8)
    with pytest.raises(ValueError, match=r'common_dim must be in \[0, K\]'):
        decur_loss(*z, common_dim=common_dim)


def test_shape_errors() -> None:
    z = embeddings(4, 8)
    with pytest.raises(ValueError, match='same shape'):
        decur_loss(z[0], z[1], z[2], z[3][:, :6], common_dim=4)
    with pytest.raises(ValueError, match='z1_2 must have shape'):
        decur_loss(z[0], z[1][0], z[2], z[3], common_dim=4)
    with pytest.raises(ValueError, match='at least 2 samples'):
        decur_loss(*(t[:1] for t in z), common_dim=4)
    with pytest.raises(ValueError, match='weighting'):
        decur_loss(*z, common_dim=4, weighting='mean')  # type: ignore[arg-type]


def test_negative_lambd_and_non_positive_eps_are_rejected() -> None:
    z = embeddings(4, 8)
    with pytest.raises(
        ValueError, match=r'lambd must be finite and >= 0, got -0\.0051'
    ):
        decur_loss(*z, common_dim=4, lambd=-0.0051)
    with pytest.raises(ValueError, match='lambd must be finite and >= 0'):
        DeCURLoss(common_dim=4, lambd=-1.0)
    # eps <= 0 turns a constant (dead) column into 0 / 0 = NaN.
    dead = [t.clone() for t in z]
    dead[0][:, 0] = 1.0
    for eps in (0.0, -1e-5):
        with pytest.raises(ValueError, match=f'eps must be finite and > 0, got {eps}'):
            decur_loss(*dead, common_dim=4, eps=eps)
        with pytest.raises(ValueError, match='eps must be finite and > 0'):
            DeCURLoss(common_dim=4, eps=eps)
    assert torch.isfinite(decur_loss(*dead, common_dim=4).total)
    # lambd = 0 (no redundancy term) is a valid setting.
    assert decur_loss(*z, common_dim=4, lambd=0.0).total >= 0


def test_low_precision_inputs_are_computed_in_float32() -> None:
    z = embeddings(16, 32, seed=7)
    full = decur_loss(*z, common_dim=24)
    half = decur_loss(*(t.bfloat16() for t in z), common_dim=24)
    assert half.total.dtype == torch.float32
    # Only the bf16 rounding of the inputs differs.
    assert torch.allclose(full.total, half.total, rtol=2e-2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        auto = decur_loss(*z, common_dim=24)
    assert auto.total.dtype == torch.float32
    assert torch.allclose(auto.total, full.total, rtol=1e-6)


def test_module_matches_functional() -> None:
    z = embeddings(8, 16, seed=8)
    loss = DeCURLoss(common_dim=12, lambd=0.01, weighting='sum')
    assert torch.equal(
        loss(*z), decur_loss(*z, common_dim=12, lambd=0.01, weighting='sum').total
    )
    with pytest.raises(ValueError, match='common_dim'):
        DeCURLoss(common_dim=-3)


def test_batch_standardize_matches_batchnorm() -> None:
    z = torch.randn(16, 10)
    bn = torch.nn.BatchNorm1d(10, affine=False).train()
    assert torch.allclose(batch_standardize(z), bn(z), atol=1e-6)
