"""Input scaling that reproduces how the DeCUR checkpoints were trained.

All transforms here take tensors shaped (..., C, H, W) in physical units (dB for
Sentinel-1, digital numbers for Sentinel-2, metres for elevation) and return float
tensors of the same shape. When a sample stacks several timestamps or views on the
channel axis (C = t x bands), the per-band statistics are repeated t times.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

#: Sentinel-1 GRD band order of SSL4EO-S12 and the DeCUR checkpoints.
SSL4EO_S12_S1_BANDS = ('VV', 'VH')
#: Sentinel-2 L1C band order of SSL4EO-S12 and the DeCUR checkpoints.
SSL4EO_S12_S2_BANDS = (
    'B1',
    'B2',
    'B3',
    'B4',
    'B5',
    'B6',
    'B7',
    'B8',
    'B8A',
    'B9',
    'B10',
    'B11',
    'B12',
)
#: Sentinel-2 L2A band order: the L1C order without the cirrus band B10.
SSL4EO_S12_S2A_BANDS = tuple(b for b in SSL4EO_S12_S2_BANDS if b != 'B10')
# Per-band mean / std (dB) of the uint8 SSL4EO-S12 S1 lmdb used by the main DeCUR
# pretraining pipeline (its ``clip((x - (mean - 2 std)) / 4 std)`` window).
SSL4EO_S12_S1_MEAN = (-12.54847273, -20.19237134)
SSL4EO_S12_S1_STD = (5.25697717, 5.91150917)
# Per-band mean / std (DN) of SSL4EO-S12 S2 L1C, as the DeCUR pretraining code scaled it.
SSL4EO_S12_S2_MEAN = (
    1605.57504906,
    1390.78157673,
    1314.8729939,
    1363.52445545,
    1549.44374991,
    2091.74883118,
    2371.7172463,
    2299.90463006,
    2560.29504086,
    830.06605044,
    22.10351321,
    2177.07172323,
    1524.06546312,
)
SSL4EO_S12_S2_STD = (
    786.78685367,
    850.34818441,
    875.06484736,
    1138.84957046,
    1122.17775652,
    1161.59187054,
    1274.39184232,
    1248.42891965,
    1345.52684884,
    577.31607053,
    51.15431158,
    1336.09932639,
    1136.53823676,
)
# BigEarthNet statistics the DeCUR BigEarthNet code scaled with (mean ± 2σ → [0, 1],
# S1 clipped per image and band to 1-99 % first), in the band order of the samples.
BIGEARTHNET_S1_MEAN = (-12.59, -19.22)  # VV, VH (dB)
BIGEARTHNET_S1_STD = (5.04, 5.42)
BIGEARTHNET_S2_MEAN = (
    340.77,
    429.94,
    614.22,
    590.24,
    950.68,
    1792.46,
    2075.47,
    2218.95,
    2266.46,
    2246.06,
    1594.43,
    1009.33,
)
BIGEARTHNET_S2_STD = (
    554.81,
    572.42,
    582.88,
    675.89,
    729.90,
    1096.01,
    1273.45,
    1365.46,
    1356.14,
    1302.33,
    1079.19,
    818.87,
)
#: Position of B10 in the 13-band L1C order of the DeCUR S2 checkpoints.
B10_INDEX = SSL4EO_S12_S2_BANDS.index('B10')


def _per_channel(values: Tensor, channels: int, what: str) -> Tensor:
    """Repeat per-band ``values`` (B,) to ``channels`` = t * B entries."""
    bands = values.numel()
    if channels % bands != 0:
        raise ValueError(
            f'{what}: input has {channels} channels, which is not a multiple of the '
            f'{bands} bands the statistics are defined for'
        )
    return values.repeat(channels // bands)


class ClipNormalize(nn.Module):
    """Clip each band to mean ± k·std and rescale that window to [0, 1].

    ``y = clip((x - (mean - k·std)) / (2k·std), 0, 1)`` per band. With k = 2 this is
    the uint8 scaling of the SSL4EO-S12 pipelines followed by ``ToTensor`` (/255),
    i.e. exactly what the DeCUR checkpoints saw, optionally including the uint8
    quantisation (``quantize=True``: ``floor(255·y) / 255``).

    Non-finite input is handled explicitly rather than propagated: NaN and -inf
    (e.g. zero backscatter in dB) map to 0, the bottom of the window, and +inf to 1.
    """

    low: Tensor
    width: Tensor

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        sigmas: float = 2.0,
        quantize: bool = False,
    ) -> None:
        """Initialize a new ClipNormalize instance.

        Args:
            mean: Per-band mean, in the input's units.
            std: Per-band standard deviation, same length as ``mean``.
            sigmas: Half-width k of the window in standard deviations.
            quantize: Round down to multiples of 1/255 like the uint8 storage.

        Raises:
            ValueError: If ``mean`` and ``std`` differ in length or a std is not
                positive.
        """
        super().__init__()
        if len(mean) != len(std) or len(mean) == 0:
            raise ValueError(
                f'mean and std must be non-empty and equally long, got {len(mean)} '
                f'and {len(std)}'
            )
        if any(s <= 0 for s in std) or sigmas <= 0:
            raise ValueError('std and sigmas must be positive')
        mean_t = torch.tensor(mean, dtype=torch.float64)
        std_t = torch.tensor(std, dtype=torch.float64)
        self.register_buffer('low', (mean_t - sigmas * std_t).float(), persistent=False)
        self.register_buffer('width', (2 * sigmas * std_t).float(), persistent=False)
        self.quantize = quantize

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x``.

        Args:
            x: Tensor of shape (..., C, H, W) with C a multiple of the band count.

        Returns:
            Float tensor of the same shape with values in [0, 1].
        """
        channels = x.shape[-3]
        low = _per_channel(self.low, channels, type(self).__name__)
        width = _per_channel(self.width, channels, type(self).__name__)
        y = (x.float() - low[:, None, None]) / width[:, None, None]
        y = torch.nan_to_num(y, nan=0.0, posinf=1.0, neginf=0.0).clamp_(0.0, 1.0)
        if self.quantize:
            y = torch.floor(y * 255.0) / 255.0
        return y

    def extra_repr(self) -> str:
        """Summarise the window."""
        return f'bands={self.low.numel()}, quantize={self.quantize}'


