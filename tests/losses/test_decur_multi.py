"""DeCUR for M >= 2 modalities against a direct transcription of its formula."""

import functools
import itertools

import pytest
import torch
from torch import Tensor

from torchgeo_decur.losses import DeCURLoss, decur_loss, decur_loss_multi

from ..distributed import Results
from .ddp_harness import (
    DDPResults,
    assert_results_equivalent,
    rank_results,
    with_single_process,
)
from .reference import barlow, correlation, decur_reference


def views(m: int, n: int, k: int, seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, k, generator=g)
    out = []
    for i in range(m):
        # Modalities share a signal, so every cross term is non-trivial.
        modality = base + 0.7 * torch.randn(n, k, generator=g) + 0.1 * i
        out.append(
            (
                modality + 0.4 * torch.randn(n, k, generator=g),
                modality + 0.4 * torch.randn(n, k, generator=g),
            )
        )
    return out


def transcription(
    pairs: list[tuple[Tensor, Tensor]],
    common_dim: int,
    weighting: str = 'reference',
    lambd: float = 0.0051,
) -> dict[str, object]:
    """The formula, term by term, with explicit K x K matrices (float64).

    total = (Σ_m intra_m + Σ_{i<j} (common_ij + unique_ij) / 2) / (M + M(M-1)/2)
    """
    m = len(pairs)
    intra = [barlow(correlation(a, b), 1.0, lambd) for a, b in pairs]
    common, unique = {}, {}
    for i, j in itertools.combinations(range(m), 2):
        cross = correlation(pairs[i][0], pairs[j][0])
        common[i, j] = barlow(cross[:common_dim, :common_dim], 1.0, lambd)
        unique[i, j] = barlow(cross[common_dim:, common_dim:], 0.0, lambd)
    if weighting == 'reference':
        total = (sum(intra) + sum((common[p] + unique[p]) / 2 for p in common)) / (
            m + m * (m - 1) / 2
        )
    else:
        total = sum(intra) + sum(common[p] + unique[p] for p in common)
    return {'total': total, 'intra': intra, 'common': common, 'unique': unique}


@pytest.mark.parametrize('method', ['gram', 'direct'])
@pytest.mark.parametrize('weighting', ['reference', 'sum'])
@pytest.mark.parametrize(
    ('n', 'k', 'common_dim'), [(12, 40, 30), (48, 16, 0), (8, 24, 24)]
)
def test_three_modalities_equal_the_formula(
    method: str, weighting: str, n: int, k: int, common_dim: int
) -> None:
    pairs = views(3, n, k)
    out = decur_loss_multi(pairs, common_dim, weighting=weighting, method=method)  # type: ignore[arg-type]
    ref = transcription(pairs, common_dim, weighting)
    assert torch.allclose(out.total.double(), ref['total'], rtol=1e-5)  # type: ignore[arg-type]
    for got, want in zip(out.intra, ref['intra'], strict=True):  # type: ignore[call-overload]
        assert torch.allclose(got.double(), want, rtol=1e-5, atol=1e-5)
    assert set(out.common) == {(0, 1), (0, 2), (1, 2)}
    for p in out.common:
        assert torch.allclose(
            out.common[p].double(), ref['common'][p], rtol=1e-5, atol=1e-5
        )  # type: ignore[index]
        assert torch.allclose(
            out.unique[p].double(), ref['unique'][p], rtol=1e-5, atol=1e-5
        )  # type: ignore[index]


def test_weighting_of_four_modalities() -> None:
    # 4 intra terms and 6 pairs: the reference weighting divides by 4 + 6 = 10.
    pairs = views(4, 10, 20, seed=2)
    ref = decur_loss_multi(pairs, 12)
    plain = decur_loss_multi(pairs, 12, weighting='sum')
    intra = sum(ref.intra)
    cross = sum(ref.common[p] + ref.unique[p] for p in ref.common)
    assert len(ref.common) == 6
    assert torch.allclose(ref.total, (intra + cross / 2) / 10)  # type: ignore[operator]
    assert torch.allclose(plain.total, intra + cross)  # type: ignore[arg-type]


def test_three_modality_gradients_equal_the_formula() -> None:
    pairs = [
        (a.double().requires_grad_(), b.double().requires_grad_())
        for a, b in views(3, 10, 32, seed=4)
    ]
    decur_loss_multi(pairs, 20, method='gram').total.backward()
    ours = [t.grad.clone() for p in pairs for t in p]  # type: ignore[union-attr]
    again = [
        (a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_())
        for a, b in pairs
    ]
    transcription(again, 20)['total'].backward()  # type: ignore[attr-defined]
    for g, t in zip(ours, [t for p in again for t in p], strict=True):
        assert torch.allclose(g, t.grad, rtol=1e-7, atol=1e-10)  # type: ignore[arg-type]


