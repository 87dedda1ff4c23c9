"""Reading checkpoint files and loading state dicts with clear errors."""

import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a checkpoint file safely and return its model state dict.

    Accepts a plain state dict, the reference code's ``{'epoch', 'model',
    'optimizer'}`` wrapper and Lightning checkpoints (``'state_dict'``). Files are
    read with ``weights_only=True``, so no code in them runs.

    Args:
        path: Path of the ``.pth`` / ``.ckpt`` file.

    Returns:
        Map from parameter name to tensor.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file holds no recognisable state dict.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint file {os.fspath(path)!r} does not exist')
    obj = torch.load(path, map_location='cpu', weights_only=True)
    return unwrap_state_dict(obj, source=os.fspath(path))


def unwrap_state_dict(obj: Any, source: str = 'checkpoint') -> dict[str, Tensor]:
    """Return the model state dict held by a loaded checkpoint object.

    Args:
        obj: What ``torch.load`` returned.
        source: Name of the origin, used in error messages.

    Returns:
        Map from parameter name to tensor.

    Raises:
        ValueError: If ``obj`` holds no recognisable state dict.
    """
    if isinstance(obj, Mapping):
        for key in ('state_dict', 'model'):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and _is_state_dict(inner):
                return dict(inner)
        if _is_state_dict(obj):
            return dict(obj)
        keys = sorted(map(str, obj))[:10]
        raise ValueError(
            f'{source} is not a state dict and has no "model" or "state_dict" '
            f'entry holding one; top-level keys: {keys}'
        )
    raise ValueError(f'{source} holds a {type(obj).__name__}, not a state dict')


