"""Export DeCUR MiT encoders for CMX (RGB-X semantic segmentation).

CMX (github.com/huaaaliu/RGBX_Semantic_Segmentation) builds a dual-branch MiT whose
RGB branch uses the plain SegFormer names (``patch_embedK.*``, ``blockK.i.*``,
``normK.*``) and whose X (here HHA) branch the same names with an ``extra_`` prefix,
plus fusion modules ``FRMs.*`` / ``FFMs.*`` that no pretrained file holds. Its loader
(``load_dualpath_model``) reads **one** file, unwraps ``model``, copies every
``patch_embed``/``block``/``norm`` key to its ``extra_`` twin and loads non-strictly
(CMX's ``dual_segformer.py``). Given only a plain encoder file it therefore puts the same weights
in both branches.

:func:`export_cmx` writes, from a DeCUR checkpoint holding both encoders:

* ``<stem>_<m1>_<m2>_cmx.pth``: the dual-branch file: modality-1 (RGB) keys as they
  are, then modality-2 (HHA) keys with the ``extra_`` prefix. The order matters:
  CMX's loader also copies each RGB key onto its ``extra_`` name, so the HHA keys
  must come later to overwrite those copies;
* ``<stem>_<m1>.pth`` and ``<stem>_<m2>.pth``: plain per-modality encoder files,
  the layout of the released ``mitb*_sunrgbd_backbone_*`` files.

DeCUR's pretraining ``head`` (512→2048) is dropped everywhere. The DeCUR repository
itself only splits the encoders; the dual-branch merge is this package's.

The files are written atomically and existing ones are only replaced with
``overwrite=True``. The command line is ``torchgeo-decur cmx``
(:mod:`torchgeo_decur.cli.cmx`).
"""

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from segmentation_models_pytorch.encoders import encoders as smp_encoders
from torch import Tensor
from torchvision.models._api import WeightsEnum

from .checkpoints.files import check_finite, save_atomically
from .checkpoints.layouts import split_joint_state_dict
from .export import prepare_output_dir
from .weights.loading import read_state_dict

#: Prefix of CMX's X-branch (depth/HHA) encoder parameter names.
CMX_EXTRA_PREFIX = 'extra_'
#: Key prefixes of DeCUR's pretraining head inside the MiT backbone.
HEAD_PREFIXES = ('head.',)

_MIT_KEY = re.compile(r'^(patch_embed[1-4]\.|block([1-4])\.(\d+)\.|norm([1-4])\.)')


def mit_variant(state_dict: Mapping[str, Tensor], what: str) -> str:
    """Name the smp/SegFormer MiT variant a head-less encoder state dict belongs to.

    The variant follows from the number of blocks per stage and the stage widths
    (``normK.weight``), compared with smp's MiT configurations.

    Args:
        state_dict: Encoder weights without ``head.*``.
        what: Description for error messages.

    Returns:
        The variant name, e.g. ``'mit_b2'``.

    Raises:
        ValueError: If keys are not MiT encoder keys, the input is not 3-channel
            (CMX's branches both take 3 channels) or no MiT variant matches.
    """
    foreign = sorted(k for k in state_dict if not _MIT_KEY.match(k))
    if foreign:
        raise ValueError(
            f'{what} is not a MiT (SegFormer) encoder: keys outside '
            f'patch_embed*/block*/norm*: {foreign[:8]}'
            + (f', ... ({len(foreign)} in all)' if len(foreign) > 8 else '')
        )
    depths = [0, 0, 0, 0]
    for key in state_dict:
        match = _MIT_KEY.match(key)
        if match and match.group(2):
            stage, index = int(match.group(2)) - 1, int(match.group(3))
            depths[stage] = max(depths[stage], index + 1)
    widths = [
        int(state_dict[f'norm{i}.weight'].shape[0])
        if f'norm{i}.weight' in state_dict
        else 0
        for i in range(1, 5)
    ]
    stem = state_dict.get('patch_embed1.proj.weight')
    if stem is None or stem.ndim != 4 or stem.shape[1] != 3:
        shape = None if stem is None else tuple(stem.shape)
        raise ValueError(
            f'{what}: CMX needs a 3-channel MiT stem (patch_embed1.proj.weight '
            f'(64, 3, 7, 7)), got {shape}'
        )
    for name, spec in smp_encoders.items():
        params = spec['params']
        if (
            name.startswith('mit_')
            and list(params.get('depths', ())) == depths
            and list(params.get('embed_dims', ())) == widths
        ):
            return str(name)
    raise ValueError(
        f'{what}: blocks per stage {depths} and widths {widths} match no MiT variant'
    )


