"""The own-rasters example configs run through ``torchgeo fit`` and export."""

import json
from pathlib import Path

import pytest
import torch
from torchgeo.main import main

from torchgeo_decur import DeCURTask
from torchgeo_decur.export import export_checkpoint

from .conftest import ROOT

#: Shrinks the own-raster recipes to the size of the test rasters.
OWN_RASTERS = [
    '--model.init_args.model=resnet18',
    '--model.init_args.projector_dims=[64, 64]',
    '--model.init_args.common_dim=48',
    '--model.init_args.crop_size=24',
    '--data.init_args.patch_size=32',
    '--data.init_args.batch_size=4',
    '--data.init_args.length=8',
    '--data.init_args.num_workers=0',
    '--data.init_args.statistics_patches=8',
]

# The example on a CPU for two steps, without a logger: the recipes' header line
# (the smoke profile; tests/test_configs.py checks that the headers say this).
TINY = ['--config', 'conf/smoke.yaml', *OWN_RASTERS]


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize(
    ('config', 'modalities'),
    [
        ('decur_own_rasters.yaml', ['s1', 's2']),
        ('decur_own_rasters_s1_s2_dem.yaml', ['s1', 's2', 'dem']),
    ],
)
def test_example_config_trains_and_exports(
    config: str, modalities: list[str], tmp_path: Path
) -> None:
    main(
        [
            'fit',
            '--config',
            f'conf/{config}',
            *TINY,
            f'--trainer.default_root_dir={tmp_path}',
        ]
    )
    (ckpt,) = (tmp_path / 'checkpoints').glob('*.ckpt')
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert saved['global_step'] == 2
    assert saved['hyper_parameters']['modalities'] == modalities
    # The run records the scaling its inputs got.
    stats = saved['datamodule_hyper_parameters']['statistics']
    assert list(stats) == modalities
    assert len(stats['s2']['mean']) == 13

    summary = export_checkpoint(ckpt, tmp_path / 'export', name='own')
    files = summary['files']
    assert ('joint' in files) == (len(modalities) == 2)
    scaling = json.loads(Path(files['input_scaling']).read_text())
    assert scaling['statistics'] == stats
    # Every exported backbone loads back into a fresh task's encoder, unchanged.
    task = DeCURTask.load_from_checkpoint(ckpt, map_location='cpu')
    fresh = DeCURTask(
        modalities=modalities,
        in_channels=saved['hyper_parameters']['in_channels'],
        model='resnet18',
        projector_dims=[64, 64],
        common_dim=48,
        weights={m: str(files[m]) for m in modalities},
    )
    for m in modalities:
        for key, value in task.backbones[m].state_dict().items():
            assert torch.equal(fresh.backbones[m].state_dict()[key], value), (m, key)
