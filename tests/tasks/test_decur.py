import os
from typing import Any

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from torchgeo_decur import DeCURTask
from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule
from torchgeo_decur.models import Projector

from ..conftest import DATA

TINY: dict[str, Any] = {
    'model': 'resnet18',
    'projector_dims': [32, 32],
    'common_dim': 24,
    'crop_size': 32,
}


def batch(n: int = 4, views: int = 2, size: int = 40) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        'image_s1': torch.rand(n, 2 * views, size, size, generator=g),
        'image_s2': torch.rand(n, 13 * views, size, size, generator=g),
    }


def test_structure_contract() -> None:
    task = DeCURTask(**TINY)
    assert isinstance(task.backbones, nn.ModuleDict)
    assert list(task.backbones) == [
        's1',
        's2',
    ]
    assert list(task.projectors) == ['s1', 's2']
    assert task.projectors['s1'] is not task.projectors['s2']
    assert isinstance(task.projectors['s1'], Projector)
    feats = task.backbones['s2'](torch.rand(2, 13, 32, 32))
    assert feats.shape == (2, 512)
    assert task.backbones['s1'](torch.rand(2, 2, 32, 32)).shape == (2, 512)
    # Key names of the released projectors.
    assert sorted(task.projectors['s1'].state_dict())[:2] == ['0.weight', '1.bias']


def test_paper_defaults() -> None:
    task = DeCURTask()
    hp = task.hparams
    assert hp['common_dim'] == 7168
    assert hp['lambd'] == 0.0051
    assert list(hp['projector_dims']) == [8192, 8192, 8192]
    assert hp['modalities'] == ('s1', 's2')
    assert hp['model'] is None  # as passed; the default is in the spec
    assert task.encoder_spec.model == 'resnet50'
    assert task.in_channels == {'s1': 2, 's2': 13}
    assert task.criterion.weighting == 'reference'


def test_shared_projector_option() -> None:
    task = DeCURTask(shared_projector=True, **TINY)
    assert task.projectors['s1'] is task.projectors['s2']


def test_training_step_finite_and_backpropagates() -> None:
    task = DeCURTask(**TINY)
    loss = task.training_step(batch(), 0)
    assert torch.isfinite(loss)
    loss.backward()
    for m in ('s1', 's2'):
        assert task.backbones[m].conv1.weight.grad is not None
        assert task.projectors[m][0].weight.grad is not None


def test_single_stored_view_is_augmented_twice() -> None:
    task = DeCURTask(**TINY)
    assert torch.isfinite(task.training_step(batch(views=1), 0))


def test_wrong_channel_count_names_modality() -> None:
    task = DeCURTask(**TINY)
    bad = batch()
    bad['image_s2'] = bad['image_s2'][:, :12]
    with pytest.raises(
        ValueError,
        match=r"image_s2: expected \(N, 13 or 26, H, W\) for 13-channel modality 's2'",
    ):
        task.training_step(bad, 0)
    with pytest.raises(ValueError, match="batch has no 'image_s1'"):
        task.training_step({'image_s2': batch()['image_s2']}, 0)


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match=r'common_dim must be in \[0, K\] = \[0, 32\]'):
        DeCURTask(**{**TINY, 'common_dim': 33})
    with pytest.raises(ValueError, match='two distinct modalities'):
        DeCURTask(modalities=['s1'], **TINY)
    with pytest.raises(ValueError, match="no entry for modality 'sar'"):
        DeCURTask(modalities=['sar', 's2'], **TINY)
    with pytest.raises(ValueError, match="no augmentation given for modality 'sar'"):
        DeCURTask(modalities=['sar', 's2'], in_channels={'sar': 2}, **TINY)
    with pytest.raises(ValueError, match='unknown modalities'):
        DeCURTask(augmentations={'s3': 'sar'}, **TINY)
    with pytest.raises(ValueError, match="unknown model 'resnet_does_not_exist'"):
        DeCURTask(**{**TINY, 'model': 'resnet_does_not_exist'})


def test_aligned_crops_share_geometry() -> None:
    # Pixel value = its position, identical in channel 0 of both modalities;
    # elevation presets have no photometric change, so aligned crops must agree.
    pos = torch.linspace(0, 1, 40 * 40).reshape(1, 1, 40, 40).expand(4, 1, 40, 40)
    views = {'s1': [pos.repeat(1, 2, 1, 1)] * 2, 's2': [pos.repeat(1, 13, 1, 1)] * 2}
    augs = {'s1': 'elevation', 's2': 'elevation'}
    aligned = DeCURTask(aligned_crops=True, augmentations=augs, **TINY).augment(views)
    for v in range(2):
        assert torch.allclose(aligned['s1'][v][:, 0], aligned['s2'][v][:, 0])
    torch.manual_seed(0)
    independent = DeCURTask(augmentations=augs, **TINY).augment(views)
    assert not torch.allclose(independent['s1'][0][:, 0], independent['s2'][0][:, 0])


