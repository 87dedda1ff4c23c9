"""``torchgeo-decur coregister`` through the real command, and training from its store.

The store of the own-raster test config is written once per module by the real
command in a subprocess (with two writer processes); ``torchgeo fit`` then
pretrains from it. A full disk runs in its own process (a file size limit);
the refusals call the command in this process.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio
import torch
import yaml

from ..conftest import ROOT
from .conftest import cli_env, one_line_error, run_cli, run_in_process

CONFIG = os.path.join(ROOT, 'tests', 'conf', 'decur_own_rasters.yaml')


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # The config names the fixture rasters relative to the checkout.
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope='module')
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('coregister') / 'store'
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'torchgeo_decur_cli',
            'coregister',
            '--config',
            CONFIG,
            '--output',
            str(out),
            '--tile-size',
            '32',
            '--num-workers',
            '2',
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f'--data.init_args.coregistered {out}' in result.stdout
    assert 'Co-registering' in result.stderr  # the progress bar
    return out


def test_fit_pretrains_from_the_coregistered_store(store: Path, tmp_path: Path) -> None:
    from torchgeo.main import main

    main(
        [
            'fit',
            '--config',
            CONFIG,
            f'--data.init_args.coregistered={store}',
            '--trainer.accelerator=cpu',
            '--trainer.max_steps=2',
            '--trainer.logger=false',
            '--trainer.enable_progress_bar=false',
            f'--trainer.default_root_dir={tmp_path}',
        ]
    )
    (ckpt,) = (tmp_path / 'checkpoints').glob('*.ckpt')
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert saved['global_step'] == 2
    hparams = saved['datamodule_hyper_parameters']
    assert hparams['coregistered'] == str(store)
    assert len(hparams['statistics']['s2']['mean']) == 13


def test_rerun_resumes_and_other_settings_are_refused(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiles = {p: p.stat().st_mtime_ns for p in store.glob('*/*.tif')}
    again = run_in_process(
        capsys, 'coregister', '--config', CONFIG, '--output', str(store),
        '--tile-size', '32',
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in tiles} == tiles
    line = one_line_error(
        run_in_process(
            capsys, 'coregister', '--config', CONFIG, '--output', str(store),
            '--tile-size', '64',
        ),
        'coregister',
    )  # fmt: skip
    assert 'tile_size' in line
    assert '--overwrite' in line


def test_config_without_own_rasters_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / 'config.yaml'
    config.write_text(yaml.safe_dump({'model': {}}))
    out = str(tmp_path / 'out')
    line = one_line_error(
        run_in_process(capsys, 'coregister', '--config', str(config), '--output', out),
        'coregister',
    )
    assert 'no data: section' in line
    chips = os.path.join(ROOT, 'conf', 'decur_chips.yaml')
    line = one_line_error(
        run_in_process(capsys, 'coregister', '--config', chips, '--output', out),
        'coregister',
    )
    assert 'MultimodalGeoDataModule' in line
    assert not os.path.exists(out)


def test_no_overlap_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    far = tmp_path / 'far'
    far.mkdir()
    with rasterio.open(
        os.path.join(ROOT, 'tests/data/own_rasters/s2/s2_l1c.tif')
    ) as src:
        profile, data, t = src.profile, src.read(), src.transform
    profile['transform'] = rasterio.Affine(t.a, t.b, t.c - 80000, t.d, t.e, t.f)
    with rasterio.open(far / 'far.tif', 'w', **profile) as dst:
        dst.write(data)
    content = yaml.safe_load(Path(CONFIG).read_text())
    content['data']['init_args']['datasets']['s2']['init_args']['paths'] = str(far)
    config = tmp_path / 'config.yaml'
    config.write_text(yaml.safe_dump(content))
    line = one_line_error(
        run_in_process(
            capsys, 'coregister', '--config', str(config), '--output',
            str(tmp_path / 'out'),
        ),
        'coregister',
    )  # fmt: skip
    assert "modality 's2'" in line
    assert 'does not overlap' in line
    assert str(far) in line


def _file_size_limit() -> None:
    """In the child: files may not grow past 8 KiB, like a disk that is full."""
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 2**10, 8 * 2**10))


def test_full_disk_keeps_nothing_half_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'out'
    result = run_cli(
        'coregister', '--config', CONFIG, '--output', str(out),
        preexec_fn=_file_size_limit,
    )  # fmt: skip
    line = one_line_error(result, 'coregister')
    assert 'cannot write' in line
    assert str(out) in line
    assert not (out / 'manifest.json').exists()
    assert not [p for p in out.rglob('.*') if p.is_file()]  # no temporary
    for tile in out.glob('*/*.tif'):  # tiles finished before the disk filled
        with rasterio.open(tile) as src:
            assert src.read().shape[0] == src.count
    # With room again, the same command finishes the store.
    again = run_in_process(
        capsys, 'coregister', '--config', CONFIG, '--output', str(out)
    )
    assert again.returncode == 0, again.stderr
    assert (out / 'manifest.json').is_file()


def test_command_line_module_imports_no_torch() -> None:
    """``torchgeo-decur --help`` assembles this parser; heavy imports wait for run."""
    path = os.path.join(ROOT, 'torchgeo_decur', 'cli', 'coregister.py')
    tree = ast.parse(Path(path).read_text())
    top = [
        alias.name
        if isinstance(node, ast.Import)
        else '.' * node.level + (node.module or '')
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert top
    heavy = ('torch', 'lightning', 'rasterio', 'torchgeo', '..datamodules', 'numpy')
    assert not [name for name in top if name.startswith(heavy)]
