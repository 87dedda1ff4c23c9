"""DeCUR loss: decoupling common and unique representations of M >= 2 modalities.

Reference: Wang et al., "Decoupling Common and Unique Representations for
Multimodal Self-supervised Learning", ECCV 2024, https://arxiv.org/abs/2309.05300.

Every term is a Barlow Twins objective on (a block of) a cross-correlation matrix
``C = Â^T B̂ / N`` of batch-normalised embeddings. Those terms only need the
diagonal of ``C`` and its squared Frobenius norm, and

* ``diag(C)_k = Σ_n Â_nk B̂_nk / N``   (O(N·K)),
* ``‖C‖_F² = Σ_{n,m} (Â Â^T)_{nm} (B̂ B̂^T)_{nm} / N²``   (O(N²·K), no K×K tensor),

so for the usual N < K (256 vs 8192) the loss is computed from N×N Gram matrices
instead of the three K×K matrices of the reference code. The Gram matrices of
view 1 of each modality are formed once per column block (common, unique) and
serve both the cross-modal blocks and, summed, the intra-modal term. For N ≥ K the
direct K×K form is cheaper and is used instead; both give the same value and
gradients (``benchmarks/decur_loss.py`` measures time, memory and equality).

One implementation serves any number of modalities: :func:`decur_loss` (two
modalities, the paper's setting) is :func:`decur_loss_multi` with M = 2.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .common import check_choice, check_non_negative, check_positive, global_batch

Weighting = Literal['reference', 'sum']
Method = Literal['auto', 'gram', 'direct']
WEIGHTINGS: tuple[Weighting, ...] = ('reference', 'sum')
METHODS: tuple[Method, ...] = ('auto', 'gram', 'direct')


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


class DeCURMultiLossOutput(NamedTuple):
    """Components of the DeCUR loss for M >= 2 modalities (all scalars).

    Pairs ``(i, j)`` are 0-based modality positions with ``i < j``, in the order
    ``(0, 1), (0, 2), ..., (1, 2), ...``.

    Attributes:
        total: Weighted total loss that is optimised.
        intra: Barlow Twins loss between the two views of each modality.
        common: Per pair, the cross-modal loss on the common block (diagonal → 1).
        unique: Per pair, the cross-modal loss on the unique block (diagonal → 0).
        common_diag: Per pair, mean diagonal of the common block, detached.
        unique_diag: Per pair, mean diagonal of the unique block, detached.
    """

    total: Tensor
    intra: tuple[Tensor, ...]
    common: dict[tuple[int, int], Tensor]
    unique: dict[tuple[int, int], Tensor]
    common_diag: dict[tuple[int, int], Tensor]
    unique_diag: dict[tuple[int, int], Tensor]


class _Standardize(torch.autograd.Function):
    """Column standardisation over the batch with a hand-written backward pass.

    Written as a Function rather than reused from ``F.batch_norm`` or composed from
    tensor ops because, for embeddings shaped (N, K) = (256, 8192), torch's CPU
    batch-norm kernel is ~4x slower than this (and ``F.batch_norm`` refuses
    ``eps=0`` in training mode), while the composed formula keeps ``z - mean`` and
    other N x K intermediates alive for autograd. Here only the output (which the
    loss needs anyway) and the per-column scale are saved, and the backward pass is
    the closed form ``dz = r (g - mean(g) - x̂ mean(g x̂))`` with
    ``r = 1 / sqrt(var + eps)``.
    """

    @staticmethod
    def forward(ctx: Any, z: Tensor, eps: float) -> Tensor:
        out = z - z.mean(dim=0)
        # Two-pass variance; ~10x faster on CPU than torch.var_mean's column-wise
        # Welford reduction for this shape.
        rstd = ((out * out).mean(dim=0) + eps).rsqrt()
        out.mul_(rstd)
        ctx.save_for_backward(out, rstd)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        out, rstd = ctx.saved_tensors
        mean_gx = (grad * out).mean(dim=0)
        dz = grad - grad.mean(dim=0)
        dz.addcmul_(out, mean_gx, value=-1.0).mul_(rstd)
        return dz, None


def batch_standardize(z: Tensor, eps: float = 1e-5) -> Tensor:
    """Standardise each column over the batch like ``BatchNorm1d(affine=False)``.

    Args:
        z: Embeddings of shape (N, K).
        eps: Added to the biased variance before the square root.

    Returns:
        ``(z - mean) / sqrt(var + eps)`` with mean and biased variance over N.
    """
    out: Tensor = _Standardize.apply(z, eps)
    return out


class _BlockGram(torch.autograd.Function):
    """Gram matrices ``x[:, :s] x[:, :s]^T`` and ``x[:, s:] x[:, s:]^T`` (N x N).

    Written as a Function (rather than two ``x @ x.T`` products) because autograd
    treats ``x`` and ``x.T`` as independent operands: it would run two N x N x d
    products per Gram in the backward pass where one suffices
    (``dx = (dG + dG^T) x``), and it would allocate a zero-filled N x K gradient
    for each column slice. Here the backward pass writes both blocks of ``dx`` in
    one tensor.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, split: int) -> tuple[Tensor, Tensor]:
        ctx.save_for_backward(x)
        ctx.split = split
        first, second = x[:, :split], x[:, split:]
        return first @ first.T, second @ second.T

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_first: Tensor, d_second: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        split = ctx.split
        dx = torch.empty_like(x)
        for grad, cols in ((d_first, slice(0, split)), (d_second, slice(split, None))):
            block = x[:, cols]
            if block.shape[1] == 0:
                continue
            dx[:, cols] = (grad + grad.T) @ block
        return dx, None


