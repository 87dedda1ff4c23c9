"""torchgeo-style builders ``decur_<model>(weights, **kwargs)`` of single encoders.

One builder per Weights enum; :mod:`.registry` registers them with torchgeo.
"""

import os
from collections.abc import Callable
from typing import Any

import timm
from torch import nn
from torchvision.models._api import WeightsEnum

from ..checkpoints.layouts import RDASemantics, check_rda_semantics, load_encoder_state
from ..weights.loading import resolve_encoder
from .base import DeCURWeightsEnum
from .enums import (
    DeCURMiTB2_Weights,
    DeCURMiTB5_Weights,
    DeCURResNet50_Weights,
    DeCURResNet50RDA_Weights,
    DeCURViTSmall16_Weights,
)


def build_encoder(
    model: str,
    weights: WeightsEnum | str | os.PathLike[str] | None = None,
    *,
    modality: str | int | None = None,
    rda_semantics: RDASemantics = 'transfer',
    **kwargs: Any,
) -> nn.Module:
    """Build a timm encoder and load DeCUR weights into it.

    Args:
        model: timm model name.
        weights: A Weights member (DeCUR or torchgeo), its string name, a path to a
            file in any released layout (joint or backbone-only) or a Lightning
            checkpoint of a two-encoder task, or None for random weights.
        modality: Which encoder of a joint file (name or 1-based position).
        rda_semantics: See :meth:`DeCURWeightsEnum.get_state_dict`.
        **kwargs: Arguments of ``timm.create_model`` (e.g. ``num_classes=0`` for
            pooled features). ``in_chans`` follows the weights.

    Returns:
        The encoder; with ``num_classes=0`` its forward gives (N, D) features.

    Raises:
        ValueError: If the weights are for another architecture or channel count,
            or do not fit the model, or ``rda_semantics`` is invalid or cannot be
            served by the file.
    """
    check_rda_semantics(rda_semantics)
    if weights is None:
        return timm.create_model(model, **kwargs)
    resolved, in_chans = resolve_encoder(
        weights, model=model, modality=modality, rda_semantics=rda_semantics
    )
    given = kwargs.pop('in_chans', in_chans)
    if given != in_chans:
        raise ValueError(
            f'in_chans={given} does not match the {in_chans} input channels of '
            f'{resolved.source}'
        )
    encoder: nn.Module = timm.create_model(model, in_chans=in_chans, **kwargs)
    load_encoder_state(
        encoder, resolved.state_dict, what=f'{model} from {resolved.source}'
    )
    return encoder


def make_builder(
    model: str, enum: type[DeCURWeightsEnum], title: str
) -> Callable[..., nn.Module]:
    """A torchgeo-style builder ``decur_<model>(weights, **kwargs)``.

    Args:
        model: timm name of the architecture.
        enum: Its Weights enum (for the documentation).
        title: Human-readable architecture name.

    Returns:
        The builder; it calls :func:`build_encoder`.
    """

    def builder(
        weights: DeCURWeightsEnum | str | os.PathLike[str] | None = None,
        *,
        modality: str | int | None = None,
        rda_semantics: RDASemantics = 'transfer',
        **kwargs: Any,
    ) -> nn.Module:
        return build_encoder(
            model, weights, modality=modality, rda_semantics=rda_semantics, **kwargs
        )

    builder.__name__ = builder.__qualname__ = f'decur_{model}'
    builder.__doc__ = f"""{title} (timm ``{model}``) with DeCUR weights.

    Args:
        weights: A :class:`{enum.__name__}` member, its name, or a path to a file
            in a released layout (joint or backbone-only).
        modality: Which encoder of a joint file (name or 1-based position).
        rda_semantics: Attention blocks of modality 2 of RDA joint files
            (``'transfer'``: ``da2_*``; ``'pretraining'``: ``da1_*``).
        **kwargs: Arguments of ``timm.create_model`` (``num_classes=0`` for pooled
            features).

    Returns:
        The encoder.
    """
    return builder


decur_resnet50 = make_builder('resnet50', DeCURResNet50_Weights, 'ResNet-50')
decur_resnet50_rda = make_builder(
    'resnet50_rda',
    DeCURResNet50RDA_Weights,
    'ResNet-50 with residual deformable attention',
)
decur_vit_small_patch16_224 = make_builder(
    'vit_small_patch16_224', DeCURViTSmall16_Weights, 'ViT-S/16'
)
decur_mit_b2 = make_builder('mit_b2', DeCURMiTB2_Weights, 'MiT-B2 encoder')
decur_mit_b5 = make_builder('mit_b5', DeCURMiTB5_Weights, 'MiT-B5 encoder')

__all__ = (
    'build_encoder',
    'decur_mit_b2',
    'decur_mit_b5',
    'decur_resnet50',
    'decur_resnet50_rda',
    'decur_vit_small_patch16_224',
    'make_builder',
)
