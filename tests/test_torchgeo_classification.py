"""torchgeo's own Classification task with DeCUR weights given by name."""

import re
from pathlib import Path

import pytest
import torch
from torchgeo.main import main
from torchgeo.tasks import Classification

from torchgeo_decur import (
    DeCURMiTB2_Weights,
    DeCURResNet50RDA_Weights,
    DeCURViTSmall16_Weights,
)
from torchgeo_decur.datamodules import EuroSATDeCURDataModule
from torchgeo_decur.weights import DeCURWeightsEnum

from .conftest import DATA, ROOT
from .models.released import (
    reference_encoder,
    reference_pair,
    write_backbone,
    write_joint,
)

EUROSAT = str(Path(DATA, 'eurosat'))
S2_VIT = DeCURViTSmall16_Weights.SENTINEL2_L1C_SSL4EO_DECUR


def assert_encoder_loaded(task: Classification, member: DeCURWeightsEnum) -> None:
    """Every encoder weight of the member is in the task's model.

    (torchgeo loads with strict=False, which would hide a mismatch.)
    """
    expected = member.get_state_dict()
    own = task.model.state_dict()
    encoder_keys = [k for k in expected if not k.startswith('head.')]
    assert len(encoder_keys) > 100
    for key in encoder_keys:
        assert torch.equal(own[key], expected[key]), key


@pytest.mark.usefixtures('fast_init')
@pytest.mark.parametrize(
    ('member', 'channels'),
    [
        (DeCURResNet50RDA_Weights.SENTINEL1_GRD_SSL4EO_DECUR, 2),
        (DeCURMiTB2_Weights.RGB_HHA_SUNRGBD_DECUR, 3),
    ],
    ids=['resnet50_rda', 'mit_b2_joint'],
)
def test_classification_loads_members_by_name(
    member: DeCURWeightsEnum, channels: int, hub: Path
) -> None:
    model = member.meta['model']
    if member.is_joint:
        write_joint(member, hub, reference_pair(member))
    else:
        write_backbone(member, hub, reference_encoder(model, channels, 1), 1)
    task = Classification(
        model=model, weights=str(member), in_channels=channels, num_classes=5
    )
    assert_encoder_loaded(task, member)
    assert task.model(torch.rand(1, channels, 48, 48)).shape == (1, 5)


def test_data_module_scales_like_the_checkpoint() -> None:
    dm = EuroSATDeCURDataModule(weights=str(S2_VIT), root=EUROSAT, batch_size=4)
    assert dm.kwargs['bands'][8] == 'B8A'
    dm.setup('fit')
    batch = next(iter(dm.train_dataloader()))
    assert batch['image'].shape == (4, 13, 16, 16)
    out = dm.aug(batch)
    assert out['image'].shape == (4, 13, 224, 224)
    assert 0 <= out['image'].min() < out['image'].max() <= 1
    with pytest.raises(ValueError, match='with a Sentinel-2 \\(s2\\) encoder'):
        EuroSATDeCURDataModule(weights='DeCURMiTB2_Weights.RGB_SUNRGBD_DECUR')
    with pytest.raises(ValueError, match='expects the bands'):
        EuroSATDeCURDataModule(weights=str(S2_VIT), bands=['B02', 'B03', 'B04'])


@pytest.mark.usefixtures('fast_init')
def test_conf_fine_tunes_the_released_encoder(
    hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_backbone(
        S2_VIT, hub, reference_encoder('vit_small_patch16_224', 13, seed=4), 2
    )
    text = Path(ROOT, 'conf', 'eurosat_classification_decur_vits16.yaml').read_text()
    text = text.replace('data/eurosat', EUROSAT)
    text = text.replace('download: true', 'download: false')
    text = re.sub(r'batch_size: \d+', 'batch_size: 2', text)
    text = re.sub(r'num_workers: \d+', 'num_workers: 0', text)
    config = tmp_path / 'eurosat.yaml'
    config.write_text(text)
    monkeypatch.chdir(ROOT)
    main(
        [
            'fit',
            '--config',
            str(config),
            '--trainer.fast_dev_run=1',
            '--trainer.accelerator=cpu',
            f'--trainer.default_root_dir={tmp_path}',
        ]
    )
    # The same arguments load the released encoder.
    task = Classification(
        model='vit_small_patch16_224',
        weights=str(S2_VIT),
        in_channels=13,
        num_classes=10,
    )
    assert_encoder_loaded(task, S2_VIT)


def test_semantic_segmentation_unet_takes_a_resnet50_member(hub: Path) -> None:
    # torchgeo's SemanticSegmentation loads a member into smp's U-Net encoder
    # (strictly): the GeoNRW RGB backbone, as in conf/geonrw_rgb_torchgeo.yaml.
    from torchgeo.tasks import SemanticSegmentation

    from torchgeo_decur import DeCURResNet50_Weights

    member = DeCURResNet50_Weights.RGB_GEONRW_DECUR
    write_backbone(member, hub, reference_encoder('resnet50', 3, 1), 1)
    task = SemanticSegmentation(
        model='unet',
        backbone='resnet50',
        weights=str(member),
        in_channels=3,
        num_classes=11,
        ignore_index=0,
    )
    expected = member.get_state_dict()
    own = task.model.encoder.state_dict()
    assert set(own) == set(expected)
    for key, value in expected.items():
        assert torch.equal(own[key], value), key
    assert task.model(torch.rand(1, 3, 64, 64)).shape == (1, 11, 64, 64)


def test_torchgeo_task_configs_name_decur_members() -> None:
    for name, member in (
        (
            'bigearthnet_s1_linear_torchgeo.yaml',
            'DeCURResNet50_Weights.SENTINEL1_GRD_SSL4EO_DECUR',
        ),
        ('geonrw_rgb_torchgeo.yaml', 'DeCURResNet50_Weights.RGB_GEONRW_DECUR'),
    ):
        text = Path(ROOT, 'conf', name).read_text()
        assert re.search(rf'^\s+weights: {re.escape(member)}$', text, re.M), name