def _block_gram(x: Tensor, split: int) -> tuple[Tensor, Tensor]:
    """Gram matrices of the first ``split`` columns of x (N, K) and of the rest."""
    first, second = _BlockGram.apply(x, split)
    return first, second


def correlation_stats(a: Tensor, b: Tensor, method: Method) -> tuple[Tensor, Tensor]:
    """Diagonal and squared Frobenius norm of ``C = a^T b / N``.

    Args:
        a: Batch-standardised embeddings (N, d).
        b: Batch-standardised embeddings (N, d), row i paired with row i of ``a``.
        method: ``'gram'`` (N x N Gram matrices, O(N²d)), ``'direct'`` (the
            d x d matrix, O(Nd²)) or ``'auto'`` (Gram when N < d).

    Returns:
        ``diag(C)`` of shape (d,) and ``‖C‖_F²`` (scalar).
    """
    n, d = a.shape
    diag = (a * b).sum(dim=0) / n
    if _uses_gram(method, n, d):
        gram_a, _ = _block_gram(a, d)
        gram_b, _ = _block_gram(b, d)
        sq_fro = (gram_a * gram_b).sum()
    else:
        sq_fro = (a.T @ b).pow(2).sum()
    return diag, sq_fro / n**2


def barlow_objective(
    sq_fro: Tensor, diag: Tensor, target: float, lambd: float
) -> Tensor:
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


def _uses_gram(method: Method, n: int, k: int) -> bool:
    """Whether ``method`` uses N x N Gram matrices for N samples of size K."""
    return method == 'gram' or (method == 'auto' and n < k)


def _modality_views(views: Sequence[Sequence[Tensor]]) -> dict[str, Tensor]:
    """Name the views of M >= 2 modalities, checking there are two per modality."""
    pairs = [tuple(v) for v in views]
    if len(pairs) < 2:
        raise ValueError(
            f'the DeCUR loss needs at least two modalities, got {len(pairs)}'
        )
    bad = [i for i, v in enumerate(pairs) if len(v) != 2]
    if bad:
        raise ValueError(
            f'every modality needs exactly two views (view 1, view 2); modalities at '
            f'positions {bad} have {[len(pairs[i]) for i in bad]}'
        )
    return {
        f'modality {m} view {v + 1}': z
        for m, pair in enumerate(pairs)
        for v, z in enumerate(pair)
    }


