"""DeCURTask initialised from released DeCUR Weights members."""

import warnings
from pathlib import Path

import lightning
import pytest
import torch
from torchgeo.models import get_model

from torchgeo_decur import (
    DeCURMiTB2_Weights,
    DeCURResNet50_Weights,
    DeCURResNet50RDA_Weights,
    DeCURTask,
    MultimodalSegmentationTask,
)

from ..models.released import (
    SIZE,
    assert_features_match,
    reference_encoder,
    reference_pair,
    write_backbone,
    write_joint,
)

SMALL = {'projector_dims': [32, 32], 'common_dim': 24, 'crop_size': 32}


@pytest.mark.usefixtures('fast_init')
def test_joint_member_sets_architecture_and_loads_everything(
    hub: Path, tmp_path: Path
) -> None:
    member = DeCURMiTB2_Weights.RGB_HHA_SUNRGBD_DECUR
    references = reference_pair(member)
    # A file whose projectors have the task's shapes (released: 8192-d).
    write_joint(member, hub, references, projector_dims=(32, 32))
    # The member says what it is: no model to restate, and a conflicting one is
    # an error naming both.
    task = DeCURTask(weights=str(member), modalities=('rgb', 'hha'), **SMALL)
    with pytest.raises(ValueError, match=r'resnet50.*mit_b2|mit_b2.*resnet50'):
        DeCURTask(
            weights=str(member), modalities=('rgb', 'hha'), model='resnet50', **SMALL
        )
    assert task.encoder_spec.model == 'mit_b2'
    assert task.in_channels == {'rgb': 3, 'hha': 3}
    assert task.encoder_spec.backbone_kwargs == {'num_classes': 2048}
    # The hyperparameters hold what was passed, nothing the member said.
    assert task.hparams['model'] is None
    assert task.hparams['in_channels'] is None
    assert task.hparams['backbone_kwargs'] is None
    task.eval()
    raw = member.get_raw_state_dict()
    x = torch.rand(1, 3, SIZE, SIZE)
    for i, (m, reference) in enumerate(zip(('rgb', 'hha'), references, strict=True)):
        with torch.no_grad():
            # DeCUR's 2048-d head is part of each MiT encoder.
            assert_features_match(task.backbones[m](x), reference(x))
        assert torch.equal(
            task.projectors[m][0].weight, raw[f'module.projector{i + 1}.0.weight']
        )
    # A checkpoint rebuilds the same architecture (weights are not saved).
    checkpoint = {
        'state_dict': task.state_dict(),
        'hyper_parameters': dict(task.hparams),
        'pytorch-lightning_version': lightning.__version__,
    }
    task.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / 'task.ckpt')
    rebuilt = DeCURTask.load_from_checkpoint(tmp_path / 'task.ckpt')
    assert rebuilt.backbones['hha'].state_dict().keys() == (
        task.backbones['hha'].state_dict().keys()
    )


def test_released_projectors_of_other_shape_are_skipped_with_a_warning(
    hub: Path,
) -> None:
    member = DeCURResNet50_Weights.SENTINEL1_SENTINEL2_SSL4EO_DECUR
    references = reference_pair(member)
    write_joint(member, hub, references)  # 8192-d projectors, as released
    with pytest.warns(UserWarning, match='projector .* not loaded') as record:
        task = DeCURTask(weights=member, **SMALL)
    messages = [str(w.message) for w in record]
    assert [m.split("'")[1] for m in messages] == ['s1', 's2']
    assert 'projector_dims=[32, 32]' in messages[0]
    task.eval()
    x1, x2 = torch.rand(1, 2, SIZE, SIZE), torch.rand(1, 13, SIZE, SIZE)
    with torch.no_grad():
        assert_features_match(task.backbones['s1'](x1), references[0](x1))
        assert_features_match(task.backbones['s2'](x2), references[1](x2))


def test_backbone_members_per_modality(hub: Path) -> None:
    sar = DeCURResNet50_Weights.SENTINEL1_GRD_SSL4EO_DECUR
    ms = DeCURResNet50_Weights.SENTINEL2_L1C_SSL4EO_DECUR
    references = [
        reference_encoder('resnet50', 2, 1),
        reference_encoder('resnet50', 13, 2),
    ]
    write_backbone(sar, hub, references[0], 1)
    write_backbone(ms, hub, references[1], 2)
    # Renamed on purpose: loads by position, with a warning per member.
    with pytest.warns(UserWarning, match='holds the modalities') as record:
        task = DeCURTask(
            modalities=('sar', 'ms'),
            weights={'sar': str(sar), 'ms': ms},
            augmentations={'sar': 'sar', 'ms': 'optical'},
            **SMALL,
        ).eval()
    assert sorted(str(w.message).split(': ')[1].split('.')[0] for w in record) == [
        "encoder 1 (s1) -> task modality 'sar'",
        "encoder 1 (s2) -> task modality 'ms'",
    ]
    assert task.in_channels == {'sar': 2, 'ms': 13}
    x = torch.rand(1, 13, SIZE, SIZE)
    with torch.no_grad():
        assert_features_match(task.backbones['ms'](x), references[1](x))


def test_member_misuse_is_a_clear_error() -> None:
    sar = DeCURResNet50_Weights.SENTINEL1_GRD_SSL4EO_DECUR
    joint = DeCURResNet50_Weights.SENTINEL1_SENTINEL2_SSL4EO_DECUR
    with pytest.raises(ValueError, match='holds one encoder \\(s1\\); pass weights='):
        DeCURTask(weights=sar, **SMALL)
    with pytest.raises(ValueError, match='holds both encoders; pass it as weights='):
        DeCURTask(weights={'s1': joint}, **SMALL)
    with pytest.raises(ValueError, match=r"in_channels\['s2'\]=12 but .* expects 13"):
        DeCURTask(weights=joint, in_channels={'s2': 12}, **SMALL)


