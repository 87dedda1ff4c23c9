"""Per-modality two-view augmentations, run on the device with kornia.

Presets follow the augmentations of the DeCUR pretraining scripts:

========== ============ ===== ===================== ==== ==== ======== ======
preset     crop scale   flips brightness/contrast   gray blur solarize use
========== ============ ===== ===================== ==== ==== ======== ======
sar        0.2-1        H, V  -                     0.2  0.5  -        S1
optical    0.2-1        H, V  0.4 / 0.4, p 0.8      0.2  0.5  0.2      S2, GeoNRW RGB
elevation  0.2-1        H, V  -                     -    -    -        GeoNRW DEM
rgb        0.5-1        H     0.4 / 0.4, p 0.8      0.2  0.5  -        SUN RGB-D RGB
depth      0.5-1        H     -                     -    -    -        SUN RGB-D HHA
========== ============ ===== ===================== ==== ==== ======== ======

Inputs are expected in [0, 1] (after :mod:`torchgeo_decur.transforms.normalize`),
or standardised per channel with a known ``mean``/``std`` (SUN RGB-D: ImageNet
statistics): then the photometric operations run on the de-standardised [0, 1]
values and the result is standardised again, which reproduces the reference order
(augment the [0, 1] image, then normalise) while the data module still delivers the
exact input the checkpoints expect.
Two deliberate differences from the reference, which augmented uint8 arrays: the
brightness/contrast jitter clamps to [0, 1] instead of wrapping around, and
solarisation inverts values above 0.5 (the reference's uint8 threshold of 0.5 made
it a near no-op).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import kornia.augmentation as K
import torch
import torchgeo.transforms as T
from torch import Tensor, nn


@dataclass(frozen=True)
class AugmentationConfig:
    """Parameters of one modality's augmentation pipeline.

    Attributes:
        scale: Area range of RandomResizedCrop, as fractions of the input.
        ratio: Aspect-ratio range of RandomResizedCrop.
        hflip: Random horizontal flips (p = 0.5).
        vflip: Random vertical flips (p = 0.5).
        brightness: Brightness jitter strength (0 disables).
        contrast: Contrast jitter strength (0 disables).
        jitter_p: Probability of applying the brightness/contrast jitter.
        grayscale_p: Probability of replacing all channels by their weighted mean.
        grayscale_weights: Channel weights for grayscale (default: uniform, which
            works for any channel count).
        blur_p: Probability of a Gaussian blur.
        blur_sigma: Range of the blur's standard deviation, in pixels.
        solarize_p: Probability of inverting values above 0.5.
        mean: Per-channel mean the input was standardised with (in [0, 1]
            units), or None for inputs already in [0, 1]. Geometric operations
            commute with a per-channel affine map; the photometric ones do not
            (grayscale, clamped jitter), so they are applied to
            ``x * std + mean`` and the result is standardised again.
        std: Per-channel standard deviation matching ``mean``.
    """

    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True
    vflip: bool = True
    brightness: float = 0.0
    contrast: float = 0.0
    jitter_p: float = 0.8
    grayscale_p: float = 0.0
    grayscale_weights: tuple[float, ...] | None = None
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


PRESETS: dict[str, AugmentationConfig] = {
    'sar': AugmentationConfig(grayscale_p=0.2, blur_p=0.5),
    'optical': AugmentationConfig(
        brightness=0.4, contrast=0.4, grayscale_p=0.2, blur_p=0.5, solarize_p=0.2
    ),
    'elevation': AugmentationConfig(),
    'rgb': AugmentationConfig(
        scale=(0.5, 1.0),
        vflip=False,
        brightness=0.4,
        contrast=0.4,
        grayscale_p=0.2,
        blur_p=0.5,
    ),
    'depth': AugmentationConfig(scale=(0.5, 1.0), vflip=False),
}


def resolve_config(spec: str | Mapping[str, Any]) -> AugmentationConfig:
    """Turn a preset name or a ``{'preset': name, **overrides}`` mapping into a config.

    Args:
        spec: A key of :data:`PRESETS`, or a mapping with an optional ``preset``
            (default ``'elevation'``, i.e. crop and flips only) and any fields of
            :class:`AugmentationConfig` to override.

    Returns:
        The configuration.

    Raises:
        ValueError: For an unknown preset or field name.
    """
    if isinstance(spec, str):
        spec = {'preset': spec}
    options = dict(spec)
    preset = options.pop('preset', 'elevation')
    if preset not in PRESETS:
        raise ValueError(
            f'unknown augmentation preset {preset!r}; choose from {sorted(PRESETS)}'
        )
    names = {f.name for f in fields(AugmentationConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(
            f'unknown augmentation option(s) {unknown}; valid options: {sorted(names)}'
        )
    for key in ('scale', 'ratio', 'blur_sigma', 'grayscale_weights', 'mean', 'std'):
        if options.get(key) is not None:
            options[key] = tuple(float(v) for v in options[key])
    return replace(PRESETS[preset], **options)


def _blur_kernel_size(sigma_max: float) -> int:
    """Odd kernel covering ±3σ, like OpenCV's automatic size for ``ksize=(0, 0)``."""
    return 2 * math.ceil(3 * sigma_max) + 1


