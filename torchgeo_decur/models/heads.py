"""Projector heads for the joint-embedding methods."""

import itertools
from collections.abc import Sequence

from torch import nn


class Projector(nn.Sequential):
    """MLP projector of DeCUR / Barlow Twins.

    ``Linear(bias=False) → BatchNorm1d → ReLU`` for every hidden layer and a final
    ``Linear(bias=False)``. The module indices (``0.weight``, ``1.*``, ``3.weight``,
    ``4.*``, ``6.weight`` for three layers) equal those of the released DeCUR joint
    checkpoints' ``projector1`` / ``projector2``, so their projector weights load
    without renaming. (lightly's ``BarlowTwinsProjectionHead`` nests the layers under
    ``layers.`` and uses biased Linear layers, so it cannot load those files.)
    """

    def __init__(self, input_dim: int, dims: Sequence[int] = (8192, 8192, 8192)):
        """Initialize a new Projector instance.

        Args:
            input_dim: Size D of the backbone's pooled features.
            dims: Output size of every Linear layer; the last entry is the embedding
                size K.

        Raises:
            ValueError: If ``dims`` is empty or holds a non-positive size.
        """
        if len(dims) == 0 or any(d <= 0 for d in dims):
            raise ValueError(f'projector dims must be positive sizes, got {list(dims)}')
        layers: list[nn.Module] = []
        sizes = [input_dim, *dims]
        for i, (d_in, d_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(d_in, d_out, bias=False))
            if i < len(dims) - 1:
                layers += [nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
        super().__init__(*layers)
        self.input_dim = input_dim
        self.output_dim = dims[-1]