@pytest.mark.filterwarnings('ignore:projector .* not loaded')
@pytest.mark.filterwarnings("ignore:model='resnet50' replaced")
def test_rda_joint_member_follows_rda_semantics(hub: Path) -> None:
    member = DeCURResNet50RDA_Weights.RGB_DEM_GEONRW_DECUR
    write_joint(member, hub, reference_pair(member))
    raw = member.get_raw_state_dict()
    modalities = ('rgb', 'dem')
    task = DeCURTask(weights=member, modalities=modalities, **SMALL)
    assert task.encoder_spec.model == 'resnet50_rda'
    dem = task.backbones['dem']
    assert torch.equal(dem.da_l3.rpe_table, raw['module.da2_l3.rpe_table'])
    assert torch.equal(
        dem.layer1[0].conv1.weight, raw['module.backbone_2.layer1.0.conv1.weight']
    )
    task = DeCURTask(
        weights=member,
        modalities=modalities,
        backbone_kwargs={'rda_semantics': 'pretraining'},
        **SMALL,
    )
    dem = task.backbones['dem']
    assert torch.equal(dem.da_l4.proj_q.weight, raw['module.da1_l4.proj_q.weight'])


def test_rda_semantics_is_checked_for_backbone_members(hub: Path) -> None:
    ms = DeCURResNet50RDA_Weights.SENTINEL2_L1C_SSL4EO_DECUR
    sar = DeCURResNet50RDA_Weights.SENTINEL1_GRD_SSL4EO_DECUR
    # Layout only: the semantics check comes before any shape check.
    torch.save(
        {'backbone.conv1.weight': torch.zeros(1), 'da2_l3.rpe_table': torch.zeros(1)},
        hub / ms.meta['file'],
    )
    torch.save(
        {'backbone.conv1.weight': torch.zeros(1), 'da1_l3.rpe_table': torch.zeros(1)},
        hub / sar.meta['file'],
    )
    with pytest.raises(ValueError, match=r'da2_\*.*Load the joint file'):
        ms.get_state_dict(rda_semantics='pretraining')
    # A da1 file serves 'pretraining': the layout passes, the (stand-in) tensors
    # then fail the architecture check.
    with pytest.raises(ValueError, match='missing keys'):
        sar.get_state_dict(rda_semantics='pretraining')
    with pytest.raises(ValueError, match="got 'bogus'"):
        sar.get_state_dict(rda_semantics='bogus')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="got 'bogus'"):
        get_model('resnet50_rda', weights=None, rda_semantics='bogus')
    # Tasks: per-modality files get the same check.
    with pytest.raises(ValueError, match=r'da2_\*.*Load the joint file'):
        DeCURTask(
            model='resnet18',
            weights={'s2': str(hub / ms.meta['file'])},
            backbone_kwargs={'rda_semantics': 'pretraining'},
            **SMALL,
        )
    with pytest.raises(ValueError, match="got 'bogus'"):
        DeCURTask(backbone_kwargs={'rda_semantics': 'bogus'}, **SMALL)
    with pytest.raises(ValueError, match=r'da2_\*.*Load the joint file'):
        MultimodalSegmentationTask(
            modalities=['s2'],
            model='resnet18',
            weights={'s2': str(hub / ms.meta['file'])},
            backbone_kwargs={'rda_semantics': 'pretraining'},
        )
    with pytest.raises(ValueError, match="got 'bogus'"):
        MultimodalSegmentationTask(backbone_kwargs={'rda_semantics': 'bogus'})


@pytest.mark.filterwarnings('ignore:projector .* not loaded')
def test_member_modalities_of_other_names_are_warned_about(hub: Path) -> None:
    joint = DeCURResNet50_Weights.RGB_DEM_GEONRW_DECUR
    dem = DeCURResNet50_Weights.DEM_GEONRW_DECUR
    references = reference_pair(joint)
    write_joint(joint, hub, references)
    write_backbone(dem, hub, references[1], 2)
    # GeoNRW RGB + DEM into the default S1 + S2 task: loads by position, but the
    # SAR / optical presets would augment RGB and DEM.
    with pytest.warns(UserWarning, match='holds the modalities') as record:
        task = DeCURTask(weights=joint, **SMALL)
    (message,) = [
        str(w.message) for w in record if 'holds the modalities' in str(w.message)
    ]
    assert "['rgb', 'dem'] but is loaded into the task modalities ['s1', 's2']" in (
        message
    )
    assert "encoder 1 (rgb) -> task modality 's1'" in message
    assert "encoder 2 (dem) -> task modality 's2'" in message
    assert "{'s1': 'sar', 's2': 'optical'}" in message
    assert "modalities: ['rgb', 'dem']" in message
    assert task.in_channels == {'s1': 3, 's2': 3}
    with torch.no_grad():
        x = torch.rand(1, 3, SIZE, SIZE)
        assert_features_match(task.backbones['s2'].eval()(x), references[1](x))
    # A backbone member for a modality of another name.
    with pytest.warns(UserWarning, match=r"\(dem\) -> task .*\('s1' -> 'dem'\)"):
        DeCURTask(weights={'s1': dem}, augmentations={'s1': 'elevation'}, **SMALL)
    # Matching names: no such warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        DeCURTask(weights=joint, modalities=('rgb', 'dem'), **SMALL)
    assert [w for w in caught if 'projector' in str(w.message)]
    assert not [w for w in caught if 'holds the modalities' in str(w.message)]