def _decur_terms(
    zs: tuple[Tensor, ...],
    common_dim: int,
    lambd: float,
    weighting: Weighting,
    eps: float,
    method: Method,
) -> DeCURMultiLossOutput:
    """Every term of the loss from the global batch (see :func:`decur_loss_multi`).

    ``zs`` holds view 1 and view 2 of modality 0, then of modality 1, ...
    """
    n, dim = zs[0].shape
    std = [batch_standardize(z, eps) for z in zs]
    first, second = std[0::2], std[1::2]
    count = len(first)
    c = common_dim
    pairs = [(i, j) for i in range(count) for j in range(i + 1, count)]
    scale = 1.0 / n**2
    # Diagonals of the intra-modal correlation matrices, O(N·K) each.
    intra_diag = [
        (a1 * a2).sum(dim=0) / n for a1, a2 in zip(first, second, strict=True)
    ]
    # Squared Frobenius norms of the intra-modal matrices and of the common and
    # unique diagonal blocks of each cross-modal one. The common x unique
    # off-diagonal blocks of the cross-modal matrices are deliberately
    # unconstrained.
    sq_intra: list[Tensor] = []
    sq_cross: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
    if _uses_gram(method, n, dim):
        # ‖X^T Y‖² = Σ (X X^T) ∘ (Y Y^T). The Gram matrices of view 1 per column
        # block are computed once per modality and shared: their sum gives its
        # intra term, the blocks all of its pairs' cross terms.
        grams = [_block_gram(a1, c) for a1 in first]
        for (g_c, g_u), a2 in zip(grams, second, strict=True):
            g2, _ = _block_gram(a2, dim)
            sq_intra.append(((g_c + g_u) * g2).sum())
        for i, j in pairs:
            sq_cross[i, j] = (
                (grams[i][0] * grams[j][0]).sum(),
                (grams[i][1] * grams[j][1]).sum(),
            )
    else:
        # K x K form, cheaper once N >= K; only the two diagonal blocks of each
        # cross-modal matrix are formed.
        for a1, a2 in zip(first, second, strict=True):
            sq_intra.append((a1.T @ a2).pow(2).sum())
        for i, j in pairs:
            a, b = first[i], first[j]
            sq_cross[i, j] = (
                (a[:, :c].T @ b[:, :c]).pow(2).sum(),
                (a[:, c:].T @ b[:, c:]).pow(2).sum(),
            )
    intra = tuple(
        barlow_objective(sq * scale, diag, 1.0, lambd)
        for sq, diag in zip(sq_intra, intra_diag, strict=True)
    )
    zero = first[0].new_zeros(())
    common: dict[tuple[int, int], Tensor] = {}
    unique: dict[tuple[int, int], Tensor] = {}
    common_diag: dict[tuple[int, int], Tensor] = {}
    unique_diag: dict[tuple[int, int], Tensor] = {}
    for i, j in pairs:
        cross_diag = (first[i] * first[j]).sum(dim=0) / n
        for out, out_diag, sq_fro, cols, target in (
            (common, common_diag, sq_cross[i, j][0], slice(0, c), 1.0),
            (unique, unique_diag, sq_cross[i, j][1], slice(c, dim), 0.0),
        ):
            diag = cross_diag[cols]
            if diag.numel() == 0:
                out[i, j], out_diag[i, j] = zero, zero
                continue
            out[i, j] = barlow_objective(sq_fro * scale, diag, target, lambd)
            out_diag[i, j] = diag.detach().mean()

    # For M = 2: (intra1 + intra2 + (common + unique) / 2) / 3.
    total = intra[0]
    for term in intra[1:]:
        total = total + term
    for p in pairs:
        if weighting == 'reference':
            total = total + (common[p] + unique[p]) / 2
        else:
            total = total + common[p] + unique[p]
    if weighting == 'reference':
        total = total / (count + len(pairs))
    return DeCURMultiLossOutput(total, intra, common, unique, common_diag, unique_diag)