def _standardization(
    config: AugmentationConfig, channels: int
) -> tuple[Tensor, Tensor]:
    """Validated ``(mean, std)`` tensors of a config's input standardisation."""
    if config.mean is None or config.std is None:
        raise ValueError('mean and std must be given together')
    mean = torch.tensor(config.mean, dtype=torch.float32)
    std = torch.tensor(config.std, dtype=torch.float32)
    if mean.numel() != channels or std.numel() != channels:
        raise ValueError(
            f'mean/std have {mean.numel()}/{std.numel()} entries but the modality '
            f'has {channels} channels'
        )
    if bool((std <= 0).any()):
        raise ValueError(f'std must be positive, got {config.std}')
    return mean, std


class ModalityAugmentation(nn.Module):
    """Augmentation of one modality, split into geometric and photometric parts.

    Each call draws new random parameters for every sample of the batch, so calling
    it twice gives two independent views. The geometric part (crop + flips) is
    exposed separately so two modalities can share crops when aligned views are
    wanted.
    """

    config: AugmentationConfig
    geometric: nn.Sequential
    photometric: nn.Sequential

    def __init__(self, config: AugmentationConfig, size: int, in_channels: int) -> None:
        """Initialize a new ModalityAugmentation instance.

        Args:
            config: Augmentation parameters.
            size: Output height and width in pixels.
            in_channels: Number of channels C of the modality.

        Raises:
            ValueError: If ``grayscale_weights`` does not have C entries, or
                ``mean``/``std`` are not both given with C entries (std > 0).
        """
        super().__init__()
        self.config = config
        self.size = size
        self.in_channels = in_channels
        self.geometric = self.build_geometric(config, size)
        photometric: list[nn.Module] = []
        if config.brightness > 0 or config.contrast > 0:
            photometric.append(
                K.ColorJitter(
                    brightness=config.brightness,
                    contrast=config.contrast,
                    p=config.jitter_p,
                )
            )
        if config.grayscale_p > 0:
            weights = (
                torch.ones(in_channels)
                if config.grayscale_weights is None
                else torch.tensor(config.grayscale_weights)
            )
            if weights.numel() != in_channels:
                raise ValueError(
                    f'grayscale_weights has {weights.numel()} entries but the '
                    f'modality has {in_channels} channels'
                )
            photometric.append(T.RandomGrayscale(weights=weights, p=config.grayscale_p))
        if config.blur_p > 0:
            k = _blur_kernel_size(config.blur_sigma[1])
            photometric.append(
                K.RandomGaussianBlur((k, k), config.blur_sigma, p=config.blur_p)
            )
        if config.solarize_p > 0:
            photometric.append(
                K.RandomSolarize(thresholds=0.0, additions=0.0, p=config.solarize_p)
            )
        if photometric and config.mean is not None:
            mean, std = _standardization(config, in_channels)
            photometric = [
                K.Denormalize(mean=mean, std=std),
                *photometric,
                K.Normalize(mean=mean, std=std),
            ]
        elif config.mean is not None or config.std is not None:
            _standardization(config, in_channels)  # validate only
        self.photometric = nn.Sequential(*photometric)

    @staticmethod
    def build_geometric(config: AugmentationConfig, size: int) -> nn.Sequential:
        """Random resized crop and flips of ``config``.

        Args:
            config: Augmentation parameters.
            size: Output height and width in pixels.

        Returns:
            A module mapping (N, C, H, W) to (N, C, size, size).
        """
        ops: list[nn.Module] = [
            K.RandomResizedCrop((size, size), scale=config.scale, ratio=config.ratio)
        ]
        if config.hflip:
            ops.append(K.RandomHorizontalFlip())
        if config.vflip:
            ops.append(K.RandomVerticalFlip())
        return nn.Sequential(*ops)

    def forward(self, x: Tensor) -> Tensor:
        """Draw one augmented view.

        Args:
            x: Batch of shape (N, C, H, W), values in [0, 1] (or standardised
                with the config's ``mean``/``std``).

        Returns:
            Augmented batch of shape (N, C, size, size).

        Raises:
            ValueError: If the channel count differs from ``in_channels``.
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'expected a batch (N, {self.in_channels}, H, W), got {tuple(x.shape)}'
            )
        out: Tensor = self.photometric(self.geometric(x))
        return out
