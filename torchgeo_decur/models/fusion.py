"""Downstream heads over one encoder per modality (DeCUR's transfer models).

* :class:`LateFusionClassifier`: pooled features of every encoder, concatenated,
  one linear layer (DeCUR's BigEarthNet-MM model).
* :class:`FCNFusionSegmenter`: DeCUR's GeoNRW FCN: layer2/3/4
  feature maps of every encoder, concatenated per level, 1×1 reduction to
  128/256/512 channels, 1×1 classifier per level, upsampled to the input size and
  summed.

Both accept any number of modalities (one for single-modality runs) and can drop a
modality at inference (its features replaced by zeros) for modality-missing
evaluation.
"""

from collections.abc import Collection, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backbones import feature_dim


def _check_inputs(
    inputs: Mapping[str, Tensor], modalities: Sequence[str], drop: Collection[str]
) -> list[str]:
    """Validate ``drop`` and the presence of every kept modality's input.

    Returns:
        The modalities that are run.
    """
    unknown = sorted(set(drop) - set(modalities))
    if unknown:
        raise ValueError(f'cannot drop unknown modalities {unknown}; have {modalities}')
    kept = [m for m in modalities if m not in drop]
    if not kept:
        raise ValueError('cannot drop every modality')
    missing = [m for m in kept if m not in inputs]
    if missing:
        raise ValueError(
            f'no input for modalities {missing}; got {sorted(inputs)} '
            f'(expected {list(modalities)})'
        )
    return kept


class LateFusionClassifier(nn.Module):
    """Concatenate pooled encoder features and classify with one linear layer."""

    def __init__(self, encoders: Mapping[str, nn.Module], num_classes: int) -> None:
        """Initialize a new LateFusionClassifier instance.

        Args:
            encoders: One encoder per modality mapping (N, C_m, H, W) to pooled
                features (N, D_m) (e.g. from
                :func:`~torchgeo_decur.models.build_backbone`); their order is the
                concatenation order.
            num_classes: Number of outputs.

        Raises:
            ValueError: If there is no encoder.
        """
        super().__init__()
        if not encoders:
            raise ValueError('LateFusionClassifier needs at least one encoder')
        self.encoders = nn.ModuleDict(dict(encoders))
        self.feature_dims = {m: feature_dim(e) for m, e in self.encoders.items()}
        self.head = nn.Linear(sum(self.feature_dims.values()), num_classes)
        # Initialisation of the reference linear classifier.
        nn.init.normal_(self.head.weight, mean=0.0, std=0.01)
        nn.init.zeros_(self.head.bias)

    @property
    def modalities(self) -> list[str]:
        """The modality names, in concatenation order."""
        return list(self.encoders)

    def forward(
        self, inputs: Mapping[str, Tensor], drop: Collection[str] = ()
    ) -> Tensor:
        """Class logits.

        Args:
            inputs: ``{modality: (N, C_m, H, W)}``.
            drop: Modalities treated as missing: their features are zeros (their
                input may be absent).

        Returns:
            Logits of shape (N, num_classes).
        """
        kept = _check_inputs(inputs, self.modalities, drop)
        n = inputs[kept[0]].shape[0]
        feats = []
        for m, encoder in self.encoders.items():
            if m in drop:
                ref = self.head.weight
                feats.append(ref.new_zeros(n, self.feature_dims[m]))
            else:
                feats.append(encoder(inputs[m]))
        out: Tensor = self.head(torch.cat(feats, dim=1))
        return out


class FCNFusionSegmenter(nn.Module):
    """DeCUR's multi-level FCN over one feature pyramid per modality.

    The reference applies, per level, 1×1 reduction → bilinear upsampling
    (``align_corners=True``) → 1×1 classifier. All three are linear and bilinear
    weights sum to one, so classifying before upsampling gives the same logits while
    upsampling 11 instead of 128-512 channels; this module does that and upsamples
    straight to the input size (×8/16/32 for inputs divisible by 32, like the
    reference, and also valid for other sizes such as 250 px tiles).
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        num_classes: int,
        reduce_channels: Sequence[int] = (128, 256, 512),
    ) -> None:
        """Initialize a new FCNFusionSegmenter instance.

        Args:
            encoders: One multi-scale encoder per modality returning a list of
                feature maps, one per level (e.g. ``timm.create_model(name,
                features_only=True, out_indices=(2, 3, 4))``, which exposes
                ``feature_info.channels()``).
            num_classes: Number of classes.
            reduce_channels: Output channels of the per-level 1×1 reductions.

        Raises:
            ValueError: If there is no encoder, an encoder does not report its
                channels, or the level counts differ.
        """
        super().__init__()
        if not encoders:
            raise ValueError('FCNFusionSegmenter needs at least one encoder')
        self.encoders = nn.ModuleDict(dict(encoders))
        self.level_channels: dict[str, list[int]] = {}
        for m, encoder in self.encoders.items():
            info = getattr(encoder, 'feature_info', None)
            if info is None or not hasattr(info, 'channels'):
                raise ValueError(
                    f'encoder {m!r} ({type(encoder).__name__}) has no feature_info; '
                    'build it with timm.create_model(..., features_only=True)'
                )
            self.level_channels[m] = [int(c) for c in info.channels()]
        levels = {len(c) for c in self.level_channels.values()}
        if levels != {len(reduce_channels)}:
            raise ValueError(
                f'encoders give {self.level_channels} feature levels but '
                f'reduce_channels has {len(reduce_channels)} entries'
            )
        in_channels = [
            sum(c[i] for c in self.level_channels.values())
            for i in range(len(reduce_channels))
        ]
        self.reduce = nn.ModuleList(
            nn.Conv2d(c, r, kernel_size=1)
            for c, r in zip(in_channels, reduce_channels, strict=True)
        )
        self.classify = nn.ModuleList(
            nn.Conv2d(r, num_classes, kernel_size=1) for r in reduce_channels
        )

    @property
    def modalities(self) -> list[str]:
        """The modality names, in concatenation order."""
        return list(self.encoders)

    def forward(
        self, inputs: Mapping[str, Tensor], drop: Collection[str] = ()
    ) -> Tensor:
        """Per-pixel class logits.

        Args:
            inputs: ``{modality: (N, C_m, H, W)}`` on the same grid.
            drop: Modalities treated as missing: their feature maps are zeros.

        Returns:
            Logits of shape (N, num_classes, H, W).

        Raises:
            ValueError: If inputs are missing or not on the same grid.
        """
        kept = _check_inputs(inputs, self.modalities, drop)
        sizes = {tuple(inputs[m].shape[-2:]) for m in kept}
        if len(sizes) != 1:
            raise ValueError(f'inputs must share one grid, got sizes {sorted(sizes)}')
        size = inputs[kept[0]].shape[-2:]
        pyramids = {m: list(self.encoders[m](inputs[m])) for m in kept}
        reference = pyramids[kept[0]]
        logits: Tensor | None = None
        for level, (reduce, classify) in enumerate(
            zip(self.reduce, self.classify, strict=True)
        ):
            maps = []
            for m in self.modalities:
                if m in pyramids:
                    maps.append(pyramids[m][level])
                else:
                    ref = reference[level]
                    channels = self.level_channels[m][level]
                    maps.append(ref.new_zeros(ref.shape[0], channels, *ref.shape[-2:]))
            y = classify(reduce(torch.cat(maps, dim=1)))
            y = F.interpolate(y, size=size, mode='bilinear', align_corners=True)
            logits = y if logits is None else logits + y
        assert logits is not None
        return logits
