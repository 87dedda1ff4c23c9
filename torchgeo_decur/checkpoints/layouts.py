"""State-dict layouts: released DeCUR files, backbone files, this package's keys.

Splits joint (two-encoder) checkpoints, maps the released key names to timm's and
back, and loads state dicts into modules with errors that name every missing,
unexpected or mis-shaped key.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Literal

import torch
from torch import Tensor, nn


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


def check_state_dict(
    expected: Mapping[str, torch.Size],
    state_dict: Mapping[str, Tensor],
    what: str,
    ignore_missing: Iterable[str] = (),
    ignore_unexpected: Iterable[str] = (),
) -> dict[str, Tensor]:
    """Compare a state dict with the key names and shapes a module expects.

    Args:
        expected: Key name → shape of the target module's state dict.
        state_dict: Weights to check.
        what: Description used in the error (e.g. ``"backbone 's1'"``).
        ignore_missing: Key prefixes that may be absent from ``state_dict``.
        ignore_unexpected: Key prefixes of ``state_dict`` that are dropped when
            ``expected`` has no such key (keys it has are always checked).

    Returns:
        The entries of ``state_dict`` that the module takes (all but the ignored
        unexpected ones).

    Raises:
        ValueError: If keys are missing or unexpected, or shapes differ; the message
            lists the offending keys.
    """
    ignore_missing = tuple(ignore_missing)
    ignore_unexpected = tuple(ignore_unexpected)
    given = {
        k: v
        for k, v in state_dict.items()
        if k in expected or not k.startswith(ignore_unexpected)
    }
    missing = sorted(
        k for k in expected if k not in given and not k.startswith(ignore_missing)
    )
    unexpected = sorted(k for k in given if k not in expected)
    wrong_shape = sorted(
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k])}'
        for k, v in given.items()
        if k in expected and v.shape != expected[k]
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
    return given


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
        ignore_unexpected: Key prefixes of ``state_dict`` that are dropped when
            ``module`` has no such key (keys the module has are always loaded).

    Raises:
        ValueError: If keys are missing or unexpected, or shapes differ; the message
            lists the offending keys (see :func:`check_state_dict`).
    """
    expected = {k: v.shape for k, v in module.state_dict().items()}
    given = check_state_dict(
        expected, state_dict, what, ignore_missing, ignore_unexpected
    )
    module.load_state_dict(given, strict=False)


#: How the modality-2 deformable-attention blocks of an RDA joint checkpoint are
#: chosen: ``'transfer'`` takes ``da2_*`` (as the released MS/DEM backbone files and
#: the authors' downstream code do), ``'pretraining'`` takes ``da1_*`` (what the
#: reference pretraining forward actually used for both modalities).
RDASemantics = Literal['transfer', 'pretraining']


def check_rda_semantics(value: object) -> RDASemantics:
    """Return ``value`` if it is an :data:`RDASemantics` value.

    Args:
        value: The requested semantics.

    Returns:
        ``value``, typed.

    Raises:
        ValueError: If it is neither ``'transfer'`` nor ``'pretraining'``.
    """
    if value in ('transfer', 'pretraining'):
        return value
    raise ValueError(
        f"rda_semantics must be 'transfer' or 'pretraining', got {value!r}"
    )


def _reference_prefix(state_dict: Mapping[str, Tensor]) -> str | None:
    """``'module.'`` or ``''`` for the reference DeCUR layout, else None."""
    for prefix in ('module.', ''):
        if any(k.startswith(f'{prefix}backbone_1.') for k in state_dict):
            return prefix
    return None


