"""torchgeo-style builders of single encoders with DeCUR weights.

One builder ``decur_<model>(weights, **kwargs)`` per Weights enum, and
:func:`decur`, which builds any architecture from weights that name it (an
export, a task checkpoint, a member); :mod:`.registry` registers them with
torchgeo, so ``torchgeo.models.get_model('decur', weights=path)`` works for an
encoder of any timm name.
"""

import os
from collections.abc import Callable
from typing import Any

import timm
from torch import nn
from torchvision.models._api import WeightsEnum

from ..checkpoints.layouts import RDASemantics, check_rda_semantics, load_encoder_state
from ..weights.loading import lookup_member, resolve_encoder, weights_architecture
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


def _check_file_architecture(model: str, weights: object) -> None:
    """Refuse, for ``decur_<model>``, a weights file of another architecture.

    Raises:
        ValueError: Naming the builder's architecture and the file's.
    """
    if not (isinstance(weights, str | os.PathLike) and os.path.exists(weights)):
        return
    arch, _ = weights_architecture(weights)
    if arch is not None and arch != model:
        raise ValueError(
            f'decur_{model} cannot load {os.fspath(weights)!r}: it holds a {arch!r} '
            f"encoder, not {model!r}; get_model('decur', weights=...) builds the "
            'architecture the weights name'
        )


def decur(
    weights: WeightsEnum | str | os.PathLike[str],
    *,
    modality: str | int | None = None,
    rda_semantics: RDASemantics = 'transfer',
    **kwargs: Any,
) -> nn.Module:
    """Any encoder with DeCUR weights; the weights name the architecture.

    ``torchgeo.models.get_model('decur', weights=path)`` for encoders of any timm
    name, e.g. the ``resnet10t`` of the quickstart: the architecture (and the
    arguments it needs, such as a ViT's ``img_size`` and ``patch_size``) comes
    from a timm folder's ``config.json``, a task checkpoint's hyperparameters,
    the shapes of a released-layout file, or a member's ``meta``; the input
    channels from the weights.

    Args:
        weights: An export of ``torchgeo-decur export`` (``<name>_<m>_decur.pth``,
            the joint ``<name>_decur.pth`` or a ``<name>_<m>_timm/`` folder), a
            Lightning checkpoint of a DeCUR task, or a Weights member or its name.
        modality: Which encoder of a joint file or task checkpoint (name or
            1-based position).
        rda_semantics: Attention blocks of modality 2 of RDA joint files.
        **kwargs: Arguments of ``timm.create_model`` (``num_classes=0`` for pooled
            features); they override those the weights name.

    Returns:
        The encoder.

    Raises:
        ValueError: If ``weights`` is None or names no architecture this can
            tell, or the weights do not fit.
    """
    path_given = isinstance(weights, str | os.PathLike) and os.path.exists(weights)
    member = None if path_given else lookup_member(weights)
    if path_given:
        model, needed = weights_architecture(weights)
        if model is None:
            raise ValueError(
                f'cannot tell the architecture of {os.fspath(weights)!r} from its '
                "weights alone; pass the export's <name>_<modality>_timm folder or "
                'the task checkpoint, which name it'
            )
    elif member is not None and member.meta.get('model'):
        model = str(member.meta['model'])
        needed = dict(member.meta.get('backbone_kwargs') or {})
    else:
        raise ValueError(
            f"get_model('decur') takes the architecture from its weights, and "
            f'weights={weights!r} is no file, folder or Weights member; for random '
            'weights use timm.create_model(<name>)'
        )
    return build_encoder(
        model,
        weights,
        modality=modality,
        rda_semantics=rda_semantics,
        **(needed | kwargs),
    )


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
        _check_file_architecture(model, weights)
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
    'decur',
    'decur_mit_b2',
    'decur_mit_b5',
    'decur_resnet50',
    'decur_resnet50_rda',
    'decur_vit_small_patch16_224',
    'make_builder',
)
