"""DeCUR loss: decoupling common and unique representations of two modalities.

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
"""

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .common import check_non_negative, check_positive
from .distributed import gather_batch, is_distributed

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


def correlation_stats(a: Tensor, b: Tensor, use_gram: bool) -> tuple[Tensor, Tensor]:
    """Diagonal and squared Frobenius norm of ``C = a^T b / N``.

    Args:
        a: Batch-standardised embeddings (N, d).
        b: Batch-standardised embeddings (N, d), row i paired with row i of ``a``.
        use_gram: Use N x N Gram matrices (O(N²d), for N < d) instead of forming
            the d x d matrix.

    Returns:
        ``diag(C)`` of shape (d,) and ``‖C‖_F²`` (scalar).
    """
    n, d = a.shape
    diag = (a * b).sum(dim=0) / n
    if use_gram:
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
        eps: Added to the batch variance before normalising, > 0.
        method: ``'gram'`` (N×N Gram matrices, O(N²K)), ``'direct'`` (K×K
            correlation matrices, O(NK²)) or ``'auto'`` (Gram when N < K).

    Returns:
        The total loss and its components; see :class:`DeCURLossOutput`.

    Raises:
        ValueError: If shapes differ or are not 2-D, if ``common_dim`` is outside
            [0, K], if the global batch has fewer than 2 samples, if ``lambd`` is
            negative or ``eps`` not positive, or if ``weighting``/``method`` is
            unknown.
    """
    _check_inputs(z1_1, z1_2, z2_1, z2_2, common_dim)
    check_non_negative(lambd=lambd)
    check_positive(eps=eps)
    if weighting not in ('reference', 'sum'):
        raise ValueError(f"weighting must be 'reference' or 'sum', got {weighting!r}")
    if method not in ('auto', 'gram', 'direct'):
        raise ValueError(f"method must be 'auto', 'gram' or 'direct', got {method!r}")

    zs: tuple[Tensor, ...] = (z1_1, z1_2, z2_1, z2_2)
    if gather_distributed and is_distributed():
        # One collective for all four embeddings; without a process group there is
        # nothing to gather and no reason to copy them into a stack.
        zs = tuple(gather_batch(torch.stack(zs, dim=1)).unbind(dim=1))
    # Correlations are computed in (at least) float32 with autocast off: the
    # statistics of an 8192-d embedding do not survive bf16/fp16 accumulation.
    zs = tuple(
        z.float() if z.dtype in (torch.float16, torch.bfloat16) else z for z in zs
    )
    with torch.autocast(zs[0].device.type, enabled=False):
        return _decur_terms(zs, common_dim, lambd, weighting, eps, method)


def _decur_terms(
    zs: tuple[Tensor, ...],
    common_dim: int,
    lambd: float,
    weighting: Weighting,
    eps: float,
    method: Method,
) -> DeCURLossOutput:
    """Body of :func:`decur_loss` on the (gathered) embeddings z1_1, z1_2, z2_1, z2_2."""
    n, dim = zs[0].shape
    if n < 2:
        raise ValueError(
            f'the DeCUR loss needs a (global) batch of at least 2 samples, got {n}'
        )
    a1, a2, b1, b2 = (batch_standardize(z, eps) for z in zs)
    c = common_dim

    # Diagonals of the three correlation matrices, O(N·K) each.
    diag1 = (a1 * a2).sum(dim=0) / n
    diag2 = (b1 * b2).sum(dim=0) / n
    cross_diag = (a1 * b1).sum(dim=0) / n

    # Squared Frobenius norms of C(a1, a2), C(b1, b2) and of the common and unique
    # diagonal blocks of C(a1, b1). The common x unique off-diagonal blocks of the
    # cross-modal matrix are deliberately unconstrained.
    if method == 'gram' or (method == 'auto' and n < dim):
        # ‖X^T Y‖² = Σ (X X^T) ∘ (Y Y^T). The Gram matrices of a1 and b1 are
        # computed per column block once and shared: the blocks give the cross
        # terms and their sum the intra term.
        a1_c, a1_u = _block_gram(a1, c)
        b1_c, b1_u = _block_gram(b1, c)
        a2_g, _ = _block_gram(a2, dim)
        b2_g, _ = _block_gram(b2, dim)
        sq_intra1 = ((a1_c + a1_u) * a2_g).sum()
        sq_intra2 = ((b1_c + b1_u) * b2_g).sum()
        sq_common = (a1_c * b1_c).sum()
        sq_unique = (a1_u * b1_u).sum()
    else:
        # K x K form, cheaper once N >= K; only the two diagonal blocks of the
        # cross-modal matrix are formed.
        sq_intra1 = (a1.T @ a2).pow(2).sum()
        sq_intra2 = (b1.T @ b2).pow(2).sum()
        sq_common = (a1[:, :c].T @ b1[:, :c]).pow(2).sum()
        sq_unique = (a1[:, c:].T @ b1[:, c:]).pow(2).sum()
    scale = 1.0 / n**2
    intra1 = barlow_objective(sq_intra1 * scale, diag1, 1.0, lambd)
    intra2 = barlow_objective(sq_intra2 * scale, diag2, 1.0, lambd)

    zero = a1.new_zeros(())
    blocks = []
    for sq_fro, cols, target in (
        (sq_common, slice(0, c), 1.0),
        (sq_unique, slice(c, dim), 0.0),
    ):
        diag = cross_diag[cols]
        if diag.numel() == 0:
            blocks.append((zero, zero))
            continue
        blocks.append(
            (
                barlow_objective(sq_fro * scale, diag, target, lambd),
                diag.detach().mean(),
            )
        )
    (common, common_diag), (unique, unique_diag) = blocks

    if weighting == 'reference':
        total = (intra1 + intra2 + (common + unique) / 2) / 3
    else:
        total = intra1 + intra2 + common + unique
    return DeCURLossOutput(
        total, intra1, intra2, common, unique, common_diag, unique_diag
    )


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
    ``(intra1 + intra2 + (common + unique) / 2) / 3``; ``'sum'`` adds all terms.
    Each correlation uses the global batch as in :func:`decur_loss`.

    Args:
        views: For each modality, in order, its two projector outputs
            ``(view 1, view 2)``, each (N, K).
        common_dim: Number of common dimensions K_c (the first K_c of K).
        lambd: Weight of the off-diagonal terms.
        weighting: ``'reference'`` or ``'sum'`` (see above).
        gather_distributed: Normalise and correlate over the global batch.
        eps: Added to the batch variance before normalising, > 0.
        method: ``'gram'``, ``'direct'`` or ``'auto'``; see :func:`decur_loss`.

    Returns:
        See :class:`DeCURMultiLossOutput`.

    Raises:
        ValueError: For fewer than two modalities, a modality without exactly two
            views, differing or non-2-D shapes, ``common_dim`` outside [0, K], a
            global batch below 2, or invalid ``lambd``/``eps``/``weighting``/
            ``method``.
    """
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
    flat = [z for pair in pairs for z in pair]
    for i, z in enumerate(flat):
        if z.ndim != 2:
            raise ValueError(
                f'modality {i // 2} view {i % 2 + 1} must have shape (N, K), got '
                f'{tuple(z.shape)} ({z.ndim}-D)'
            )
    shapes = {tuple(z.shape) for z in flat}
    if len(shapes) != 1:
        raise ValueError(
            'all embeddings must have the same shape, got '
            f'{[[tuple(z.shape) for z in pair] for pair in pairs]}'
        )
    _check_inputs(flat[0], flat[1], flat[2], flat[3], common_dim)
    check_non_negative(lambd=lambd)
    check_positive(eps=eps)
    if weighting not in ('reference', 'sum'):
        raise ValueError(f"weighting must be 'reference' or 'sum', got {weighting!r}")
    if method not in ('auto', 'gram', 'direct'):
        raise ValueError(f"method must be 'auto', 'gram' or 'direct', got {method!r}")
    zs: tuple[Tensor, ...] = tuple(flat)
    if gather_distributed and is_distributed():
        zs = tuple(gather_batch(torch.stack(zs, dim=1)).unbind(dim=1))
    zs = tuple(
        z.float() if z.dtype in (torch.float16, torch.bfloat16) else z for z in zs
    )
    with torch.autocast(zs[0].device.type, enabled=False):
        return _decur_multi_terms(zs, common_dim, lambd, weighting, eps, method)


