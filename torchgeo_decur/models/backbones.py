"""Backbone (encoder) construction by timm model name."""

from collections.abc import Mapping
from typing import Any

import timm
from torch import nn

from ..checkpoints.layouts import RDASemantics, check_rda_semantics


def split_rda_options(
    backbone_kwargs: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], RDASemantics, bool]:
    """Take the two residual-deformable-attention options out of backbone_kwargs.

    They are read by the tasks, not by ``timm.create_model``:

    * ``rda_semantics``: which deformable-attention blocks the modality-2
      encoder of an RDA joint checkpoint gets, ``'transfer'`` (default:
      ``da2_*``, as the released MS / DEM files and the downstream code) or
      ``'pretraining'`` (``da1_*``, what the reference pretraining forward ran
      modality 2 through);
    * ``shared_rda``: in pretraining, run modality 2 through modality 1's
      deformable-attention blocks (the same module objects), as the reference
      code did (default False: one set of blocks per modality, the paper).

    Args:
        backbone_kwargs: The task's ``backbone_kwargs`` (may be None).

    Returns:
        ``(the other kwargs, rda_semantics, shared_rda)``.

    Raises:
        ValueError: For an invalid ``rda_semantics`` or a non-boolean
            ``shared_rda``.
    """
    kwargs = dict(backbone_kwargs or {})
    semantics = check_rda_semantics(kwargs.pop('rda_semantics', 'transfer'))
    shared = kwargs.pop('shared_rda', False)
    if not isinstance(shared, bool):
        raise ValueError(f'shared_rda must be true or false, got {shared!r}')
    return kwargs, semantics, shared


def build_backbone(
    model: str,
    in_chans: int,
    pretrained: bool = False,
    fresh_stem: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build an encoder whose forward returns pooled features.

    Any model that ``timm.create_model`` knows works (``resnet18``, ``resnet50``,
    ``vit_small_patch16_224``, and the models this package registers with timm,
    such as ``mit_b5``). The classifier is removed (``num_classes=0``) unless
    ``num_classes`` is passed explicitly (DeCUR's MiT backbone keeps a 2048-d
    head), so ``forward`` maps (N, C, H, W) images to (N, D) features with
    ``D = feature_dim(model)``.

    Args:
        model: timm model name.
        in_chans: Number of input channels C.
        pretrained: Load timm's ImageNet weights (needs network access or the
            Hugging Face cache). timm adapts the RGB stem to ``in_chans``.
        fresh_stem: When ``in_chans != 3``, re-initialise the first convolution
            (PyTorch's default Conv2d init) instead of keeping timm's adaptation of
            the RGB filters: the DeCUR reference replaced the 2- and 13-channel
            stems of its ImageNet-initialised S1/S2 encoders by fresh layers
            after loading ImageNet weights. 3-channel stems are kept, as in the reference.
        **kwargs: Extra keyword arguments for ``timm.create_model`` (for example
            ``img_size`` or ``dynamic_img_size`` for ViTs).

    Returns:
        The encoder.

    Raises:
        ValueError: If ``in_chans`` is not positive, timm has no such model, or
            ``fresh_stem`` is asked of a model that does not name its first
            convolution (timm's ``pretrained_cfg['first_conv']``).
    """
    if in_chans <= 0:
        raise ValueError(f'in_chans must be positive, got {in_chans} for {model!r}')
    if not timm.is_model(model):
        raise ValueError(
            f'unknown model {model!r}: not a timm model name (see timm.list_models())'
        )
    kwargs.setdefault('num_classes', 0)
    encoder: nn.Module = timm.create_model(
        model, in_chans=in_chans, pretrained=pretrained, **kwargs
    )
    if fresh_stem and in_chans != 3:
        first = getattr(encoder, 'pretrained_cfg', {}).get('first_conv')
        stem = encoder.get_submodule(first) if isinstance(first, str) else None
        if not isinstance(stem, nn.Conv2d):
            raise ValueError(
                f'fresh_stem: cannot find the first convolution of {model!r} (its '
                "timm pretrained_cfg names no 'first_conv')"
            )
        stem.reset_parameters()
    return encoder


def feature_dim(backbone: nn.Module) -> int:
    """Size D of the output of a timm-style encoder.

    Args:
        backbone: Encoder built by :func:`build_backbone` (or any timm model).

    Returns:
        ``backbone.num_classes`` when the encoder keeps a head, else
        ``backbone.num_features``.

    Raises:
        ValueError: If the encoder does not expose ``num_features``.
    """
    dim = getattr(backbone, 'num_classes', 0) or getattr(backbone, 'num_features', None)
    if not isinstance(dim, int):
        raise ValueError(
            f'{type(backbone).__name__} does not expose an integer num_features'
        )
    return dim


def weights_module(encoder: nn.Module) -> nn.Module:
    """The module whose parameter names are the plain encoder names.

    timm's feature extractors keep the encoder's names, except the "getter"
    variant used by models with ``forward_intermediates`` feature extraction
    (e.g. ``resnet50_rda``), which wraps the whole model as ``.model``.

    Args:
        encoder: An encoder, or a timm ``features_only`` model built from one.

    Returns:
        The module to load encoder weights into.
    """
    from timm.models._features import FeatureGetterNet

    if isinstance(encoder, FeatureGetterNet):
        inner: nn.Module = encoder.model
        return inner
    return encoder
