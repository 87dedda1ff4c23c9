"""DeCUR loss: decoupling common and unique representations of two modalities.

Reference: Wang et al., "Decoupling Common and Unique Representations for
Multimodal Self-supervised Learning", ECCV 2024, https://arxiv.org/abs/2309.05300.

Every term is a Barlow Twins objective on (a block of) a cross-correlation matrix
``C = Â^T B̂ / N`` of batch-normalised embeddings. Those terms only need the
diagonal of ``C`` and its squared Frobenius norm, and

* ``diag(C)_k = Σ_n Â_nk B̂_nk / N``   (O(N·K)),
* ``‖C‖_F² = Σ_{n,m} (Â Â^T)_{nm} (B̂ B̂^T)_{nm} / N²``   (O(N²·K), no K×K tensor),

so for the usual N < K (256 vs 8192) the loss is computed from N×N Gram matrices
instead of the three K×K matrices of the reference code. For N ≥ K the direct
K×K form is cheaper and is used instead; both give the same value and gradients.
"""

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from .distributed import gather_batch

Weighting = Literal['reference', 'sum']
Method = Literal['auto', 'gram', 'direct']


class DeCURLossOutput(NamedTuple):
    """Components of the DeCUR loss (all scalars).

    Attributes:
        total: Weighted total loss that is optimised.
        intra1: Barlow Twins loss between the two views of modality 1 (all K dims).
        intra2: Barlow Twins loss between the two views of modality 2 (all K dims).
        common: Cross-modal loss on the common block (diagonal → 1).
        unique: Cross-modal loss on the unique block (diagonal → 0).
        common_diag: Mean diagonal of the common block of C(z1_1, z2_1), detached.
            Rises towards 1 as the common dimensions align (0 if the block is empty).
        unique_diag: Mean diagonal of the unique block of C(z1_1, z2_1), detached.
            Should stay near 0: the unique dimensions must decorrelate across
            modalities (0 if the block is empty).
    """

    total: Tensor
    intra1: Tensor
    intra2: Tensor
    common: Tensor
    unique: Tensor
    common_diag: Tensor
    unique_diag: Tensor


def batch_standardize(z: Tensor, eps: float = 1e-5) -> Tensor:
    """Standardise each column over the batch like ``BatchNorm1d(affine=False)``.

    Args:
        z: Embeddings of shape (N, K).
        eps: Added to the biased variance before the square root.

    Returns:
        ``(z - mean) / sqrt(var + eps)`` with mean and biased variance over N.
    """
    mean = z.mean(dim=0)
    var = z.var(dim=0, unbiased=False)
    return (z - mean) / torch.sqrt(var + eps)


def _squared_frobenius(a: Tensor, b: Tensor, use_gram: bool) -> Tensor:
    """Return ``‖a^T b‖_F²`` for a, b of shape (N, d)."""
    if use_gram:
        return ((a @ a.T) * (b @ b.T)).sum()
    return (a.T @ b).pow(2).sum()


def _barlow_terms(sq_fro: Tensor, diag: Tensor, target: float, lambd: float) -> Tensor:
    """Barlow Twins objective from ``‖C‖_F²`` and ``diag(C)``.

    Args:
        sq_fro: Squared Frobenius norm of the (block of the) correlation matrix.
        diag: Its diagonal, shape (d,).
        target: Target of the diagonal (1 for invariance, 0 for decorrelation).
        lambd: Weight of the off-diagonal term.

    Returns:
        ``Σ_i (C_ii - target)² + lambd Σ_{i≠j} C_ij²``.
    """
    on_diag = (diag - target).pow(2).sum()
    off_diag = sq_fro - diag.pow(2).sum()
    return on_diag + lambd * off_diag


