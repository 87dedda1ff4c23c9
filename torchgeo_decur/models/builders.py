"""torchgeo-style builders ``decur_<model>(weights, **kwargs)`` of single encoders."""

import os
from collections.abc import Callable
from typing import Any

import timm
from torch import nn
from torchvision.models._api import WeightsEnum

from .checkpoints import RDASemantics, check_rda_semantics, load_encoder_state
from .loading import resolve_encoder
from .weights_enum import DeCURWeightsEnum


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


__all__ = ('build_encoder', 'make_builder')
