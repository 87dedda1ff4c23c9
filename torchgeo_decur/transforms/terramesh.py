"""Input scaling of TerraMesh modalities: per-band statistics and per-version scaling."""

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .normalize import (
    SSL4EO_S12_S1_MEAN,
    SSL4EO_S12_S1_STD,
    SSL4EO_S12_S2_BANDS,
    SSL4EO_S12_S2_MEAN,
    SSL4EO_S12_S2_STD,
    SSL4EO_S12_S2A_BANDS,
)
from .statistics import BandStats

_L2A = [SSL4EO_S12_S2_BANDS.index(b) for b in SSL4EO_S12_S2A_BANDS]

#: Per-band ``{'mean': [...], 'std': [...]}`` in raw units for the ``'decur'`` scaling. S-1 GRD and S-2
#: L1C come from SSL4EO-S12 (the scaling the DeCUR checkpoints were trained with);
#: so do ``s1``/``s2`` folders written from SSL4EO-S12 by ``torchgeo-decur
#: shards``. The TerraMesh-only products use the statistics published with the
#: dataset (``terramesh_statistics.yaml``). Land cover is categorical and has none.
TERRAMESH_STATISTICS: dict[str, BandStats] = {
    'S1GRD': {'mean': list(SSL4EO_S12_S1_MEAN), 'std': list(SSL4EO_S12_S1_STD)},
    's1': {'mean': list(SSL4EO_S12_S1_MEAN), 'std': list(SSL4EO_S12_S1_STD)},
    'S2L1C': {'mean': list(SSL4EO_S12_S2_MEAN), 'std': list(SSL4EO_S12_S2_STD)},
    's2': {'mean': list(SSL4EO_S12_S2_MEAN), 'std': list(SSL4EO_S12_S2_STD)},
    's2a': {
        'mean': [SSL4EO_S12_S2_MEAN[i] for i in _L2A],
        'std': [SSL4EO_S12_S2_STD[i] for i in _L2A],
    },
    'S1RTC': {'mean': [-10.93, -17.329], 'std': [4.391, 4.459]},
    'S2L2A': {
        'mean': [
            1390.461,
            1503.332,
            1718.211,
            1853.926,
            2199.116,
            2779.989,
            2987.025,
            3083.248,
            3132.235,
            3162.989,
            2424.902,
            1857.665,
        ],
        'std': [
            2131.157,
            2163.666,
            2059.311,
            2152.477,
            2105.179,
            1912.773,
            1842.326,
            1893.568,
            1775.656,
            1814.907,
            1436.282,
            1336.155,
        ],
    },
    'S2RGB': {'mean': [110.349, 99.507, 75.843], 'std': [69.905, 53.708, 53.378]},
    'NDVI': {'mean': [0.327], 'std': [0.322]},
    'DEM': {'mean': [651.663], 'std': [928.168]},
}


class VersionedNormalize(nn.Module):
    """ClipNormalize per modality, chosen per sample by the folder it came from.

    A modality given as alternatives (``'S1GRD|S1RTC'``) mixes samples of both
    versions in one batch; ``version_<name>`` (N,) says which, and each sample is
    scaled with its own version's statistics. Works on the batch on the device.
    """

    def __init__(self, scalers: Mapping[str, Sequence[nn.Module | None]]) -> None:
        """Initialize a new VersionedNormalize instance.

        Args:
            scalers: Output name -> one scaler per version (None: leave raw, only
                cast to float).
        """
        super().__init__()
        self.names = list(scalers)
        self.scalers = nn.ModuleDict(
            {
                f'{name}_{i}': s
                for name, versions in scalers.items()
                for i, s in enumerate(versions)
                if s is not None
            }
        )
        self.counts = {name: len(v) for name, v in scalers.items()}

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Scale every ``image_<name>`` of the batch.

        Args:
            batch: ``{'image_<name>': (N, C, H, W), 'version_<name>': (N,), ...}``.

        Returns:
            A new batch with float images.

        Raises:
            ValueError: If a modality is missing from the batch.
        """
        out = dict(batch)
        for name in self.names:
            key = f'image_{name}'
            if key not in batch:
                raise ValueError(f'batch has no {key!r}; it has {sorted(batch)}')
            x: Tensor = batch[key]
            versions = batch.get(f'version_{name}')
            if versions is None or self.counts[name] == 1:
                versions = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            y = x.float()
            for i in range(self.counts[name]):
                scaler = (
                    self.scalers[f'{name}_{i}']
                    if f'{name}_{i}' in self.scalers
                    else None
                )
                if scaler is None:
                    continue
                mask = versions == i
                if bool(mask.any()):
                    y = torch.where(mask[:, None, None, None], scaler(x.float()), y)
            out[key] = y
        return out


__all__ = ('TERRAMESH_STATISTICS', 'VersionedNormalize')
