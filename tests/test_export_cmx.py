"""CMX export: key sets of the dual-branch file and the plain encoder files."""

import os
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch
from torch import Tensor
from torchvision.models._api import Weights, WeightsEnum

from torchgeo_decur import DeCURMiTB2_Weights, DeCURTask
from torchgeo_decur.cli import main
from torchgeo_decur.datamodules import SUNRGBDDataModule
from torchgeo_decur.export_cmx import cmx_state_dicts, export_cmx, mit_variant

from .conftest import DATA, quiet_trainer
from .models.released import reference_pair, write_joint

#: Documented key counts: 332 per MiT-B2 encoder; CMX's dual mit_b2
#: encoder = these names + their extra_ twins + 156 FRMs.*/FFMs.* fusion keys that
#: no pretrained file holds.
MIT_B2_ENCODER_KEYS = 332


@pytest.fixture(scope='module')
def smp_mit_b2() -> dict[str, Tensor]:
    """State dict of smp's MiT-B2 encoder (names = SegFormer = CMX's RGB branch)."""
    torch.manual_seed(0)
    state: dict[str, Tensor] = smp.encoders.get_encoder('mit_b2').state_dict()
    return state


@pytest.fixture(scope='module')
def smp_mit_b2_keys(smp_mit_b2: dict[str, Tensor]) -> list[str]:
    """Encoder key names of smp's MiT-B2, in order."""
    return list(smp_mit_b2)


@pytest.fixture(scope='module')
def joint(smp_mit_b2: dict[str, Tensor]) -> dict[str, Tensor]:
    """A reference-layout joint MiT-B2 state dict (backbone_1 = RGB, _2 = HHA)."""
    encoder = dict(smp_mit_b2)
    encoder |= {'head.weight': torch.randn(2048, 512), 'head.bias': torch.randn(2048)}
    out: dict[str, Tensor] = {}
    for i, delta in ((1, 0.0), (2, 1.0)):
        out |= {
            f'module.backbone_{i}.{k}': v + delta if v.is_floating_point() else v
            for k, v in encoder.items()
        }
        out[f'module.projector{i}.0.weight'] = torch.randn(16, 2048)
    out['module.bn.running_mean'] = torch.zeros(16)
    return out