def _is_state_dict(obj: Mapping[Any, Any]) -> bool:
    """Whether ``obj`` maps strings to tensors (and is not empty)."""
    return bool(obj) and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()
    )


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Keep the keys that start with ``prefix`` and remove it from them.

    Args:
        state_dict: Source state dict.
        prefix: Prefix such as ``'backbones.s1.'``.

    Returns:
        The selected entries with the prefix removed.
    """
    n = len(prefix)
    return {k[n:]: v for k, v in state_dict.items() if k.startswith(prefix)}


def load_exact(
    module: nn.Module,
    state_dict: Mapping[str, Tensor],
    what: str,
    ignore_missing: Iterable[str] = (),
    ignore_unexpected: Iterable[str] = (),
) -> None:
    """Load ``state_dict`` into ``module``, failing loudly on any mismatch.

    Args:
        module: Target module.
        state_dict: Weights to load.
        what: Description used in the error (e.g. ``"backbone 's1'"``).
        ignore_missing: Key prefixes that may be absent from ``state_dict``.
        ignore_unexpected: Key prefixes of ``state_dict`` that are dropped.

    Raises:
        ValueError: If keys are missing or unexpected, or shapes differ; the message
            lists the offending keys.
    """
    ignore_missing = tuple(ignore_missing)
    ignore_unexpected = tuple(ignore_unexpected)
    own = module.state_dict()
    given = {k: v for k, v in state_dict.items() if not k.startswith(ignore_unexpected)}
    missing = sorted(
        k for k in own if k not in given and not k.startswith(ignore_missing)
    )
    unexpected = sorted(k for k in given if k not in own)
    wrong_shape = sorted(
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in given.items()
        if k in own and v.shape != own[k].shape
    )
    if missing or unexpected or wrong_shape:
        parts = []
        for label, keys in (
            ('missing keys', missing),
            ('unexpected keys', unexpected),
            ('shape mismatches', wrong_shape),
        ):
            if keys:
                shown = ', '.join(keys[:8]) + (
                    f', ... ({len(keys)} in all)' if len(keys) > 8 else ''
                )
                parts.append(f'{label}: {shown}')
        raise ValueError(f'cannot load weights into {what}: ' + '; '.join(parts))
    module.load_state_dict(given, strict=False)


#: How the modality-2 deformable-attention blocks of an RDA joint checkpoint are
#: chosen: ``'transfer'`` takes ``da2_*`` (as the released MS/DEM backbone files and
#: the authors' downstream code do), ``'pretraining'`` takes ``da1_*`` (what the
#: reference pretraining forward actually used for both modalities, FACTS A §2.5).
RDASemantics = Literal['transfer', 'pretraining']


def _reference_prefix(state_dict: Mapping[str, Tensor]) -> str | None:
    """``'module.'`` or ``''`` for the reference DeCUR layout, else None."""
    for prefix in ('module.', ''):
        if any(k.startswith(f'{prefix}backbone_1.') for k in state_dict):
            return prefix
    return None


def split_joint_state_dict(
    state_dict: Mapping[str, Tensor],
    modalities: tuple[str, str],
    source: str,
    rda_semantics: RDASemantics = 'transfer',
) -> tuple[dict[str, dict[str, Tensor]], dict[str, dict[str, Tensor]]]:
    """Split a checkpoint holding both encoders into per-modality parts.

    Understands two layouts:

    * this package's tasks: ``backbones.<m>.*``, ``projectors.<m>.*``;
    * the reference DeCUR code (the released joint files): ``[module.]backbone_1.*``
      / ``backbone_2.*`` for modality 1 / 2, ``projector1.*`` / ``projector2.*``,
      ``bn.*`` (the loss's parameter-free BatchNorm, dropped) and, for RDA models,
      ``da1_l3.*``, ``da1_l4.*``, ``da2_l3.*``, ``da2_l4.*``, which are returned
      inside each backbone's dict as ``da_l3.*`` / ``da_l4.*``.

    Args:
        state_dict: The checkpoint's state dict (already unwrapped).
        modalities: Modality names, modality 1 first.
        source: Where the weights came from, for error messages.
        rda_semantics: Which DA blocks modality 2 gets; see :data:`RDASemantics`.

    Returns:
        ``(backbones, projectors)``: per modality, the encoder's state dict and the
        projector's (empty when the file has none).

    Raises:
        ValueError: If the layout is not recognised, a modality is absent or
            unknown keys are left over.
    """
    if rda_semantics not in ('transfer', 'pretraining'):
        raise ValueError(
            f"rda_semantics must be 'transfer' or 'pretraining', got {rda_semantics!r}"
        )
    backbones: dict[str, dict[str, Tensor]] = {}
    projectors: dict[str, dict[str, Tensor]] = {}
    prefix = _reference_prefix(state_dict)
    if prefix is not None:
        for i, m in enumerate(modalities, start=1):
            backbones[m] = strip_prefix(state_dict, f'{prefix}backbone_{i}.')
            projectors[m] = strip_prefix(state_dict, f'{prefix}projector{i}.')
            da = 1 if i == 1 or rda_semantics == 'pretraining' else 2
            for layer in ('l3', 'l4'):
                block = strip_prefix(state_dict, f'{prefix}da{da}_{layer}.')
                backbones[m].update({f'da_{layer}.{k}': v for k, v in block.items()})
            if not backbones[m]:
                raise ValueError(f'{source} has no {prefix}backbone_{i}.* weights')
        used = {
            k
            for k in state_dict
            if k.startswith(
                tuple(
                    f'{prefix}{name}'
                    for name in (
                        'backbone_1.',
                        'backbone_2.',
                        'projector1.',
                        'projector2.',
                        'bn.',
                        'da1_l3.',
                        'da1_l4.',
                        'da2_l3.',
                        'da2_l4.',
                    )
                )
            )
        }
        leftover = sorted(set(state_dict) - used)
        if leftover:
            raise ValueError(
                f'{source} has keys outside the DeCUR joint layout: {leftover[:8]}'
            )
        return backbones, projectors

    if not any(k.startswith('backbones.') for k in state_dict):
        raise ValueError(
            f'{source} does not hold both encoders (neither "backbones.<modality>." '
            'nor DeCUR "backbone_1."/"backbone_2." keys); pass per-modality weights '
            'as {modality: weights} for single-encoder files'
        )
    for m in modalities:
        backbones[m] = strip_prefix(state_dict, f'backbones.{m}.')
        if not backbones[m]:
            found = sorted(
                {k.split('.')[1] for k in state_dict if k.startswith('backbones.')}
            )
            raise ValueError(
                f'{source} has no weights for modality {m!r}; it has {found}'
            )
        projectors[m] = strip_prefix(state_dict, f'projectors.{m}.')
    return backbones, projectors


#: Keys a backbone checkpoint may carry that an encoder built with ``num_classes=0``
#: does not have (classifier heads).
CLASSIFIER_PREFIXES = ('fc.', 'head.', 'classifier.')


def remap_backbone_state_dict(
    state_dict: Mapping[str, Tensor], source: str = 'checkpoint'
) -> dict[str, Tensor]:
    """Bring a single-encoder checkpoint onto this package's module names.

    Plain timm/torchvision layouts pass through unchanged.

    Args:
        state_dict: Encoder weights as stored in a file.
        source: Where they came from, for error messages.

    Returns:
        The state dict with this package's key names.
    """
    return dict(state_dict)