class Dequantize(nn.Module):
    """Turn uint8 codes ``k`` back into the float input ``k / 255``.

    The inverse of the uint8 storage of :class:`ClipNormalize` with
    ``quantize=True`` (and of the reference's uint8 lmdb + ``ToTensor``): for codes
    ``k = floor(255 y)`` it returns exactly what ``ClipNormalize(quantize=True)``
    returns, bit for bit. Written here rather than reused from torchvision's
    ``to_dtype(..., scale=True)`` because that multiplies by ``1 / 255``, which
    differs from the division in the last bit for about half of the 256 codes.
    """

    def forward(self, x: Tensor) -> Tensor:
        """Decode ``x``.

        Args:
            x: uint8 tensor of any shape.

        Returns:
            float32 tensor of the same shape with values in [0, 1].

        Raises:
            ValueError: If ``x`` is not uint8.
        """
        if x.dtype != torch.uint8:
            raise ValueError(
                f'{type(self).__name__} expects uint8 codes, got {x.dtype}; raw '
                'values need ClipNormalize instead'
            )
        return x.float() / 255.0


class PercentileClip(nn.Module):
    """Clip each sample to its own low/high percentiles (optionally rescaled).

    Used by several DeCUR pipelines: the old SSL4EO-S12 S1 pipeline (1-99 %,
    pooled over all bands and timestamps), the BigEarthNet S1 input (1-99 % per
    band) and the GeoNRW DEM (1-99 % per image, rescaled to [0, 1]). Percentiles
    use linear interpolation like :func:`numpy.percentile`; NaN values are ignored.
    """

    def __init__(
        self,
        low: float = 1.0,
        high: float = 99.0,
        per_channel: bool = True,
        rescale: bool = False,
        eps: float = 0.0,
    ) -> None:
        """Initialize a new PercentileClip instance.

        Args:
            low: Lower percentile in [0, 100].
            high: Upper percentile in [0, 100], above ``low``.
            per_channel: Compute percentiles per channel (True) or pooled over all
                channels of a sample (False).
            rescale: Map [p_low, p_high] linearly to [0, 1] after clipping.
            eps: Added to ``p_high - p_low`` when rescaling (1e-5 in the GeoNRW
                pretraining code).

        Raises:
            ValueError: If the percentiles are out of order or range.
        """
        super().__init__()
        if not 0 <= low < high <= 100:
            raise ValueError(f'need 0 <= low < high <= 100, got {low}, {high}')
        self.low = low
        self.high = high
        self.per_channel = per_channel
        self.rescale = rescale
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """Clip ``x``.

        Args:
            x: Tensor of shape (C, H, W) or (N, C, H, W).

        Returns:
            Float tensor of the same shape.

        Raises:
            ValueError: If ``x`` is not 3-D or 4-D.
        """
        if x.ndim not in (3, 4):
            raise ValueError(
                f'expected (C, H, W) or (N, C, H, W), got {tuple(x.shape)}'
            )
        batched = x if x.ndim == 4 else x.unsqueeze(0)
        batched = batched.float()
        n, c = batched.shape[:2]
        flat = (
            batched.reshape(n, c, -1) if self.per_channel else batched.reshape(n, 1, -1)
        )
        flat = torch.where(torch.isinf(flat), torch.nan, flat)
        q = torch.tensor([self.low / 100, self.high / 100], device=x.device)
        bounds = torch.nanquantile(flat, q, dim=-1, keepdim=True)  # 2 x N x G x 1
        lo, hi = bounds[0], bounds[1]
        clipped = torch.maximum(torch.minimum(flat, hi), lo)
        clipped = torch.where(torch.isnan(clipped), lo, clipped)
        if self.rescale:
            clipped = (clipped - lo) / (hi - lo + self.eps)
        out = clipped.reshape(batched.shape)
        return out if x.ndim == 4 else out[0]

    def extra_repr(self) -> str:
        """Summarise the settings."""
        return (
            f'low={self.low}, high={self.high}, per_channel={self.per_channel}, '
            f'rescale={self.rescale}'
        )


