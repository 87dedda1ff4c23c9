"""Mix Transformer (MiT / SegFormer) encoders usable by name through timm.

The encoder is segmentation_models_pytorch's MiT, whose parameter names are those of
the SegFormer encoder the DeCUR SUN RGB-D checkpoints were trained with (same keys
and shapes), so released MiT weights load without renaming. Registered with timm as
``mit_b2`` and ``mit_b5``: ``timm.create_model('mit_b5', num_classes=0)`` returns
pooled features (mean of the last-stage tokens after ``norm4``, 512-d);
``num_classes=2048`` adds the ``head`` Linear(512, 2048) that DeCUR's pretraining
puts inside the backbone.
"""

import copy
from typing import Any

from segmentation_models_pytorch.encoders import encoders as smp_encoders
from segmentation_models_pytorch.encoders import get_encoder
from segmentation_models_pytorch.encoders.mix_transformer import (
    MixVisionTransformerEncoder,
)
from timm.models import register_model
from torch import Tensor, nn

from ..checkpoints.layouts import load_exact

MIT_VARIANTS = ('mit_b2', 'mit_b5')


class MiTEncoder(MixVisionTransformerEncoder):  # type: ignore[misc]
    """smp MiT encoder with a pooled-feature ``forward`` and an optional head.

    ``forward_stages`` keeps smp's multi-scale output (input, empty, then stages at
    strides 4, 8, 16, 32 with 64, 128, 320, 512 channels) for segmentation heads.
    """

    def __init__(self, variant: str, in_chans: int = 3, num_classes: int = 0) -> None:
        """Initialize a new MiTEncoder instance.

        Args:
            variant: smp MiT name, e.g. ``'mit_b2'`` or ``'mit_b5'``.
            in_chans: Number of input channels.
            num_classes: Output size of the ``head`` Linear layer (0: no head,
                ``forward`` returns the 512-d pooled features).

        Raises:
            ValueError: For an unknown variant.
        """
        if variant not in smp_encoders or not variant.startswith('mit_'):
            raise ValueError(f'unknown MiT variant {variant!r}')
        params = copy.deepcopy(smp_encoders[variant]['params'])
        super().__init__(**params)
        if in_chans != 3:
            self.set_in_channels(in_chans, pretrained=False)
        self.variant = variant
        self.num_features = int(params['embed_dims'][-1])
        self.num_classes = num_classes
        self.head: nn.Module = (
            nn.Linear(self.num_features, num_classes)
            if num_classes > 0
            else nn.Identity()
        )

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """Multi-scale features of the smp encoder.

        Args:
            x: Images (N, C, H, W).

        Returns:
            ``[x, empty, f4, f8, f16, f32]`` with fK of shape (N, C_K, H/K, W/K).
        """
        stages: list[Tensor] = MixVisionTransformerEncoder.forward(self, x)
        return stages

    def forward(self, x: Tensor) -> Tensor:
        """Pooled features (and head) of the last stage.

        Args:
            x: Images (N, C, H, W).

        Returns:
            (N, 512) features, or (N, num_classes) with a head.
        """
        pooled = self.forward_stages(x)[-1].mean(dim=(2, 3))
        out: Tensor = self.head(pooled)
        return out

    def load_state_dict(
        self, state_dict: Any, strict: bool = True, assign: bool = False
    ) -> Any:
        """Standard strict loading (smp's override silently drops ``head.*``)."""
        return nn.Module.load_state_dict(self, state_dict, strict=strict, assign=assign)


def _build(variant: str, pretrained: bool, **kwargs: Any) -> MiTEncoder:
    """Build a variant for timm: drop timm's config kwargs, load ImageNet weights."""
    for key in ('pretrained_cfg', 'pretrained_cfg_overlay', 'cache_dir'):
        kwargs.pop(key, None)
    unknown = sorted(set(kwargs) - {'in_chans', 'num_classes'})
    if unknown:
        raise ValueError(f'{variant} does not accept {unknown}')
    model = MiTEncoder(variant, **kwargs)
    if pretrained:
        reference = get_encoder(
            variant, in_channels=kwargs.get('in_chans', 3), weights='imagenet'
        )
        load_exact(
            model,
            reference.state_dict(),
            what=f'{variant} (smp ImageNet weights)',
            ignore_missing=('head.',),
        )
    return model


@register_model
def mit_b2(pretrained: bool = False, **kwargs: Any) -> MiTEncoder:
    """MiT-B2 encoder (SegFormer-B2 backbone), 25 M parameters.

    Args:
        pretrained: Load smp's ImageNet weights.
        **kwargs: ``in_chans`` and ``num_classes``.

    Returns:
        The encoder.
    """
    return _build('mit_b2', pretrained, **kwargs)


@register_model
def mit_b5(pretrained: bool = False, **kwargs: Any) -> MiTEncoder:
    """MiT-B5 encoder (SegFormer-B5 backbone), 82 M parameters.

    Args:
        pretrained: Load smp's ImageNet weights.
        **kwargs: ``in_chans`` and ``num_classes``.

    Returns:
        The encoder.
    """
    return _build('mit_b5', pretrained, **kwargs)


__all__ = ('MIT_VARIANTS', 'MiTEncoder', 'mit_b2', 'mit_b5')
