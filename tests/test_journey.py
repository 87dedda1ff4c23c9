"""A user's journey through the real commands: fit -> info -> export -> timm -> task.

One tiny fit per model family (a deep-stem ResNet, a three-modality own-raster
run, a ViT) is shared by every step through module-scoped fixtures.
"""

import json
import os
from pathlib import Path

import pytest
import timm
import torch
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader, Dataset
from torchgeo.main import main as torchgeo_main

from torchgeo_decur import DeCURTask
from torchgeo_decur.checkpoints.architecture import data_statistics
from torchgeo_decur.cli import main
from torchgeo_decur.tasks import MultimodalClassificationTask
from torchgeo_decur.transforms import ssl4eo_s12_statistics

from .conftest import ROOT
from .test_own_rasters_cli import OWN_RASTERS

SMOKE = ['--config', 'conf/smoke.yaml']


#: recipe, extra arguments, expected architecture, modalities and channels
RUNS = {
    'resnet10t': ('quickstart.yaml', [], 'resnet10t', {'s1': 2, 's2': 13}),
    'own_rasters': (
        'decur_own_rasters_s1_s2_dem.yaml',
        OWN_RASTERS,
        'resnet18',
        None,
    ),
    'vit': (
        'quickstart.yaml',
        [
            '--model.init_args.model=vit_tiny_patch16_224',
            '--model.init_args.backbone_kwargs={img_size: 24, patch_size: 8}',
        ],
        'vit_tiny_patch16_224',
        {'s1': 2, 's2': 13},
    ),
}


@pytest.fixture(scope='module')
def run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, Path]:
    """Fit one recipe with the smoke profile, then export it; yield the paths."""
    name = request.param
    recipe, extra, _, _ = RUNS[name]
    root = tmp_path_factory.mktemp(name)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        torchgeo_main(
            [
                'fit',
                '--config',
                f'conf/{recipe}',
                *SMOKE,
                *extra,
                f'--trainer.default_root_dir={root}',
            ]
        )
    finally:
        os.chdir(cwd)
    ckpt = root / 'checkpoints' / 'last.ckpt'
    assert main(['export', str(ckpt), '--output-dir', str(root / 'export')]) == 0
    return name, ckpt, root / 'export'


pytestmark = pytest.mark.parametrize('run', list(RUNS), indirect=True)


def test_info_describes_the_checkpoint_and_its_exports(
    run: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name, ckpt, export = run
    _, _, arch, _ = RUNS[name]
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    channels = saved['hyper_parameters']['in_channels']
    capsys.readouterr()
    assert main(['info', str(ckpt), '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['architecture'] == arch
    assert info['step'] == saved['global_step'] > 0
    assert {e['modality']: e['in_chans'] for e in info['encoders']} == channels
    # Every run records the statistics its inputs were scaled with: own rasters
    # in the data module's hyper-parameters, SSL4EO-S12 in its state.
    stats = data_statistics(saved)
    assert set(stats) == set(channels)
    if RUNS[name][0] == 'quickstart.yaml':  # the SSL4EO-S12 sample, L1C
        assert stats == {
            's1': ssl4eo_s12_statistics('s1'),
            's2': ssl4eo_s12_statistics('s2c'),
        }
    for encoder in info['encoders']:
        first = f'{stats[encoder["modality"]]["mean"][0]:.4g}'
        assert f'mean [{first}' in encoder['scaling'], encoder['scaling']
    harmonize = (saved.get('datamodule_hyper_parameters') or {}).get('s2_harmonize')
    if harmonize is not None:  # own rasters record how Sentinel-2 DN were read
        for encoder in info['encoders']:
            assert f's2_harmonize={harmonize!r}' in encoder['scaling']
    for m, c in channels.items():
        for path in (export / f'last_{m}_timm', export / f'last_{m}_decur.pth'):
            assert main(['info', str(path), '--json']) == 0
            one = json.loads(capsys.readouterr().out)
            assert one['encoders'][0]['in_chans'] == c
        # The folder names the architecture; the released-layout file gives the
        # one its weights fit (a ViT with patch_size 8 reads as ..._patch8_...).
        assert main(['info', str(export / f'last_{m}_timm'), '--json']) == 0
        assert json.loads(capsys.readouterr().out)['architecture'] == arch


def test_timm_loads_the_export_as_the_trained_encoder(
    run: tuple[str, Path, Path],
) -> None:
    _, ckpt, export = run
    task = DeCURTask.load_from_checkpoint(ckpt, map_location='cpu').eval()
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    stats = data_statistics(saved)
    assert set(stats) == set(task.in_channels)
    for m, c in task.in_channels.items():
        folder = export / f'last_{m}_timm'
        assert oct(os.stat(folder / 'model.safetensors').st_mode & 0o777) == oct(
            0o666 & ~_umask()
        )
        config = json.loads((folder / 'config.json').read_text())
        assert config['num_classes'] == 0
        assert config['model_args']['in_chans'] == c
        assert config['input_scaling']['mean'] == stats[m]['mean']
        assert config['input_scaling']['std'] == stats[m]['std']
        harmonize = (saved.get('datamodule_hyper_parameters') or {}).get('s2_harmonize')
        assert config['input_scaling'].get('s2_harmonize') == harmonize
        encoder = timm.create_model(f'local-dir:{folder}', pretrained=True).eval()
        x = torch.rand(2, c, 24, 24)
        with torch.no_grad():
            torch.testing.assert_close(
                encoder(x), task.backbones[m](x), atol=1e-6, rtol=0
            )


class Scenes(Dataset[dict[str, torch.Tensor]]):
    """Four random scenes of one modality with multi-hot labels."""

    def __init__(self, modality: str, channels: int) -> None:
        self.modality, self.channels = modality, channels

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(index)
        return {
            f'image_{self.modality}': torch.rand(
                self.channels, 24, 24, generator=generator
            ),
            'label': torch.tensor([index % 2, 1 - index % 2, 1]).float(),
        }


def test_downstream_task_from_the_export_alone(run: tuple[str, Path, Path]) -> None:
    name, ckpt, export = run
    _, _, arch, _ = RUNS[name]
    m = 's2'
    task = MultimodalClassificationTask(
        modalities=[m], weights=str(export / f'last_{m}_timm'), num_classes=3
    )
    assert task.encoder_spec.model == arch
    trained = DeCURTask.load_from_checkpoint(ckpt, map_location='cpu')
    for key, value in trained.backbones[m].state_dict().items():
        assert torch.equal(task.encoders[m].state_dict()[key], value), key
    loader = DataLoader(Scenes(m, trained.in_channels[m]), batch_size=4)
    trainer = Trainer(
        accelerator='cpu',
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, loader, loader)
    (result,) = trainer.test(task, loader, verbose=False)
    assert 'test_loss' in result or any(k.startswith('test_') for k in result)
    # A conflicting model is an error naming both architectures.
    with pytest.raises(ValueError, match=f"model='resnet50'.*'{arch}'"):
        MultimodalClassificationTask(
            modalities=[m],
            model='resnet50',
            weights=str(export / f'last_{m}_timm'),
            num_classes=3,
        )
    # A task checkpoint carries its architecture too.
    whole = DeCURTask(weights=str(ckpt), modalities=list(trained.in_channels))
    assert whole.encoder_spec.model == arch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
