"""Key names and shapes of an encoder architecture, without its weights."""

import functools
from typing import Any

import timm
import torch


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
