"""The input scaling each released DeCUR checkpoint was trained with.

One factory per input pipeline of the DeCUR pretraining code. Every transform takes a tensor
(C, H, W) or (N, C, H, W) in the units named below and returns a float tensor, as
torchgeo 0.10's Weights transforms do. The output channels are the checkpoint's
``meta['bands']`` (``meta['in_chans']`` of them). So are the input channels, in that
order, for every transform except the GeoNRW DEM one: it takes the single raw DEM
channel (metres) and makes the three identical channels of ``meta['bands'] ==
('DEM', 'DEM', 'DEM')`` itself. The transforms only scale (and, for SSL4EO-S12,
resize as the reference evaluation did; for the DEM, repeat the channel); band
selection and reordering are left to the data pipeline.

The ``*_normalization`` factories apply these scalings to the ``image_<modality>``
entries of a batch dictionary, as the data modules do on the device after the
batch transfer; the BigEarthNet and GeoNRW ones also insert the zero B10 channel
or flip RGB to B, G, R where the checkpoints expect it.
"""

from collections.abc import Sequence
from typing import Literal

import torchvision.transforms.v2 as T
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from .bands import InsertChannel, RepeatChannels, SelectChannels
from .normalize import (
    B10_INDEX,
    BIGEARTHNET_S1_MEAN,
    BIGEARTHNET_S1_STD,
    BIGEARTHNET_S2_MEAN,
    BIGEARTHNET_S2_STD,
    SSL4EO_S12_S1_MEAN,
    SSL4EO_S12_S1_STD,
    SSL4EO_S12_S2_BANDS,
    SSL4EO_S12_S2_MEAN,
    SSL4EO_S12_S2_STD,
    SSL4EO_S12_S2A_BANDS,
    ApplyToKeys,
    ClipNormalize,
    PercentileClip,
)
from .statistics import BandStats

#: ImageNet statistics (timm's, the single source in this package) that the SUN
#: RGB-D pipeline applies by channel index to B, G, R.
IMAGENET_MEAN: tuple[float, float, float] = tuple(IMAGENET_DEFAULT_MEAN)  # type: ignore[assignment]
IMAGENET_STD: tuple[float, float, float] = tuple(IMAGENET_DEFAULT_STD)  # type: ignore[assignment]

Pipeline = Literal['main', 'old']
#: Per-image DEM scalings of :func:`geonrw_normalization`.
DEMScaling = Literal['minmax', 'percentile', 'none']


def _scale_to_unit(value_range: float, bands: int) -> ClipNormalize:
    """``clip(x / value_range, 0, 1)`` per band, as a :class:`ClipNormalize`."""
    # ClipNormalize maps [mean - 2 std, mean + 2 std] to [0, 1]; this window is
    # [0, value_range].
    half = value_range / 2
    return ClipNormalize([half] * bands, [half / 2] * bands)


def ssl4eo_s12_statistics(product: Literal['s1', 's2c', 's2a']) -> BandStats:
    """The SSL4EO-S12 per-band statistics of one product (raw units).

    Args:
        product: ``'s1'`` (VV, VH in dB), ``'s2c'`` (13 L1C bands, DN) or
            ``'s2a'`` (12 L2A bands, DN; B10 absent).

    Returns:
        ``{'mean': [...], 'std': [...]}``, one value per band.

    Raises:
        ValueError: If ``product`` is unknown.
    """
    if product == 's1':
        return {'mean': list(SSL4EO_S12_S1_MEAN), 'std': list(SSL4EO_S12_S1_STD)}
    if product not in ('s2c', 's2a'):
        raise ValueError(f"product must be 's1', 's2c' or 's2a', got {product!r}")
    keep = [
        SSL4EO_S12_S2_BANDS.index(b)
        for b in (SSL4EO_S12_S2_BANDS if product == 's2c' else SSL4EO_S12_S2A_BANDS)
    ]
    return {
        'mean': [SSL4EO_S12_S2_MEAN[i] for i in keep],
        'std': [SSL4EO_S12_S2_STD[i] for i in keep],
    }