def _check_inputs(
    z1_1: Tensor, z1_2: Tensor, z2_1: Tensor, z2_2: Tensor, common_dim: int
) -> None:
    """Raise ``ValueError`` for inputs the loss is not defined on."""
    names = ('z1_1', 'z1_2', 'z2_1', 'z2_2')
    tensors = (z1_1, z1_2, z2_1, z2_2)
    for name, z in zip(names, tensors, strict=True):
        if z.ndim != 2:
            raise ValueError(
                f'{name} must have shape (N, K), got {tuple(z.shape)} ({z.ndim}-D)'
            )
    shapes = {name: tuple(z.shape) for name, z in zip(names, tensors, strict=True)}
    if len(set(shapes.values())) != 1:
        raise ValueError(f'all four embeddings must have the same shape, got {shapes}')
    dim = z1_1.shape[1]
    if isinstance(common_dim, bool) or not isinstance(common_dim, int):
        raise ValueError(f'common_dim must be an int, got {common_dim!r}')
    if not 0 <= common_dim <= dim:
        raise ValueError(
            f'common_dim must be in [0, K] = [0, {dim}] for embeddings of size '
            f'K={dim}, got {common_dim}'
        )


def decur_loss(
    z1_1: Tensor,
    z1_2: Tensor,
    z2_1: Tensor,
    z2_2: Tensor,
    common_dim: int,
    lambd: float = 0.0051,
    weighting: Weighting = 'reference',
    gather_distributed: bool = False,
    eps: float = 1e-5,
    method: Method = 'auto',
) -> DeCURLossOutput:
    """Compute the DeCUR loss and its components.

    Args:
        z1_1: Projector output of modality 1, view 1, shape (N, K).
        z1_2: Projector output of modality 1, view 2, shape (N, K).
        z2_1: Projector output of modality 2, view 1, shape (N, K).
        z2_2: Projector output of modality 2, view 2, shape (N, K).
        common_dim: Number of common dimensions K_c (the first K_c of K), 0 ≤ K_c ≤ K.
        lambd: Weight of the off-diagonal terms (0.0051 in the paper).
        weighting: ``'reference'`` gives the released checkpoints' weighting
            ``(intra1 + intra2 + (common + unique) / 2) / 3``; ``'sum'`` gives the
            paper's plain sum of the four terms.
        gather_distributed: Gather the embeddings of all ranks (differentiably)
            so normalisation and correlation use the global batch.
        eps: Added to the batch variance before normalising.
        method: ``'gram'`` (N×N Gram matrices, O(N²K)), ``'direct'`` (K×K
            correlation matrices, O(NK²)) or ``'auto'`` (Gram when N < block size).

    Returns:
        The total loss and its components; see :class:`DeCURLossOutput`.

    Raises:
        ValueError: If shapes differ or are not 2-D, if ``common_dim`` is outside
            [0, K], if the global batch has fewer than 2 samples, or if
            ``weighting``/``method`` is unknown.
    """
    _check_inputs(z1_1, z1_2, z2_1, z2_2, common_dim)
    if weighting not in ('reference', 'sum'):
        raise ValueError(f"weighting must be 'reference' or 'sum', got {weighting!r}")
    if method not in ('auto', 'gram', 'direct'):
        raise ValueError(f"method must be 'auto', 'gram' or 'direct', got {method!r}")

    stacked = torch.stack([z1_1, z1_2, z2_1, z2_2], dim=1)  # N x 4 x K
    if gather_distributed:
        stacked = gather_batch(stacked)
    # Correlations are computed in (at least) float32 with autocast off: the
    # statistics of an 8192-d embedding do not survive bf16/fp16 accumulation.
    if stacked.dtype in (torch.float16, torch.bfloat16):
        stacked = stacked.float()
    with torch.autocast(stacked.device.type, enabled=False):
        return _decur_from_stacked(stacked, common_dim, lambd, weighting, eps, method)


