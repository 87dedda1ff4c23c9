"""Helpers shared by the downstream data modules."""

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def sample_fraction(length: int, fraction: float, seed: int) -> list[int]:
    """Indices of a random label fraction, drawn WITHOUT replacement.

    The reference code drew its 1 % subsets with ``numpy.random.choice`` and its
    default ``replace=True``, so a "1 %" subset held duplicates and fewer distinct
    samples. Here every index appears at most once.

    Args:
        length: Size N of the full training set.
        fraction: Share of samples to keep, in (0, 1]; ``floor(fraction * N)``
            samples are kept (at least one).
        seed: Seed of the draw; the same seed gives the same subset.

    Returns:
        Sorted distinct indices (all of ``range(N)`` for ``fraction=1``).

    Raises:
        ValueError: If ``fraction`` is outside (0, 1] or the set is empty.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f'train_fraction must be in (0, 1], got {fraction}')
    if length < 1:
        raise ValueError('cannot draw a label fraction from an empty training set')
    if fraction == 1:
        return list(range(length))
    # floor(fraction * N) as the reference, but 0.29 * 100 = 28.999... is 29:
    # round away float noise before flooring.
    count = max(1, math.floor(round(fraction * length, 6)))
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(length, generator=generator)[:count]
    return sorted(chosen.tolist())


class RenameKeys(nn.Module):
    """Rename entries of a sample/batch dictionary (e.g. ``image_s1`` → ``image``).

    Lets single-modality batches feed torchgeo's own tasks, which read ``image``.
    """

    def __init__(self, names: Mapping[str, str]) -> None:
        """Initialize a new RenameKeys instance.

        Args:
            names: Map from old to new key.
        """
        super().__init__()
        self.names = dict(names)

    def forward(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Rename the keys.

        Args:
            sample: Sample or batch dictionary.

        Returns:
            A new dictionary with the keys renamed.

        Raises:
            ValueError: If an old key is missing or a new key already exists.
        """
        out = dict(sample)
        for old, new in self.names.items():
            if old not in out:
                raise ValueError(f'sample has no key {old!r}; it has {sorted(out)}')
            if new in out:
                raise ValueError(f'sample already has a key {new!r}')
            out[new] = out.pop(old)
        return out