def test_weights_from_own_checkpoint_and_per_modality(tmp_path: Any) -> None:
    src = DeCURTask(**TINY)
    ckpt = tmp_path / 'task.ckpt'
    torch.save(
        {'state_dict': src.state_dict(), 'hyper_parameters': dict(src.hparams)}, ckpt
    )
    task = DeCURTask(weights=str(ckpt), **TINY)
    x = torch.rand(2, 13, 32, 32)
    src.eval(), task.eval()
    assert torch.equal(task.backbones['s2'](x), src.backbones['s2'](x))
    assert torch.equal(task.projectors['s1'][0].weight, src.projectors['s1'][0].weight)

    backbone_file = tmp_path / 's2.pth'
    torch.save(src.backbones['s2'].state_dict(), backbone_file)
    only_s2 = DeCURTask(weights={'s2': str(backbone_file)}, **TINY).eval()
    assert torch.equal(only_s2.backbones['s2'](x), src.backbones['s2'](x))


def test_weights_errors(tmp_path: Any) -> None:
    src = DeCURTask(**TINY)
    backbone_file = tmp_path / 's2.pth'
    torch.save(src.backbones['s2'].state_dict(), backbone_file)
    with pytest.raises(ValueError, match='does not hold both encoders'):
        DeCURTask(weights=str(backbone_file), **TINY)
    with pytest.raises(
        ValueError,
        match=r"in_channels\['s1'\]=2 but the weights .*s2\.pth take 13 channels",
    ):
        # Channels given explicitly that the file does not have.
        DeCURTask(
            weights={'s1': str(backbone_file)},
            in_channels={'s1': 2, 's2': 13},
            **TINY,
        )
    # Without in_channels, the file's channels are taken.
    taken = DeCURTask(weights={'s1': str(backbone_file)}, **TINY)
    assert taken.backbones['s1'].conv1.in_channels == 13
    bad = dict(src.backbones['s2'].state_dict())
    bad['extra.weight'] = torch.zeros(1)
    del bad['bn1.weight']
    torch.save(bad, backbone_file)
    with pytest.raises(
        ValueError, match=r'missing keys: bn1.weight; unexpected keys: extra.weight'
    ):
        DeCURTask(weights={'s2': str(backbone_file)}, **TINY)
    with pytest.raises(ValueError, match='neither an existing file nor a registered'):
        DeCURTask(weights='NOT_A_MEMBER', **TINY)
    with pytest.raises(ValueError, match='unknown modalities'):
        DeCURTask(weights={'s3': str(backbone_file)}, **TINY)


def test_imagenet_flag_is_passed_to_timm(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    import timm

    real = timm.create_model

    def fake(name: str, **kwargs: Any) -> nn.Module:
        calls.append(kwargs['pretrained'])
        return real(name, **{**kwargs, 'pretrained': False})

    monkeypatch.setattr(timm, 'create_model', fake)
    DeCURTask(weights={'s1': True}, **TINY)
    assert calls == [True, False]


def test_fit_logs_components_and_monitors(tmp_path: Any) -> None:
    dm = SSL4EOS12PairsDataModule(
        root=os.path.join(DATA, 'ssl4eo_s12'), size=24, batch_size=4
    )
    task = DeCURTask(**TINY)
    best = ModelCheckpoint(dirpath=tmp_path / 'ckpt', monitor='val_loss')
    trainer = Trainer(
        max_epochs=2,
        logger=False,
        callbacks=[best],
        default_root_dir=str(tmp_path),
        enable_progress_bar=False,
    )
    trainer.fit(task, dm)
    logged = trainer.callback_metrics
    for split in ('train', 'val'):
        for name in (
            'loss',
            'intra_s1',
            'intra_s2',
            'common',
            'unique',
            'std_s1',
            'std_s2',
            'common_diag',
            'unique_diag',
        ):
            assert f'{split}_{name}' in logged, f'{split}_{name}'
            assert torch.isfinite(logged[f'{split}_{name}']), f'{split}_{name}'
    assert 0 < logged['train_std_s1'] <= 1
    assert 0 < logged['val_std_s2'] <= 1
    # ModelCheckpoint(monitor='val_loss') picks the epoch with the lowest val_loss.
    assert best.best_model_score is not None
    assert torch.isfinite(best.best_model_score)
    assert os.path.isfile(best.best_model_path)
    # Validating again gives the same numbers: the views are seeded, not random.
    first = trainer.validate(task, dm, verbose=False)[0]['val_loss']
    second = trainer.validate(task, dm, verbose=False)[0]['val_loss']
    assert first == second


def test_validation_views_are_seeded_and_keep_training_rng() -> None:
    task = DeCURTask(**TINY).eval()
    data = batch(views=1)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    with torch.no_grad():
        a = task.validation_step(data, 0)
        b = task.validation_step(data, 0)
        c = task.validation_step(data, 1)
    # Training randomness continues as if validation had not run.
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a['loss'], b['loss'])
    for m in ('s1', 's2'):
        assert len(a['embeddings'][m]) == 2  # both views
        for x, y in zip(a['embeddings'][m], b['embeddings'][m], strict=True):
            assert torch.equal(x, y)
            assert x.shape == (4, 32)
    # Another batch index draws other views.
    assert not torch.equal(a['embeddings']['s1'][0], c['embeddings']['s1'][0])