def ssl4eo_s12_scaling(
    product: Literal['s1', 's2c', 's2a'], quantize: bool = False
) -> ClipNormalize:
    """Per-band mean ± 2σ → [0, 1] scaling of one SSL4EO-S12 product.

    ``clip((x - (μ - 2σ)) / 4σ, 0, 1)`` with :func:`ssl4eo_s12_statistics`: the
    input of the RN50-RDA and ViT-S/16 SSL4EO-S12 checkpoints, and the scaling of
    the pretraining data module. Both the per-image transforms of the Weights
    enums and the batch pipeline of the data module are built from this one
    function.

    Args:
        product: ``'s1'`` (VV, VH in dB), ``'s2c'`` (13 L1C bands, DN) or
            ``'s2a'`` (12 L2A bands, DN; B10 absent).
        quantize: Also reproduce the uint8 storage (multiples of 1/255).

    Returns:
        The transform for (..., t x bands, H, W) tensors.

    Raises:
        ValueError: If ``product`` is unknown.
    """
    stats = ssl4eo_s12_statistics(product)
    return ClipNormalize(stats['mean'], stats['std'], quantize=quantize)


def ssl4eo_s12_normalization(
    s2_product: Literal['s2c', 's2a'] = 's2c', quantize: bool = False
) -> ApplyToKeys:
    """The SSL4EO-S12 pretraining input scaling for a batch dictionary.

    :func:`ssl4eo_s12_scaling` applied to ``image_s1`` and ``image_s2`` (several
    views or timestamps stacked on the channel axis are fine).

    Args:
        s2_product: ``'s2c'`` (13 L1C bands) or ``'s2a'`` (12 L2A bands).
        quantize: Also reproduce the uint8 storage (multiples of 1/255).

    Returns:
        A transform for ``image_s1`` and ``image_s2`` of a batch dictionary.
    """
    return ApplyToKeys(
        {
            'image_s1': ssl4eo_s12_scaling('s1', quantize),
            'image_s2': ssl4eo_s12_scaling(s2_product, quantize),
        }
    )


def _reference_evaluation_geometry() -> list[nn.Module]:
    """Resize (short side 256) then centre-crop 224, as the BigEarthNet evaluation.

    Bilinear without antialiasing, like ``cv2.resize`` with ``INTER_LINEAR``.
    """
    return [T.Resize(256, antialias=False), T.CenterCrop(224)]


def ssl4eo_s1_transforms(pipeline: Pipeline = 'main') -> nn.Sequential:
    """Sentinel-1 GRD (VV, VH; backscatter in dB) scaled for the SSL4EO-S12 files.

    ``'main'`` (RN50-RDA and ViT-S/16 files): ``clip((x - (μ - 2σ)) / 4σ, 0, 1)``
    per band with μ = (-12.548, -20.192) dB, σ = (5.257, 5.912) dB.
    ``'old'`` (plain RN50 files): first clip each image to its own 1st-99th
    percentile, pooled over both bands (the reference pooled over the four
    seasons of a location too), then the same scaling.

    Both are followed by the reference evaluation geometry: resize the short side
    to 256 px, centre-crop 224 px. Output in [0, 1], (..., 2, 224, 224).

    Args:
        pipeline: ``'main'`` or ``'old'``.

    Returns:
        The transform.
    """
    steps: list[nn.Module] = []
    if pipeline == 'old':
        steps.append(PercentileClip(1.0, 99.0, per_channel=False))
    steps.append(ssl4eo_s12_scaling('s1'))
    return nn.Sequential(*steps, *_reference_evaluation_geometry())