def cmx_state_dicts(
    state_dict: Mapping[str, Tensor],
    modalities: Sequence[str] = ('rgb', 'hha'),
    source: str = 'checkpoint',
) -> tuple[dict[str, Tensor], dict[str, dict[str, Tensor]], str]:
    """Build CMX's dual-branch state dict and the plain per-modality ones.

    Args:
        state_dict: A checkpoint holding both encoders: the reference DeCUR joint
            layout (``[module.]backbone_1.*`` = RGB, ``backbone_2.*`` = HHA) or a
            DeCURTask checkpoint (``backbones.<modality>.*``).
        modalities: Modality names, RGB (CMX's main branch) first.
        source: Where the weights came from, for error messages.

    Returns:
        ``(dual, plain, variant)``: the dual-branch state dict (modality-1 keys,
        then ``extra_``-prefixed modality-2 keys), the head-less encoder state dict
        per modality, and the MiT variant name.

    Raises:
        ValueError: If an encoder is missing or not a 3-channel MiT, or the two
            encoders differ in architecture.
    """
    if len(modalities) != 2:
        raise ValueError(f'need two modalities (RGB first), got {list(modalities)}')
    m1, m2 = modalities
    backbones, _ = split_joint_state_dict(state_dict, (m1, m2), source)
    plain = {
        m: {k: v for k, v in backbones[m].items() if not k.startswith(HEAD_PREFIXES)}
        for m in (m1, m2)
    }
    variants = {m: mit_variant(plain[m], f'encoder {m!r} of {source}') for m in plain}
    same = variants[m1] == variants[m2] and plain[m1].keys() == plain[m2].keys()
    if not same or any(plain[m1][k].shape != plain[m2][k].shape for k in plain[m1]):
        raise ValueError(
            f'{source}: the two encoders differ ({variants}); CMX needs the same MiT '
            'variant in both branches'
        )
    dual = dict(plain[m1])
    dual.update({CMX_EXTRA_PREFIX + k: v for k, v in plain[m2].items()})
    return dual, plain, variants[m1]


def export_cmx(
    weights: WeightsEnum | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    modalities: Sequence[str] = ('rgb', 'hha'),
    stem: str | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the CMX dual-branch file and the two plain encoder files.

    Args:
        weights: A joint Weights enum member (or its name), a reference DeCUR
            joint file or a DeCURTask (Lightning) checkpoint.
        out_dir: Output folder (created if needed).
        modalities: Modality names, RGB first (for task checkpoints these are the
            task's ``modalities``; for reference files they only name the outputs).
        stem: File name stem; default ``decur_<variant>``, e.g. ``decur_mitb2``.
        overwrite: Replace files that already exist.

    Returns:
        Paths by role: ``'cmx'`` and one per modality.

    Raises:
        FileExistsError: If an output exists and ``overwrite`` is False.
        ValueError: If the weights cannot be read or are not two matching
            3-channel MiT encoders, or hold NaN / infinite values.
        OSError: If the output folder cannot be created or written.
    """
    state, source, _ = read_state_dict(weights)
    dual, plain, variant = cmx_state_dicts(state, modalities, source=source)
    check_finite(dual, source)
    stem = stem or f'decur_{variant.replace("_", "")}'
    out = prepare_output_dir(out_dir)
    m1, m2 = modalities
    paths = {'cmx': out / f'{stem}_{m1}_{m2}_cmx.pth'}
    contents: dict[str | os.PathLike[str], dict[str, Tensor]] = {
        paths['cmx']: {k: v.detach().contiguous() for k, v in dual.items()}
    }
    for m in (m1, m2):
        paths[m] = out / f'{stem}_{m}.pth'
        contents[paths[m]] = {k: v.detach().contiguous() for k, v in plain[m].items()}
    save_atomically(contents, overwrite=overwrite)
    return paths


__all__ = (
    'CMX_EXTRA_PREFIX',
    'cmx_state_dicts',
    'export_cmx',
    'mit_variant',
)