def _decur_from_stacked(
    stacked: Tensor,
    common_dim: int,
    lambd: float,
    weighting: Weighting,
    eps: float,
    method: Method,
) -> DeCURLossOutput:
    """Body of :func:`decur_loss` on the (gathered) N x 4 x K embeddings."""
    n = stacked.shape[0]
    if n < 2:
        raise ValueError(
            f'the DeCUR loss needs a (global) batch of at least 2 samples, got {n}'
        )
    a1, a2, b1, b2 = (batch_standardize(z, eps) for z in stacked.unbind(dim=1))
    dim = a1.shape[1]

    def use_gram(block: int) -> bool:
        return method == 'gram' or (method == 'auto' and n < block)

    # Intra-modal Barlow Twins over all K dimensions.
    intra = []
    for x, y in ((a1, a2), (b1, b2)):
        diag = (x * y).sum(dim=0) / n
        sq_fro = _squared_frobenius(x, y, use_gram(dim)) / n**2
        intra.append(_barlow_terms(sq_fro, diag, 1.0, lambd))

    # Cross-modal (view 1 of each modality): common block → identity, unique → 0.
    # The common x unique off-diagonal blocks are deliberately unconstrained.
    cross_diag = (a1 * b1).sum(dim=0) / n
    zero = stacked.new_zeros(())
    blocks = []
    for start, stop, target in ((0, common_dim, 1.0), (common_dim, dim, 0.0)):
        if stop == start:
            blocks.append((zero, zero))
            continue
        x, y = a1[:, start:stop], b1[:, start:stop]
        sq_fro = _squared_frobenius(x, y, use_gram(stop - start)) / n**2
        diag = cross_diag[start:stop]
        blocks.append(
            (_barlow_terms(sq_fro, diag, target, lambd), diag.detach().mean())
        )
    (common, common_diag), (unique, unique_diag) = blocks

    if weighting == 'reference':
        total = (intra[0] + intra[1] + (common + unique) / 2) / 3
    else:
        total = intra[0] + intra[1] + common + unique
    return DeCURLossOutput(
        total, intra[0], intra[1], common, unique, common_diag, unique_diag
    )


class DeCURLoss(nn.Module):
    """DeCUR loss as a module; :meth:`forward` returns the scalar total.

    See :func:`decur_loss` for the definition and the arguments.
    """

    def __init__(
        self,
        common_dim: int,
        lambd: float = 0.0051,
        gather_distributed: bool = False,
        weighting: Weighting = 'reference',
        eps: float = 1e-5,
        method: Method = 'auto',
    ) -> None:
        """Initialize a new DeCURLoss instance.

        Args:
            common_dim: Number of common dimensions (the first ``common_dim`` of K).
            lambd: Weight of the off-diagonal terms.
            gather_distributed: Normalise and correlate over the global batch.
            weighting: ``'reference'`` (released checkpoints) or ``'sum'`` (paper).
            eps: Added to the batch variance before normalising.
            method: ``'auto'``, ``'gram'`` or ``'direct'``; see :func:`decur_loss`.

        Raises:
            ValueError: If ``common_dim`` is negative.
        """
        super().__init__()
        if common_dim < 0:
            raise ValueError(f'common_dim must be >= 0, got {common_dim}')
        self.common_dim = common_dim
        self.lambd = lambd
        self.gather_distributed = gather_distributed
        self.weighting: Weighting = weighting
        self.eps = eps
        self.method: Method = method

    def components(
        self, z1_1: Tensor, z1_2: Tensor, z2_1: Tensor, z2_2: Tensor
    ) -> DeCURLossOutput:
        """Compute the total loss and its components.

        Args:
            z1_1: Modality 1, view 1, shape (N, K).
            z1_2: Modality 1, view 2, shape (N, K).
            z2_1: Modality 2, view 1, shape (N, K).
            z2_2: Modality 2, view 2, shape (N, K).

        Returns:
            See :class:`DeCURLossOutput`.
        """
        return decur_loss(
            z1_1,
            z1_2,
            z2_1,
            z2_2,
            common_dim=self.common_dim,
            lambd=self.lambd,
            weighting=self.weighting,
            gather_distributed=self.gather_distributed,
            eps=self.eps,
            method=self.method,
        )

    def forward(self, z1_1: Tensor, z1_2: Tensor, z2_1: Tensor, z2_2: Tensor) -> Tensor:
        """Compute the total DeCUR loss.

        Args:
            z1_1: Modality 1, view 1, shape (N, K).
            z1_2: Modality 1, view 2, shape (N, K).
            z2_1: Modality 2, view 1, shape (N, K).
            z2_2: Modality 2, view 2, shape (N, K).

        Returns:
            Scalar loss.
        """
        return self.components(z1_1, z1_2, z2_1, z2_2).total