class DeCURLoss(nn.Module):
    """DeCUR loss of M >= 2 modalities; :meth:`forward` takes two.

    The settings are checked once, here; each call checks only the embeddings.
    See :func:`decur_loss_multi` for the definition.
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
            common_dim: Number of common dimensions K_c (the first K_c of K),
                0 ≤ K_c ≤ K (the upper bound is checked per call).
            lambd: Weight of the off-diagonal terms, ≥ 0 (0.0051 in the paper).
            gather_distributed: Gather the embeddings of all ranks
                (differentiably) so normalisation and correlation use the global
                batch.
            weighting: ``'reference'`` (the released checkpoints' weighting) or
                ``'sum'`` (the paper's plain sum); see :func:`decur_loss_multi`.
            eps: Added to the batch variance before normalising, > 0.
            method: ``'gram'`` (N×N Gram matrices, O(N²K)), ``'direct'`` (K×K
                correlation matrices, O(NK²)) or ``'auto'`` (Gram when N < K).

        Raises:
            ValueError: If ``common_dim`` is not an int ≥ 0, ``lambd`` is
                negative, ``eps`` not positive or ``weighting``/``method``
                unknown.
        """
        super().__init__()
        if isinstance(common_dim, bool) or not isinstance(common_dim, int):
            raise ValueError(f'common_dim must be an int, got {common_dim!r}')
        if common_dim < 0:
            raise ValueError(f'common_dim must be in [0, K], got {common_dim}')
        check_non_negative(lambd=lambd)
        check_positive(eps=eps)
        check_choice('weighting', weighting, WEIGHTINGS)
        check_choice('method', method, METHODS)
        self.common_dim = common_dim
        self.lambd = lambd
        self.gather_distributed = gather_distributed
        self.weighting: Weighting = weighting
        self.eps = eps
        self.method: Method = method

    def multimodal(self, views: Sequence[Sequence[Tensor]]) -> DeCURMultiLossOutput:
        """Compute the loss of M >= 2 modalities and its components.

        Args:
            views: For each modality, in order, its two projector outputs
                ``(view 1, view 2)``, each (N, K).

        Returns:
            See :class:`DeCURMultiLossOutput`.

        Raises:
            ValueError: For fewer than two modalities, a modality without exactly
                two views, differing or non-2-D shapes, ``common_dim`` > K or a
                global batch below 2.
        """
        return self._loss(_modality_views(views))

    def components(
        self, z1_1: Tensor, z1_2: Tensor, z2_1: Tensor, z2_2: Tensor
    ) -> DeCURLossOutput:
        """Compute the loss of two modalities and its components.

        Args:
            z1_1: Modality 1, view 1, shape (N, K).
            z1_2: Modality 1, view 2, shape (N, K).
            z2_1: Modality 2, view 1, shape (N, K).
            z2_2: Modality 2, view 2, shape (N, K).

        Returns:
            :meth:`multimodal`'s components under their two-modality names; see
            :class:`DeCURLossOutput`.
        """
        out = self._loss({'z1_1': z1_1, 'z1_2': z1_2, 'z2_1': z2_1, 'z2_2': z2_2})
        pair = (0, 1)
        return DeCURLossOutput(
            out.total,
            out.intra[0],
            out.intra[1],
            out.common[pair],
            out.unique[pair],
            out.common_diag[pair],
            out.unique_diag[pair],
        )

    def forward(self, z1_1: Tensor, z1_2: Tensor, z2_1: Tensor, z2_2: Tensor) -> Tensor:
        """Compute the total DeCUR loss of two modalities.

        Args:
            z1_1: Modality 1, view 1, shape (N, K).
            z1_2: Modality 1, view 2, shape (N, K).
            z2_1: Modality 2, view 1, shape (N, K).
            z2_2: Modality 2, view 2, shape (N, K).

        Returns:
            Scalar loss.
        """
        return self.components(z1_1, z1_2, z2_1, z2_2).total

    def _loss(self, named: Mapping[str, Tensor]) -> DeCURMultiLossOutput:
        """The loss of view 1 and 2 of modality 0, then of modality 1, ..."""
        with global_batch(named, self.gather_distributed, 'the DeCUR loss') as zs:
            dim = zs[0].shape[1]
            if self.common_dim > dim:
                raise ValueError(
                    f'common_dim must be in [0, K] = [0, {dim}] for embeddings of '
                    f'size K={dim}, got {self.common_dim}'
                )
            return _decur_terms(
                zs, self.common_dim, self.lambd, self.weighting, self.eps, self.method
            )


