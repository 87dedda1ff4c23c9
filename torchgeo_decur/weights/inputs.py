"""The input pipelines of the released DeCUR files, one per modality and dataset.

Each released encoder was trained on inputs scaled in one way; a Weights member
names its pipeline here by key, so its ``meta`` holds only plain values.
"""

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..transforms.normalize import SSL4EO_S12_S1_BANDS, SSL4EO_S12_S2_BANDS
from ..transforms.pretrained import (
    geonrw_dem_transforms,
    geonrw_rgb_transforms,
    ssl4eo_s1_transforms,
    ssl4eo_s2_transforms,
    sunrgbd_transforms,
)


@dataclass(frozen=True)
class ModalityInput:
    """What one encoder of a released file expects as input.

    Attributes:
        name: Modality name (``s1``, ``s2``, ``rgb``, ``dem``, ``hha``).
        bands: Channel names in the order the checkpoint expects (the transform's
            output; for the DEM its input is the one raw channel).
        transforms: Factory of the input scaling (tensor in, tensor out).
        description: One-line summary of the scaling (documentation).
    """

    name: str
    bands: tuple[str, ...]
    transforms: Callable[[], nn.Module]
    description: str


#: The input pipelines of the released files, keyed by a short identifier.
INPUTS: dict[str, ModalityInput] = {
    'ssl4eo_s1_old': ModalityInput(
        's1',
        SSL4EO_S12_S1_BANDS,
        lambda: ssl4eo_s1_transforms('old'),
        'dB; 1-99 % clip pooled over bands, then mean±2σ → [0, 1]; resize 256, crop 224',
    ),
    'ssl4eo_s1': ModalityInput(
        's1',
        SSL4EO_S12_S1_BANDS,
        lambda: ssl4eo_s1_transforms('main'),
        'dB; per-band mean±2σ → [0, 1]; resize 256, crop 224',
    ),
    'ssl4eo_s2_old': ModalityInput(
        's2',
        SSL4EO_S12_S2_BANDS,
        lambda: ssl4eo_s2_transforms('old'),
        'DN; clip(DN / 10000, 0, 1) (most likely, unverified); resize 256, crop 224',
    ),
    'ssl4eo_s2': ModalityInput(
        's2',
        SSL4EO_S12_S2_BANDS,
        lambda: ssl4eo_s2_transforms('main'),
        'DN; per-band mean±2σ → [0, 1]; resize 256, crop 224',
    ),
    'geonrw_rgb': ModalityInput(
        'rgb', ('B', 'G', 'R'), geonrw_rgb_transforms, '0-255 BGR; x / 255'
    ),
    'geonrw_dem': ModalityInput(
        'dem',
        ('DEM', 'DEM', 'DEM'),
        geonrw_dem_transforms,
        'metres, 1 channel; per-image 1-99 % percentile → [0, 1]; repeated ×3',
    ),
    'sunrgbd_rgb': ModalityInput(
        'rgb',
        ('B', 'G', 'R'),
        sunrgbd_transforms,
        '0-255 BGR; x / 255, ImageNet mean/std by channel index',
    ),
    'sunrgbd_hha': ModalityInput(
        'hha',
        ('HHA_B', 'HHA_G', 'HHA_R'),
        sunrgbd_transforms,
        '0-255 HHA image planes in OpenCV order; x / 255, ImageNet mean/std',
    ),
}


__all__ = ('INPUTS', 'ModalityInput')
