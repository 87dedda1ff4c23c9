"""Independent transcription of the DeCUR loss with explicit K x K matrices.

Written from the paper's definition and the reference code's, deliberately naively: full
correlation matrices, explicit identity targets and off-diagonal masks, float64.
"""

import torch
from torch import Tensor


def normalise(z: Tensor, eps: float = 1e-5) -> Tensor:
    """Batch-normalise columns: mean 0, biased variance 1 (+eps)."""
    z = z.double()
    n = z.shape[0]
    mean = z.sum(0) / n
    var = ((z - mean) ** 2).sum(0) / n
    return (z - mean) / torch.sqrt(var + eps)


def correlation(a: Tensor, b: Tensor, eps: float = 1e-5) -> Tensor:
    """K x K cross-correlation of two (N, K) embeddings."""
    return normalise(a, eps).T @ normalise(b, eps) / a.shape[0]


def barlow(c: Tensor, diag_target: float, lambd: float) -> Tensor:
    """Sum over (C - T)^2 with T = diag_target * I, off-diagonals weighted lambd."""
    k = c.shape[0]
    eye = torch.eye(k, dtype=c.dtype)
    target = diag_target * eye
    weight = eye + lambd * (1 - eye)
    return (weight * (c - target) ** 2).sum()


def decur_reference(
    z1_1: Tensor,
    z1_2: Tensor,
    z2_1: Tensor,
    z2_2: Tensor,
    common_dim: int,
    lambd: float = 0.0051,
    weighting: str = 'reference',
    eps: float = 1e-5,
) -> dict[str, Tensor]:
    """The DeCUR loss terms, computed the slow and obvious way."""
    intra1 = barlow(correlation(z1_1, z1_2, eps), 1.0, lambd)
    intra2 = barlow(correlation(z2_1, z2_2, eps), 1.0, lambd)
    cross = correlation(z1_1, z2_1, eps)
    common = barlow(cross[:common_dim, :common_dim], 1.0, lambd)
    unique = barlow(cross[common_dim:, common_dim:], 0.0, lambd)
    if weighting == 'reference':
        total = (intra1 + intra2 + (common + unique) / 2) / 3
    else:
        total = intra1 + intra2 + common + unique
    return {
        'total': total,
        'intra1': intra1,
        'intra2': intra2,
        'common': common,
        'unique': unique,
    }
