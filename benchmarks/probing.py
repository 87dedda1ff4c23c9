"""Frozen-feature evaluation: stratified k-fold kNN and linear probes, effective rank.

For tiny labelled sets (tens of samples per class) such as the EuroSAT subset. The
kNN classifier is lightly's ``knn_predict`` (similarity-weighted vote). The linear
probe is a full-batch multinomial logistic regression fitted with L-BFGS, written
here because the project has no scikit-learn dependency and lightly's
``LinearClassifier`` is a mini-batch Lightning module meant for large sets.
"""

import torch
import torch.nn.functional as F
from lightly.utils.benchmarking import knn_predict
from torch import Tensor


def stratified_folds(labels: Tensor, folds: int, seed: int) -> list[Tensor]:
    """Split sample indices into ``folds`` test folds with balanced classes.

    Args:
        labels: Class index per sample, shape (N,).
        folds: Number of folds (≤ the smallest class size).
        seed: Seed of the per-class shuffles.

    Returns:
        ``folds`` index tensors that partition range(N).

    Raises:
        ValueError: If a class has fewer samples than ``folds``.
    """
    g = torch.Generator().manual_seed(seed)
    parts: list[list[Tensor]] = [[] for _ in range(folds)]
    for c in labels.unique():
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < folds:
            raise ValueError(
                f'class {int(c)} has {len(idx)} samples, fewer than {folds} folds'
            )
        idx = idx[torch.randperm(len(idx), generator=g)]
        for f, chunk in enumerate(torch.tensor_split(idx, folds)):
            parts[f].append(chunk)
    return [torch.cat(p) for p in parts]


def fit_logistic_regression(
    x: Tensor, y: Tensor, num_classes: int, weight_decay: float, iters: int = 100
) -> tuple[Tensor, Tensor]:
    """Multinomial logistic regression with an L2 penalty on the weights.

    Args:
        x: Standardised features (N, D).
        y: Class indices (N,).
        num_classes: Number of classes C.
        weight_decay: Coefficient of ``||W||²``.
        iters: L-BFGS iterations.

    Returns:
        Weights (D, C) and bias (C,).
    """
    w = torch.zeros(x.shape[1], num_classes, dtype=x.dtype, requires_grad=True)
    b = torch.zeros(num_classes, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=iters, history_size=10, line_search_fn='strong_wolfe'
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


@torch.no_grad()
def probe(
    features: Tensor,
    labels: Tensor,
    folds: int = 5,
    seed: int = 0,
    knn_k: int = 5,
    knn_t: float = 0.1,
    weight_decay: float = 1e-2,
) -> dict[str, float]:
    """Cross-validated kNN and linear-probe top-1 accuracy of frozen features.

    Args:
        features: Pooled features (N, D).
        labels: Class indices (N,).
        folds: Number of stratified folds; each sample is tested once.
        seed: Seed of the fold split.
        knn_k: Neighbours of the kNN vote.
        knn_t: Temperature of the kNN similarity weights.
        weight_decay: L2 penalty of the linear probe.

    Returns:
        ``knn_top1`` and ``linear_top1`` (fractions of correctly classified
        held-out samples).
    """
    features = features.double()
    num_classes = int(labels.max()) + 1
    knn_correct = linear_correct = 0
    for test in stratified_folds(labels, folds, seed):
        train = torch.ones(len(labels), dtype=torch.bool)
        train[test] = False
        bank = F.normalize(features[train], dim=1)
        query = F.normalize(features[test], dim=1)
        pred = knn_predict(query, bank.T, labels[train], num_classes, knn_k, knn_t)
        knn_correct += int((pred[:, 0] == labels[test]).sum())

        mean = features[train].mean(0)
        std = features[train].std(0) + 1e-6
        with torch.enable_grad():
            w, b = fit_logistic_regression(
                (features[train] - mean) / std, labels[train], num_classes, weight_decay
            )
        logits = ((features[test] - mean) / std) @ w + b
        linear_correct += int((logits.argmax(1) == labels[test]).sum())
    n = len(labels)
    return {'knn_top1': knn_correct / n, 'linear_top1': linear_correct / n}


@torch.no_grad()
def effective_rank(features: Tensor) -> float:
    """Effective rank (exp of the entropy of the singular-value distribution).

    Roy & Vetterli (2007). 1 for features that vary along one direction only
    (collapse), up to min(N, D) for isotropic features.

    Args:
        features: Features (N, D), centred here.

    Returns:
        The effective rank.
    """
    x = features.double() - features.double().mean(0)
    s = torch.linalg.svdvals(x)
    if float(s.sum()) == 0.0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))
