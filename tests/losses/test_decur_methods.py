"""The Gram / direct dispatch and the hand-written backward passes of the loss."""

import pytest
import torch

from torchgeo_decur.losses import batch_standardize, decur_loss
from torchgeo_decur.losses import decur as decur_module

from .test_decur import embeddings


@pytest.mark.parametrize(
    ('n', 'k', 'method', 'uses_gram'),
    [
        (16, 64, 'auto', True),  # N < K: Gram matrices
        (64, 64, 'auto', False),  # N >= K: K x K form
        (96, 32, 'auto', False),
        (16, 64, 'direct', False),
        (96, 32, 'gram', True),
    ],
)
def test_auto_uses_gram_only_below_k(
    monkeypatch: pytest.MonkeyPatch, n: int, k: int, method: str, uses_gram: bool
) -> None:
    calls = []
    real = decur_module._block_gram

    def spy(x: torch.Tensor, split: int) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(tuple(x.shape))
        return real(x, split)

    monkeypatch.setattr(decur_module, '_block_gram', spy)
    z = embeddings(n, k)
    out = decur_loss(*z, common_dim=k // 2, method=method)  # type: ignore[arg-type]
    assert bool(calls) == uses_gram
    # Both forms give the same loss.
    other = 'direct' if uses_gram else 'gram'
    ref = decur_loss(*z, common_dim=k // 2, method=other)
    assert torch.allclose(out.total, ref.total, rtol=1e-5)


def test_standardize_backward_is_exact() -> None:
    z = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: batch_standardize(t, 1e-5), (z,))
    assert torch.autograd.gradcheck(lambda t: batch_standardize(t, 0.0), (z,))


@pytest.mark.parametrize('split', [0, 2, 6])
def test_block_gram_backward_is_exact(split: int) -> None:
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    first, second = decur_module._block_gram(x, split)
    assert torch.allclose(first, x[:, :split] @ x[:, :split].T)
    assert torch.allclose(second, x[:, split:] @ x[:, split:].T)
    assert torch.autograd.gradcheck(lambda t: decur_module._block_gram(t, split), (x,))