class ApplyToKeys(nn.Module):
    """Apply one transform per sample key, e.g. one normalisation per modality.

    A drop-in for the ``aug`` attributes of torchgeo data modules, which receive a
    whole batch dictionary on the device.
    """

    transforms: dict[str, Callable[[Tensor], Tensor]]

    def __init__(self, transforms: Mapping[str, Callable[[Tensor], Tensor]]) -> None:
        """Initialize a new ApplyToKeys instance.

        Args:
            transforms: Map from sample key (e.g. ``'image_s1'``) to the transform
                for that key. Modules are registered so they follow ``.to(device)``.
        """
        super().__init__()
        self.transforms = dict(transforms)
        self.modules_ = nn.ModuleDict(
            {
                k.replace('.', '_'): t
                for k, t in self.transforms.items()
                if isinstance(t, nn.Module)
            }
        )

    def forward(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Transform the configured keys of ``sample``.

        Args:
            sample: Sample or batch dictionary.

        Returns:
            A new dictionary with the configured keys transformed.

        Raises:
            ValueError: If a configured key is missing from ``sample``.
        """
        missing = [k for k in self.transforms if k not in sample]
        if missing:
            raise ValueError(f'sample has no key(s) {missing}; it has {sorted(sample)}')
        out = dict(sample)
        for key, transform in self.transforms.items():
            out[key] = transform(sample[key])
        return out