def ssl4eo_s2_transforms(pipeline: Pipeline = 'main') -> nn.Sequential:
    """Sentinel-2 L1C (13 bands B1 ... B8, B8A, B9 ... B12; DN) for SSL4EO-S12.

    ``'main'`` (RN50-RDA and ViT-S/16 files): per band
    ``clip((x - (μ - 2σ)) / 4σ, 0, 1)`` with the SSL4EO-S12 L1C statistics.

    ``'old'`` (plain RN50 files): ``clip(x / 10000, 0, 1)``. **Uncertain**: the
    reference trained these files on a uint8 database whose scaling is not in the
    repository. Dividing by 10000 (SSL4EO-S12's own uint8 scheme) is the more likely
    of the two candidates; the other is the per-band μ ± 2σ scaling of ``'main'``
    (the first BatchNorm's running means against the expected band means would tell them apart). The reference's uint8 overflow
    above 10000 DN is replaced by clipping.

    Both are followed by: resize the short side to 256 px, centre-crop 224 px.
    Output in [0, 1], (..., 13, 224, 224).

    Args:
        pipeline: ``'main'`` or ``'old'``.

    Returns:
        The transform.
    """
    scale = (
        _scale_to_unit(10000.0, 13) if pipeline == 'old' else ssl4eo_s12_scaling('s2c')
    )
    return nn.Sequential(scale, *_reference_evaluation_geometry())


def geonrw_rgb_transforms() -> nn.Sequential:
    """GeoNRW aerial RGB in **B, G, R** order, 0-255, scaled to [0, 1] (x / 255).

    Returns:
        The transform (no resizing; the reference evaluation used random crops).
    """
    return nn.Sequential(_scale_to_unit(255.0, 3))


def geonrw_dem_transforms() -> nn.Sequential:
    """GeoNRW elevation for the DEM encoders: **one** channel in, three out.

    Input: the raw DEM, (1, H, W) or (N, 1, H, W), in metres. Clip each image to
    its own 1st-99th percentile, rescale that range to [0, 1]
    (``/ (p99 - p1 + 1e-5)``) and repeat it into 3 identical channels: output
    (..., 3, H, W) in [0, 1], the members' ``meta['bands'] == ('DEM', 'DEM',
    'DEM')``. A 3-channel input (e.g. an already repeated DEM) is an error.

    Returns:
        The transform.
    """
    return nn.Sequential(
        PercentileClip(1.0, 99.0, per_channel=True, rescale=True, eps=1e-5),
        RepeatChannels(
            3,
            hint=(
                'pass the single raw DEM channel in metres, (N, 1, H, W); the '
                "transform makes the 3 channels of meta['bands'] itself"
            ),
        ),
    )


def sunrgbd_transforms() -> nn.Sequential:
    """SUN RGB-D RGB or HHA image, 0-255 in OpenCV (B, G, R plane) order.

    ``x / 255`` then ImageNet mean/std **by channel index** (the "R" statistics on
    the first, B, plane), as the DeCUR pretraining and CMX do. Output in about
    [-2.12, 2.64].

    Returns:
        The transform.
    """
    return nn.Sequential(
        _scale_to_unit(255.0, 3), T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    )


def sunrgbd_normalization() -> ApplyToKeys:
    """The SUN RGB-D (RGB + HHA) input scaling for a batch dictionary.

    :func:`sunrgbd_transforms` applied to ``image_rgb`` and ``image_hha``: ``x /
    255`` then ImageNet mean/std by channel index, as the DeCUR SUN RGB-D (MiT)
    checkpoints and CMX expect.

    Returns:
        A transform for ``image_rgb`` and ``image_hha`` of a batch dictionary
        holding 0-255 values.
    """
    return ApplyToKeys(
        {'image_rgb': sunrgbd_transforms(), 'image_hha': sunrgbd_transforms()}
    )