def _decur_multi_terms(
    zs: tuple[Tensor, ...],
    common_dim: int,
    lambd: float,
    weighting: Weighting,
    eps: float,
    method: Method,
) -> DeCURMultiLossOutput:
    """Body of :func:`decur_loss_multi` on the (gathered) embeddings.

    ``zs`` holds view 1 and view 2 of modality 0, then of modality 1, ...; the
    operations are those of :func:`_decur_terms`, per modality and per pair.
    """
    n, dim = zs[0].shape
    if n < 2:
        raise ValueError(
            f'the DeCUR loss needs a (global) batch of at least 2 samples, got {n}'
        )
    std = [batch_standardize(z, eps) for z in zs]
    first, second = std[0::2], std[1::2]
    count = len(first)
    c = common_dim
    pairs = [(i, j) for i in range(count) for j in range(i + 1, count)]
    scale = 1.0 / n**2
    intra_diag = [
        (a1 * a2).sum(dim=0) / n for a1, a2 in zip(first, second, strict=True)
    ]
    sq_intra: list[Tensor] = []
    sq_cross: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
    if method == 'gram' or (method == 'auto' and n < dim):
        # Gram matrices of view 1 per column block, computed once per modality and
        # shared by its intra term and all of its pairs (see the module docstring).
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

    # Added one by one in the order of the two-modality formula, so that M = 2
    # gives bit for bit the value of decur_loss.
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
            lambd: Weight of the off-diagonal terms, ≥ 0.
            gather_distributed: Normalise and correlate over the global batch.
            weighting: ``'reference'`` (released checkpoints) or ``'sum'`` (paper).
            eps: Added to the batch variance before normalising, > 0.
            method: ``'auto'``, ``'gram'`` or ``'direct'``; see :func:`decur_loss`.

        Raises:
            ValueError: If ``common_dim`` or ``lambd`` is negative or ``eps`` is
                not positive.
        """
        super().__init__()
        if common_dim < 0:
            raise ValueError(f'common_dim must be >= 0, got {common_dim}')
        check_non_negative(lambd=lambd)
        check_positive(eps=eps)
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

    def multimodal(self, views: Sequence[Sequence[Tensor]]) -> DeCURMultiLossOutput:
        """Compute the loss of M >= 2 modalities and its components.

        Args:
            views: For each modality its two projector outputs (N, K); see
                :func:`decur_loss_multi`.

        Returns:
            See :class:`DeCURMultiLossOutput`.
        """
        return decur_loss_multi(
            views,
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
