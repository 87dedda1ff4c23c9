"""An encoder architecture's structure without its weights: key names, shapes, input layer."""

import functools
from collections.abc import Mapping
from typing import Any

import timm
import torch
from torch import Tensor, nn


@functools.cache
def _shapes(
    model: str, in_chans: int, kwargs: tuple[tuple[str, Any], ...]
) -> dict[str, torch.Size] | None:
    """Cached body of :func:`encoder_shapes` (hashable arguments)."""
    try:
        # On the meta device: parameters get shapes but no memory and no init.
        with torch.device('meta'):
            encoder = timm.create_model(model, in_chans=in_chans, **dict(kwargs))
    except (NotImplementedError, RuntimeError):
        # Some constructors read a value from a tensor they create (smp's MiT
        # takes its drop-path rates from torch.linspace(...).item()), which a
        # meta tensor cannot give. Building them on the CPU only to read shapes
        # takes seconds, so they are not checked here; loading into the real
        # model still names every mismatching key (load_encoder_state).
        return None
    return {k: v.shape for k, v in encoder.state_dict().items()}


def encoder_shapes(
    model: str, in_chans: int, **kwargs: Any
) -> dict[str, torch.Size] | None:
    """Key names and shapes of the state dict of a timm encoder.

    The encoder is built on the meta device (no memory, no initialisation) and
    the result is cached per argument set.

    Args:
        model: timm model name.
        in_chans: Input channels.
        **kwargs: Further ``timm.create_model`` arguments (e.g. ``num_classes``).

    Returns:
        Key name → ``torch.Size``, or None for an architecture whose constructor
        cannot run on the meta device (smp's MiT).
    """
    shapes = _shapes(model, in_chans, tuple(sorted(kwargs.items())))
    return None if shapes is None else dict(shapes)


__all__ = ('encoder_shapes',)


def build_for_shapes(architecture: str, in_chans: int = 3) -> nn.Module:
    """Build a timm encoder (``num_classes=0``) for its structure, not its values.

    The model is built on the meta device (no memory, milliseconds); encoders
    whose constructor computes with tensors (smp's MiT) are built on the CPU.

    Args:
        architecture: timm name (this package registers ``resnet50_rda``,
            ``mit_b2`` and ``mit_b5`` with timm).
        in_chans: Input channels.

    Returns:
        The encoder.

    Raises:
        ValueError: If timm does not know ``architecture``.
    """
    if not timm.is_model(architecture):
        raise ValueError(f'timm has no architecture {architecture!r}')
    try:
        with torch.device('meta'):
            return timm.create_model(
                architecture, pretrained=False, num_classes=0, in_chans=in_chans
            )
    except RuntimeError:  # e.g. Tensor.item() on meta tensors at construction
        return timm.create_model(
            architecture, pretrained=False, num_classes=0, in_chans=in_chans
        )


def input_layer(encoder: nn.Module) -> str:
    """Name of an encoder's input layer: the convolution that sees the image.

    timm's ``pretrained_cfg['first_conv']`` when the model has one (e.g.
    ``conv1.0`` of a deep-stem ResNet, ``patch_embed.proj`` of a ViT), else the
    first ``Conv2d`` in module order (e.g. ``patch_embed1.proj`` of a MiT).

    Args:
        encoder: A built encoder.

    Returns:
        The module name; its ``.weight`` has shape (out, in_chans, kh, kw).

    Raises:
        ValueError: If the encoder has no 2-D convolution.
    """
    modules = dict(encoder.named_modules())
    cfg = getattr(encoder, 'pretrained_cfg', None) or {}
    first = cfg.get('first_conv')
    if isinstance(first, str) and isinstance(modules.get(first), nn.Conv2d):
        return str(first)
    for name, module in modules.items():
        if isinstance(module, nn.Conv2d):
            return str(name)
    raise ValueError(f'{type(encoder).__name__} has no Conv2d input layer')


def infer_in_chans(
    state_dict: Mapping[str, Tensor], source: str, architecture: str | None = None
) -> int:
    """Number of input channels of an encoder's weights.

    With ``architecture``, the input layer is found in the built model (see
    :func:`input_layer`) and its weight read from ``state_dict``. Without one, or
    when that key is absent (weights of another architecture, which loading then
    reports), the first 4-D weight in the state dict's order is taken: state dicts
    keep the module order of the model that wrote them, whose first convolution
    is its input layer.

    Args:
        state_dict: Encoder weights with this package's key names.
        source: Where they came from, for error messages.
        architecture: timm name of the encoder, if known.

    Returns:
        The channel count of the input layer.

    Raises:
        ValueError: If the weights hold no 4-D (convolution) weight.
    """
    if architecture is not None:
        try:
            key = f'{input_layer(build_for_shapes(architecture))}.weight'
        except ValueError:
            key = ''
        if key in state_dict and state_dict[key].ndim == 4:
            return int(state_dict[key].shape[1])
    for key, value in state_dict.items():
        if key.endswith('weight') and value.ndim == 4:
            return int(value.shape[1])
    raise ValueError(
        f'cannot tell the input channels of {source}: it holds no convolution '
        f'weight (first keys: {list(state_dict)[:5]})'
    )