@pytest.mark.parametrize('method', ['gram', 'direct'])
@pytest.mark.parametrize('weighting', ['reference', 'sum'])
def test_two_modalities_are_the_reference_loss(method: str, weighting: str) -> None:
    (z11, z12), (z21, z22) = views(2, 16, 48, seed=5)
    multi = decur_loss_multi(
        [(z11, z12), (z21, z22)], 36, weighting=weighting, method=method
    )  # type: ignore[arg-type]
    four = decur_loss(z11, z12, z21, z22, 36, weighting=weighting, method=method)  # type: ignore[arg-type]
    ref = decur_reference(z11, z12, z21, z22, 36, weighting=weighting)
    # Same operations in the same order as the two-modality loss: equal values.
    assert torch.equal(multi.total, four.total)
    assert torch.equal(multi.intra[0], four.intra1)
    assert torch.equal(multi.intra[1], four.intra2)
    assert torch.equal(multi.common[0, 1], four.common)
    assert torch.equal(multi.unique[0, 1], four.unique)
    assert torch.equal(multi.common_diag[0, 1], four.common_diag)
    assert torch.allclose(multi.total.double(), ref['total'], rtol=1e-5)
    # And the module's entry point gives the same.
    module = DeCURLoss(36, weighting=weighting, method=method)  # type: ignore[arg-type]
    assert torch.equal(
        module.multimodal([(z11, z12), (z21, z22)]).total, module(z11, z12, z21, z22)
    )


def test_bad_inputs() -> None:
    pairs = views(3, 6, 8)
    with pytest.raises(ValueError, match='at least two modalities, got 1'):
        decur_loss_multi(pairs[:1], 4)
    with pytest.raises(ValueError, match=r'exactly two views .* positions \[1\]'):
        decur_loss_multi([pairs[0], pairs[1][:1], pairs[2]], 4)
    with pytest.raises(ValueError, match='same shape'):
        decur_loss_multi([pairs[0], pairs[1], (pairs[2][0][:, :4], pairs[2][1])], 4)
    with pytest.raises(ValueError, match=r'modality 2 view 2 must have shape \(N, K\)'):
        decur_loss_multi([pairs[0], pairs[1], (pairs[2][0], pairs[2][1][0])], 4)
    with pytest.raises(ValueError, match=r'common_dim must be in \[0, K\]'):
        decur_loss_multi(pairs, 9)


def three_modality_loss(method: str, gather: bool):  # type: ignore[no-untyped-def]
    loss = DeCURLoss(common_dim=18, gather_distributed=gather, method=method)  # type: ignore[arg-type]
    return functools.partial(_call_multimodal, loss)


def _call_multimodal(loss: DeCURLoss, *z: Tensor) -> Tensor:
    return loss.multimodal(list(zip(z[0::2], z[1::2], strict=True))).total


def ddp_job(rank: int, world_size: int) -> dict[str, dict[str, object]]:
    """This module's part of the suite's process group (tests/distributed.py)."""
    return rank_results(rank, world_size, _three_modality_factories(), modalities=3)


def _three_modality_factories():  # type: ignore[no-untyped-def]
    return {
        'gram': functools.partial(three_modality_loss, 'gram'),
        'direct': functools.partial(three_modality_loss, 'direct'),
        'local': functools.partial(_local_three_modality_loss),
    }


@pytest.fixture(scope='module')
def three_modality_ddp(distributed: Results) -> DDPResults:
    """Gathered (both methods) and local three-modality losses."""
    return with_single_process(
        _three_modality_factories(),
        distributed['decur_loss_3_modalities'],
        modalities=3,
    )


def test_two_process_ddp_with_three_modalities_equals_one_process(
    three_modality_ddp: DDPResults,
) -> None:
    for method in ('gram', 'direct'):
        dist_out, single = three_modality_ddp[method]
        assert_results_equivalent(method, dist_out, single, rtol=1e-5)


def test_three_modality_ddp_check_can_fail(three_modality_ddp: DDPResults) -> None:
    # Without gathering, each rank's loss is that of its half batch: the check above
    # would catch a loss that does not use the global batch.
    dist_out, single = three_modality_ddp['local']
    assert not torch.allclose(dist_out['loss'], single['loss'], rtol=1e-3)  # type: ignore[arg-type]


def _local_three_modality_loss(gather: bool):  # type: ignore[no-untyped-def]
    return three_modality_loss('gram', False)