def cmx_loader_rule(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """CMX's ``load_dualpath_model`` key handling, as CMX's dual_segformer.py does it.

    Every key containing ``patch_embed`` (checked first), else ``block``, else
    ``norm`` is kept and also copied to the name with that word ``extra_``-prefixed;
    iteration in file order, later writes win.
    """
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        for word in ('patch_embed', 'block', 'norm'):
            if word in key:
                out[key] = value
                out[key.replace(word, 'extra_' + word)] = value
                break
    return out


def check_written_files(
    paths: dict[str, Path],
    keys: list[str],
    rgb: dict[str, Tensor],
    hha: dict[str, Tensor],
) -> None:
    """The three files hold exactly the documented names and the given tensors."""
    expected = set(keys) | {'extra_' + k for k in keys}
    assert len(expected) == 2 * MIT_B2_ENCODER_KEYS
    files = {role: torch.load(p, weights_only=True) for role, p in paths.items()}
    dual = files['cmx']
    assert set(dual) == expected
    assert not any(k.startswith('head.') for f in files.values() for k in f)
    # RGB names first, then the X branch (CMX's loader depends on this order).
    names = list(dual)
    assert names[: len(keys)] == keys
    assert names[len(keys) :] == ['extra_' + k for k in keys]
    assert list(files['rgb']) == keys
    assert list(files['hha']) == keys
    for k in keys:
        assert torch.equal(files['rgb'][k], rgb[k])
        assert torch.equal(files['hha'][k], hha[k])
        assert torch.equal(dual[k], rgb[k])
        assert torch.equal(dual['extra_' + k], hha[k])
    # What CMX ends up with: RGB in the main branch, HHA in the X branch ...
    loaded = cmx_loader_rule(dual)
    # Names CMX's non-strict load ignores (extra_ applied twice) aside, the loader
    # sees exactly the encoder names of both branches.
    assert {k for k in loaded if not k.startswith('extra_extra_')} == expected
    for k in keys:
        assert torch.equal(loaded[k], rgb[k])
        assert torch.equal(loaded['extra_' + k], hha[k]), k
    # ... whereas a plain file fills both branches with the same weights.
    single = cmx_loader_rule(files['hha'])
    assert all(torch.equal(single['extra_' + k], single[k]) for k in keys)


def run_cli(
    weights: str, out: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Path]:
    """Run ``torchgeo-decur cmx`` on a MiT-B2 file or member; the printed paths."""
    assert main(['cmx', weights, '--out-dir', str(out)]) == 0
    paths = {
        'cmx': out / 'decur_mitb2_rgb_hha_cmx.pth',
        'rgb': out / 'decur_mitb2_rgb.pth',
        'hha': out / 'decur_mitb2_hha.pth',
    }
    printed = capsys.readouterr().out
    assert all(f'{role}: {p}' in printed for role, p in paths.items())
    return paths


def test_reference_joint_file_through_cli(
    tmp_path: Path,
    joint: dict[str, Tensor],
    smp_mit_b2_keys: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / 'mitb2_sunrgbd_rgb_hha_decur_ep200.pth'
    torch.save({'epoch': 200, 'model': joint, 'optimizer': {}}, path)
    paths = run_cli(str(path), tmp_path / 'cmx', capsys)
    rgb = {k: joint[f'module.backbone_1.{k}'] for k in smp_mit_b2_keys}
    hha = {k: joint[f'module.backbone_2.{k}'] for k in smp_mit_b2_keys}
    check_written_files(paths, smp_mit_b2_keys, rgb, hha)


def test_weights_member_from_hub_cache(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    joint: dict[str, Tensor],
    smp_mit_b2_keys: list[str],
) -> None:
    url = 'https://huggingface.co/wangyi111/DeCUR/resolve/main/mitb2_sunrgbd_rgb_hha_decur_ep200.pth'

    class MiTB2Weights(WeightsEnum):  # type: ignore[misc]
        SUNRGBD_RGB_HHA = Weights(url=url, transforms=None, meta={})

    hub = tmp_path / 'hub'
    (hub / 'checkpoints').mkdir(parents=True)
    torch.save({'model': joint}, hub / 'checkpoints' / os.path.basename(url))
    monkeypatch.setattr(torch.hub, '_hub_dir', str(hub))
    paths = export_cmx(MiTB2Weights.SUNRGBD_RGB_HHA, tmp_path / 'out', stem='b2')
    assert paths['cmx'].name == 'b2_rgb_hha_cmx.pth'
    rgb = {k: joint[f'module.backbone_1.{k}'] for k in smp_mit_b2_keys}
    hha = {k: joint[f'module.backbone_2.{k}'] for k in smp_mit_b2_keys}
    check_written_files(paths, smp_mit_b2_keys, rgb, hha)


@pytest.mark.usefixtures('fast_init')
def test_decur_member_through_the_hub_cache(
    hub: Path,
    tmp_path: Path,
    smp_mit_b2_keys: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The real member and resolve path (torch.hub cache); a stand-in of the
    # released file (random weights, released layout and wrapper).
    member = DeCURMiTB2_Weights.RGB_HHA_SUNRGBD_DECUR
    encoders = reference_pair(member)
    write_joint(member, hub, encoders)
    assert len(member.get_raw_state_dict()) == 697
    paths = run_cli(str(member), tmp_path / 'cmx', capsys)
    rgb, hha = (encoder.state_dict() for encoder in encoders)
    check_written_files(paths, smp_mit_b2_keys, rgb, hha)
    # The member itself, as Python does it.
    again = export_cmx(member, tmp_path / 'again', stem='b2')
    assert torch.equal(
        torch.load(again['cmx'], weights_only=True)['extra_norm4.weight'],
        hha['norm4.weight'],
    )


def test_lightning_checkpoint_of_decur_task(
    tmp_path: Path, smp_mit_b2_keys: list[str]
) -> None:
    task = DeCURTask(
        modalities=('rgb', 'hha'),
        model='mit_b2',
        backbone_kwargs={'num_classes': 2048},
        projector_dims=(32, 32),
        common_dim=24,
        crop_size=32,
        augmentations={'rgb': 'rgb', 'hha': 'depth'},
    )
    dm = SUNRGBDDataModule(
        root=os.path.join(DATA, 'sunrgbd'), split='train', size=32, batch_size=2
    )
    trainer = quiet_trainer(
        max_steps=1,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, datamodule=dm)
    ckpt = tmp_path / 'last.ckpt'
    trainer.save_checkpoint(ckpt)
    paths = export_cmx(ckpt, tmp_path / 'out')
    rgb = task.backbones['rgb'].state_dict()
    hha = task.backbones['hha'].state_dict()
    check_written_files(paths, smp_mit_b2_keys, rgb, hha)


def test_errors_are_reported(
    tmp_path: Path, joint: dict[str, Tensor], capsys: pytest.CaptureFixture[str]
) -> None:
    # A ResNet joint file is not a MiT.
    resnet = {
        'backbone_1.conv1.weight': torch.zeros(64, 3, 7, 7),
        'backbone_2.conv1.weight': torch.zeros(64, 3, 7, 7),
    }
    torch.save(resnet, tmp_path / 'rn50.pth')
    assert main(['cmx', str(tmp_path / 'rn50.pth'), '--out-dir', str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "encoder 'rgb'" in err
    assert 'is not a MiT (SegFormer) encoder' in err
    assert 'conv1.weight' in err
    # A task checkpoint whose modalities are named differently.
    task_layout = {
        f'backbones.{m}.{k[len("module.backbone_1.") :]}': v
        for m in ('rgb', 'depth')
        for k, v in joint.items()
        if k.startswith('module.backbone_1.')
    }
    with pytest.raises(ValueError, match=r"no weights for modality 'hha'.*'depth'"):
        cmx_state_dicts(task_layout, ('rgb', 'hha'))
    assert len(cmx_state_dicts(task_layout, ('rgb', 'depth'))[0]) == 664
    # Unknown file or member name.
    assert main(['cmx', str(tmp_path / 'nope.pth')]) == 1
    assert 'neither an existing file nor a registered' in capsys.readouterr().err


def test_variant_checks(joint: dict[str, Tensor]) -> None:
    rgb = {
        k[len('module.backbone_1.') :]: v
        for k, v in joint.items()
        if k.startswith('module.backbone_1.') and 'head' not in k
    }
    assert mit_variant(rgb, 'x') == 'mit_b2'
    one_channel = rgb | {'patch_embed1.proj.weight': torch.zeros(64, 1, 7, 7)}
    with pytest.raises(ValueError, match=r'3-channel MiT stem .*\(64, 1, 7, 7\)'):
        mit_variant(one_channel, 'x')
    truncated = {k: v for k, v in rgb.items() if not k.startswith('block3.5.')}
    with pytest.raises(ValueError, match=r'blocks per stage \[3, 4, 5, 3\]'):
        mit_variant(truncated, 'x')
    mismatched = {
        k: v
        for k, v in joint.items()
        if not k.startswith('module.backbone_2.block3.5.')
    }
    with pytest.raises(ValueError, match='match no MiT variant'):
        cmx_state_dicts(mismatched)
    # A MiT-B3-shaped HHA encoder (stage 3 with 18 blocks) next to a B2 RGB one.
    b3 = dict(joint)
    for i in range(6, 18):
        b3 |= {
            k.replace('block3.5.', f'block3.{i}.'): v
            for k, v in joint.items()
            if k.startswith('module.backbone_2.block3.5.')
        }
    with pytest.raises(
        ValueError, match=r"differ \({'rgb': 'mit_b2', 'hha': 'mit_b3'}"
    ):
        cmx_state_dicts(b3)