def decur_loss_multi(
    views: Sequence[Sequence[Tensor]],
    common_dim: int,
    lambd: float = 0.0051,
    weighting: Weighting = 'reference',
    gather_distributed: bool = False,
    eps: float = 1e-5,
    method: Method = 'auto',
) -> DeCURMultiLossOutput:
    """Compute the DeCUR loss of M >= 2 modalities and its components.

    Every modality m contributes its intra-modal term ``intra_m`` (Barlow Twins
    between its two views, all K dims); every pair i < j contributes ``common_ij``
    and ``unique_ij``, the cross terms of view 1 of modalities i and j (the same
    ``common_dim`` split for every pair). With ``weighting='reference'``::

        total = (Σ_m intra_m + Σ_{i<j} (common_ij + unique_ij) / 2) / (M + M(M-1)/2)

    which for M = 2 is the released checkpoints' weighting
    ``(intra1 + intra2 + (common + unique) / 2) / 3``; ``'sum'`` adds all terms
    (the paper's plain sum).

    Args:
        views: For each modality, in order, its two projector outputs
            ``(view 1, view 2)``, each (N, K).
        common_dim: Number of common dimensions K_c (the first K_c of K).
        lambd: Weight of the off-diagonal terms.
        weighting: ``'reference'`` or ``'sum'`` (see above).
        gather_distributed: Normalise and correlate over the global batch.
        eps: Added to the batch variance before normalising, > 0.
        method: ``'gram'``, ``'direct'`` or ``'auto'``; see :class:`DeCURLoss`.

    Returns:
        See :class:`DeCURMultiLossOutput`.

    Raises:
        ValueError: For invalid settings (see :class:`DeCURLoss`) or embeddings
            (see :meth:`DeCURLoss.multimodal`).
    """
    loss = DeCURLoss(common_dim, lambd, gather_distributed, weighting, eps, method)
    return loss.multimodal(views)


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
    """Compute the DeCUR loss of two modalities and its components.

    :func:`decur_loss_multi` with M = 2: the total is the released checkpoints'
    ``(intra1 + intra2 + (common + unique) / 2) / 3`` (``weighting='reference'``)
    or the paper's plain sum of the four terms (``'sum'``).

    Args:
        z1_1: Projector output of modality 1, view 1, shape (N, K).
        z1_2: Projector output of modality 1, view 2, shape (N, K).
        z2_1: Projector output of modality 2, view 1, shape (N, K).
        z2_2: Projector output of modality 2, view 2, shape (N, K).
        common_dim: Number of common dimensions K_c (the first K_c of K).
        lambd: Weight of the off-diagonal terms.
        weighting: ``'reference'`` or ``'sum'``.
        gather_distributed: Normalise and correlate over the global batch.
        eps: Added to the batch variance before normalising, > 0.
        method: ``'gram'``, ``'direct'`` or ``'auto'``; see :class:`DeCURLoss`.

    Returns:
        The total loss and its components; see :class:`DeCURLossOutput`.

    Raises:
        ValueError: For invalid settings (see :class:`DeCURLoss`), embeddings
            that are not 2-D or differ in shape, ``common_dim`` > K or a global
            batch below 2.
    """
    loss = DeCURLoss(common_dim, lambd, gather_distributed, weighting, eps, method)
    return loss.components(z1_1, z1_2, z2_1, z2_2)