def split_joint_state_dict(
    state_dict: Mapping[str, Tensor],
    modalities: tuple[str, ...],
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
    check_rda_semantics(rda_semantics)
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

#: Prefixes of the deformable-attention blocks of an RDA encoder.
DA_PREFIXES = ('da_l3.', 'da_l4.')

# Released RDA backbone files: ``da<N>_l3.`` / ``da<N>_l4.`` with N = 1 (modality 1)
# or 2 (modality 2), as the authors' converter wrote them.
_RELEASED_DA = re.compile(r'^da([12])_(l[34])\.')


def is_joint_state_dict(state_dict: Mapping[str, Tensor]) -> bool:
    """Whether a state dict holds both encoders of a two-encoder model.

    Args:
        state_dict: An unwrapped state dict.

    Returns:
        True for the reference DeCUR joint layout (``[module.]backbone_1.*``) and for
        this package's task layout (``backbones.<m>.*``).
    """
    return _reference_prefix(state_dict) is not None or any(
        k.startswith('backbones.') for k in state_dict
    )


def remap_backbone_state_dict(
    state_dict: Mapping[str, Tensor],
    source: str = 'checkpoint',
    rda_semantics: RDASemantics = 'transfer',
) -> dict[str, Tensor]:
    """Bring a single-encoder checkpoint onto this package's module names.

    Understands every single-encoder layout of the released DeCUR files:

    * timm / torchvision / smp names (ResNet-50, ViT-S/16 and MiT backbone files):
      unchanged;
    * a ``module.`` prefix on every key (a DDP-wrapped encoder): stripped;
    * RDA backbone files: ``backbone.<ResNet keys>`` plus ``da1_l3.*`` /
      ``da1_l4.*`` (SAR / RGB files) or ``da2_l3.*`` / ``da2_l4.*`` (MS / DEM
      files) → ResNet keys plus ``da_l3.*`` / ``da_l4.*`` (the ``resnet50_rda``
      module names).

    Classifier keys (``fc.*``, ``head.*``) are kept; loaders decide about them. The
    function is idempotent.

    A file with ``da1_*`` blocks serves both :data:`RDASemantics` (modality 1's
    blocks are what both modalities used in pretraining). A file with ``da2_*``
    blocks (the released MS / DEM files) serves only ``'transfer'``: the
    pretraining-time modality-2 encoder ran through modality 1's ``da1_*`` blocks,
    which only the joint file (or the SAR / RGB file) holds.

    Args:
        state_dict: Encoder weights as stored in a file (already unwrapped).
        source: Where they came from, for error messages.
        rda_semantics: Which deformable-attention blocks the caller wants for a
            modality-2 encoder; see :data:`RDASemantics`.

    Returns:
        The state dict with this package's key names.

    Raises:
        ValueError: If the dict holds both encoders of a joint checkpoint, both
            ``da1_*`` and ``da2_*`` blocks, two keys that map to the same name, or
            ``da2_*`` blocks while ``rda_semantics='pretraining'``; or if
            ``rda_semantics`` is invalid.
    """
    check_rda_semantics(rda_semantics)
    if is_joint_state_dict(state_dict):
        raise ValueError(
            f'{source} holds both encoders of a joint checkpoint; select one with '
            'select_encoder_state_dict (or load it as joint weights)'
        )
    items = dict(state_dict)
    if items and all(k.startswith('module.') for k in items):
        items = strip_prefix(items, 'module.')
    blocks = {m.group(1) for k in items if (m := _RELEASED_DA.match(k))}
    if len(blocks) > 1:
        raise ValueError(
            f'{source} has both da1_* and da2_* deformable-attention blocks; a '
            'single-encoder file holds one set (joint files go through '
            'split_joint_state_dict)'
        )
    if blocks == {'2'} and rda_semantics == 'pretraining':
        raise ValueError(
            f"{source} holds modality 2's own da2_* deformable-attention blocks; "
            "rda_semantics='pretraining' needs the da1_* blocks that modality 2 ran "
            'through in pretraining, which this backbone-only file does not hold. '
            'Load the joint file instead (e.g. the *_joint_* member with '
            "modality=2 and rda_semantics='pretraining'), or use "
            "rda_semantics='transfer' to take the da2_* blocks of this file"
        )
    out: dict[str, Tensor] = {}
    for key, value in items.items():
        new = key
        if key.startswith('backbone.'):
            new = key[len('backbone.') :]
        elif match := _RELEASED_DA.match(key):
            new = f'da_{match.group(2)}.{key[match.end() :]}'
        if new in out:
            raise ValueError(
                f'{source}: keys {key!r} and {new!r} clash after remapping'
            )
        out[new] = value
    return out


def select_encoder_state_dict(
    state_dict: Mapping[str, Tensor],
    source: str,
    modality: int | str | None = None,
    rda_semantics: RDASemantics = 'transfer',
) -> dict[str, Tensor]:
    """The weights of one encoder, from a single-encoder or a joint checkpoint.

    Args:
        state_dict: An unwrapped state dict in any released layout or this
            package's task layout.
        source: Where it came from, for error messages.
        modality: For joint checkpoints, which encoder: 1-based position (1 =
            modality 1) or, for the task layout, the modality name; default 1.
            Must be None or 1 for single-encoder checkpoints.
        rda_semantics: Which deformable-attention blocks modality 2 of an RDA joint
            checkpoint gets; see :data:`RDASemantics`. Single-encoder files with
            ``da2_*`` blocks serve only ``'transfer'`` (see
            :func:`remap_backbone_state_dict`).

    Returns:
        The encoder's state dict with this package's key names.

    Raises:
        ValueError: If ``modality`` does not name an encoder of the checkpoint, or
            ``rda_semantics`` is invalid or cannot be served by the file.
    """
    check_rda_semantics(rda_semantics)
    if not is_joint_state_dict(state_dict):
        if modality not in (None, 1):
            raise ValueError(
                f'{source} holds a single encoder; modality={modality!r} is not '
                'available'
            )
        return remap_backbone_state_dict(state_dict, source, rda_semantics)
    reference = _reference_prefix(state_dict) is not None
    if reference:
        names: tuple[str, ...] = ('1', '2')
    else:
        names = tuple(
            dict.fromkeys(
                k.split('.')[1] for k in state_dict if k.startswith('backbones.')
            )
        )
    if modality is None:
        name = names[0]
    elif isinstance(modality, int) and 1 <= modality <= len(names):
        name = names[modality - 1]
    elif isinstance(modality, str) and not reference and modality in names:
        name = modality
    else:
        raise ValueError(
            f'{source} holds encoders {list(names)}; modality={modality!r} names none '
            'of them (use a 1-based position or a modality name of the task layout)'
        )
    if len(names) != 2:
        raise ValueError(f'{source} holds {len(names)} encoders {list(names)}, not 2')
    backbones, _ = split_joint_state_dict(
        state_dict, (names[0], names[1]), source, rda_semantics
    )
    return backbones[name]


def load_encoder_state(
    module: nn.Module, state_dict: Mapping[str, Tensor], what: str
) -> None:
    """Load encoder weights, tolerating only a changed classifier head.

    Every encoder key must be present with its shape. Classifier weights
    (:data:`CLASSIFIER_PREFIXES`) load when ``module`` has a head of the same shape
    (e.g. DeCUR's 2048-d MiT head) and are otherwise dropped, leaving a new head
    at its initial values (e.g. ``num_classes=10`` for fine-tuning).

    Args:
        module: Target encoder.
        state_dict: Weights with the module's key names (see
            :func:`remap_backbone_state_dict`).
        what: Description used in errors.

    Raises:
        ValueError: If encoder keys are missing or unexpected or shapes differ.
    """
    own = module.state_dict()
    kept = {
        k: v
        for k, v in state_dict.items()
        if not k.startswith(CLASSIFIER_PREFIXES)
        or (k in own and own[k].shape == v.shape)
    }
    load_exact(module, kept, what, ignore_missing=CLASSIFIER_PREFIXES)


def embedding_size(projector: Mapping[str, Tensor]) -> int | None:
    """Output size K of a projector given as a state dict.

    Args:
        projector: Keys ``<index>.<name>`` of a Linear / BatchNorm / ReLU stack
            (:class:`~torchgeo_decur.models.Projector`, the reference projector).

    Returns:
        The rows of the last Linear weight, or None if there is none.
    """
    linear = [
        k
        for k, v in projector.items()
        if k.endswith('.weight') and k.split('.')[0].isdigit() and v.ndim == 2
    ]
    if not linear:
        return None
    last = max(linear, key=lambda k: int(k.split('.')[0]))
    return int(projector[last].shape[0])


def to_reference_joint(
    backbones: Mapping[str, Mapping[str, Tensor]],
    projectors: Mapping[str, Mapping[str, Tensor]],
) -> dict[str, Tensor]:
    """Write two encoders (and projectors) in the released joint layout.

    The inverse of :func:`split_joint_state_dict` with transfer semantics:
    ``module.backbone_<i>.*``, ``module.projector<i>.*`` and, for RDA encoders,
    ``module.da<i>_l3.*`` / ``module.da<i>_l4.*``, with i = 1, 2 in the order of
    ``backbones``, plus the three buffers of the reference model's
    ``bn = BatchNorm1d(K, affine=False)`` after the projectors:
    ``module.bn.running_mean`` (K zeros), ``module.bn.running_var`` (K ones) and
    ``module.bn.num_batches_tracked`` (0, int64). These are fresh values: this
    package's loss standardises each batch and keeps no running statistics, and
    the reference training never reads them either (its bn runs in training
    mode); they are written so the file has the released key set (e.g. 665
    keys for ResNet-50) and loads strictly into the reference
    model. Without projectors there is no K and no ``bn`` keys.

    Args:
        backbones: Encoder state dicts per modality, modality 1 first.
        projectors: Projector state dicts per modality (may be empty).

    Returns:
        The joint state dict.

    Raises:
        ValueError: If the projectors have different output sizes.
    """
    out: dict[str, Tensor] = {}
    for i, modality in enumerate(backbones, start=1):
        for key, value in backbones[modality].items():
            if key.startswith(DA_PREFIXES):
                out[f'module.da{i}_{key[len("da_") :]}'] = value
            else:
                out[f'module.backbone_{i}.{key}'] = value
        for key, value in projectors.get(modality, {}).items():
            out[f'module.projector{i}.{key}'] = value
    sizes = {m: k for m in backbones if (k := embedding_size(projectors.get(m, {})))}
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f'projectors of different output sizes {sizes}; the DeCUR joint layout '
            'has one embedding size K'
        )
    if sizes:
        (k,) = set(sizes.values())
        out['module.bn.running_mean'] = torch.zeros(k)
        out['module.bn.running_var'] = torch.ones(k)
        out['module.bn.num_batches_tracked'] = torch.tensor(0, dtype=torch.int64)
    return out


def to_reference_backbone(
    state_dict: Mapping[str, Tensor], position: int
) -> dict[str, Tensor]:
    """Write one encoder in the released backbone-only layout.

    Plain encoders keep their timm / smp names; RDA encoders get the
    ``backbone.<ResNet keys>`` + ``da<position>_l3/l4.*`` layout of the released
    RDA files. Classifier keys (e.g. DeCUR's MiT ``head``) are left out, as in the
    released backbone files.

    Args:
        state_dict: Encoder weights with this package's key names.
        position: 1 for modality 1, 2 for modality 2.

    Returns:
        The backbone-only state dict.
    """
    rda = any(k.startswith(DA_PREFIXES) for k in state_dict)
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith(CLASSIFIER_PREFIXES):
            continue
        if key.startswith(DA_PREFIXES):
            out[f'da{position}_{key[len("da_") :]}'] = value
        else:
            out[f'backbone.{key}' if rda else key] = value
    return out