def bigearthnet_normalization(
    modalities: Sequence[str] = ('s1', 's2'),
    method: Literal['decur', 'none'] = 'decur',
    quantize: bool = False,
    insert_b10: bool = False,
) -> ApplyToKeys:
    """Input scaling of the DeCUR BigEarthNet evaluation.

    ``'decur'``: Sentinel-1 is clipped per image and per band to its 1st-99th
    percentiles and both sensors are scaled per band by the BigEarthNet mean ± 2σ
    window to [0, 1] (the reference's uint8 values / 255; ``quantize`` also
    reproduces the uint8 steps). ``'none'`` passes raw dB / DN on.

    Args:
        modalities: Modalities present in the batch.
        method: ``'decur'`` or ``'none'``.
        quantize: Round down to multiples of 1/255 (``'decur'`` only).
        insert_b10: Insert an all-zero B10 channel at index 10, after scaling, so
            12-band patches fit 13-band (L1C) checkpoints as in the reference.

    Returns:
        A transform for the ``image_<modality>`` entries of a batch dictionary.

    Raises:
        ValueError: If ``method`` is unknown.
    """
    if method not in ('decur', 'none'):
        raise ValueError(f"normalization must be 'decur' or 'none', got {method!r}")
    transforms: dict[str, nn.Module] = {}
    if 's1' in modalities and method == 'decur':
        transforms['image_s1'] = nn.Sequential(
            PercentileClip(1.0, 99.0, per_channel=True),
            ClipNormalize(BIGEARTHNET_S1_MEAN, BIGEARTHNET_S1_STD, quantize=quantize),
        )
    if 's2' in modalities:
        steps: list[nn.Module] = []
        if method == 'decur':
            steps.append(
                ClipNormalize(
                    BIGEARTHNET_S2_MEAN, BIGEARTHNET_S2_STD, quantize=quantize
                )
            )
        if insert_b10:
            steps.append(InsertChannel(B10_INDEX, 0.0, in_channels=12))
        if steps:
            transforms['image_s2'] = nn.Sequential(*steps)
    return ApplyToKeys(transforms)


def geonrw_normalization(
    modalities: Sequence[str] = ('rgb', 'dem'),
    channel_order: Literal['bgr', 'rgb'] = 'bgr',
    dem_scaling: DEMScaling = 'minmax',
    dem_channels: int = 3,
) -> ApplyToKeys:
    """Input scaling of the DeCUR GeoNRW checkpoints.

    RGB stays in [0, 1] (no mean/std) and is flipped to B, G, R, the order OpenCV
    gave the reference code. The DEM is scaled per image: ``'minmax'`` maps min-max
    to [0, 1] (the downstream FCN code), ``'percentile'`` clips to the 1st-99th
    percentiles and rescales with ``/(p99 - p1 + 1e-5)`` (pretraining); then it is
    replicated to ``dem_channels`` channels (3 for the released DEM encoders).

    Args:
        modalities: Modalities present in the batch.
        channel_order: ``'bgr'`` (checkpoints) or ``'rgb'`` (as read).
        dem_scaling: ``'minmax'``, ``'percentile'`` or ``'none'`` (metres).
        dem_channels: Channels of the DEM after replication.

    Returns:
        A transform for the ``image_rgb`` / ``image_dem`` entries of a batch.

    Raises:
        ValueError: For unknown options.
    """
    if channel_order not in ('bgr', 'rgb'):
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    transforms: dict[str, nn.Module] = {}
    if 'rgb' in modalities and channel_order == 'bgr':
        transforms['image_rgb'] = SelectChannels([2, 1, 0])
    if 'dem' in modalities:
        steps: list[nn.Module] = []
        if dem_scaling == 'minmax':
            # eps keeps a perfectly flat tile finite (the reference divides by 0).
            steps.append(PercentileClip(0.0, 100.0, rescale=True, eps=1e-5))
        elif dem_scaling == 'percentile':
            steps.append(PercentileClip(1.0, 99.0, rescale=True, eps=1e-5))
        elif dem_scaling != 'none':
            raise ValueError(
                "dem_scaling must be 'minmax', 'percentile' or 'none', got "
                f'{dem_scaling!r}'
            )
        if dem_channels != 1:
            steps.append(RepeatChannels(dem_channels))
        if steps:
            transforms['image_dem'] = nn.Sequential(*steps)
    return ApplyToKeys(transforms)


__all__ = (
    'IMAGENET_MEAN',
    'IMAGENET_STD',
    'DEMScaling',
    'bigearthnet_normalization',
    'geonrw_dem_transforms',
    'geonrw_normalization',
    'geonrw_rgb_transforms',
    'ssl4eo_s1_transforms',
    'ssl4eo_s2_transforms',
    'ssl4eo_s12_normalization',
    'ssl4eo_s12_scaling',
    'ssl4eo_s12_statistics',
    'sunrgbd_normalization',
    'sunrgbd_transforms',
)
