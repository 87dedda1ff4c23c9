"""get_model('decur', weights=...): an encoder of any architecture from its weights."""

from pathlib import Path

import pytest
import torch
from torchgeo.models import get_model, list_models

from torchgeo_decur import DeCURTask
from torchgeo_decur.export import export_checkpoint
from torchgeo_decur.weights import DeCURResNet50_Weights

from ..conftest import quiet_trainer
from ..models.released import reference_encoder, write_backbone

#: Architectures without a builder of their own: a deep-stem ResNet and a ViT
#: with a small patch (its img_size and patch_size live in the checkpoint).
ARCHITECTURES = {
    'resnet10t': {'model': 'resnet10t'},
    'vit_tiny_patch16_224': {
        'model': 'vit_tiny_patch16_224',
        'backbone_kwargs': {'img_size': 32, 'patch_size': 8},
    },
}


@pytest.fixture(scope='module', params=list(ARCHITECTURES))
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DeCURTask, Path, dict[str, Path]]:
    """A task of the architecture, its Lightning checkpoint and its export."""
    root = tmp_path_factory.mktemp(request.param)
    task = DeCURTask(
        projector_dims=[32, 32], common_dim=24, **ARCHITECTURES[request.param]
    ).eval()
    trainer = quiet_trainer()
    trainer.strategy.connect(task)
    ckpt = root / 'decur.ckpt'
    trainer.save_checkpoint(ckpt, weights_only=True)
    files = export_checkpoint(ckpt, root / 'export', name='mine')['files']
    return task, ckpt, files


def test_decur_builds_the_architecture_its_weights_name(
    exported: tuple[DeCURTask, Path, dict[str, Path]],
) -> None:
    task, ckpt, files = exported
    assert 'decur' in list_models()
    x = {'s1': torch.rand(2, 2, 32, 32), 's2': torch.rand(2, 13, 32, 32)}
    # A released-layout file of a ViT does not record its patch and image size:
    # the timm folder and the checkpoint do.
    released = task.hparams['model'] == 'resnet10t'
    with torch.no_grad():
        for position, m in enumerate(('s1', 's2'), 1):
            expected = task.backbones[m](x[m])
            sources: list[tuple[Path, str | int | None]] = [
                (files[f'{m}_timm'], None),  # <name>_<m>_timm/
                (ckpt, m),  # the task checkpoint
            ]
            if released:
                sources += [
                    (files[m], None),  # <name>_<m>_decur.pth
                    (files['joint'], position),  # <name>_joint_decur.pth
                ]
            else:
                with pytest.raises(
                    ValueError, match='_timm folder or the task checkpoint'
                ):
                    get_model('decur', weights=str(files[m]))
            for weights, modality in sources:
                encoder = get_model(
                    'decur', weights=str(weights), modality=modality, num_classes=0
                )
                features = encoder.eval()(x[m])
                assert torch.allclose(features, expected, atol=1e-6), weights


def test_decur_arch_refuses_weights_of_another_architecture(
    exported: tuple[DeCURTask, Path, dict[str, Path]],
) -> None:
    task, ckpt, files = exported
    for weights in (files['s2_timm'], ckpt):
        with pytest.raises(ValueError, match='decur_resnet50 cannot load') as caught:
            get_model('decur_resnet50', weights=str(weights))
        assert f"holds a '{task.hparams['model']}' encoder, not 'resnet50'" in str(
            caught.value
        )


def test_decur_needs_weights_that_name_an_architecture(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='takes the architecture from its weights'):
        get_model('decur', weights=None)
    with pytest.raises(ValueError, match='is no file, folder or Weights member'):
        get_model('decur', weights=str(tmp_path / 'missing.pth'))


def test_decur_takes_a_released_member(hub: Path) -> None:
    member = DeCURResNet50_Weights.SENTINEL1_GRD_SSL4EO_DECUR
    reference = reference_encoder('resnet50', 2, seed=3).eval()
    write_backbone(member, hub, reference, 1)
    encoder = get_model('decur', weights=str(member), num_classes=0).eval()
    x = torch.rand(2, 2, 32, 32)
    with torch.no_grad():
        assert torch.allclose(encoder(x), reference(x), atol=1e-5)
