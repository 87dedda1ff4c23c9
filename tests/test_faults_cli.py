"""Fault suite: the real command lines on corrupt data, divergence and tiny data.

Every case runs ``torchgeo fit`` or ``torchgeo-decur cache-ssl4eo-s12`` in a
subprocess, as a user would, and checks the exit status, the message and that no
file was lost or left corrupt.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import pytest
import torch

from torchgeo_decur.cli import main as cli_main

from .conftest import DATA, ROOT
from .faults.library import FAULTS

SSL4EO = os.path.join(DATA, 'ssl4eo_s12')


def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run an installed console script with this checkout importable.

    Args:
        *args: The script name (``torchgeo`` or ``torchgeo-decur``) and its
            arguments.
        timeout: Seconds before the run is killed.

    Returns:
        The finished process with its stdout and stderr.
    """
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (ROOT, env.get('PYTHONPATH', '')) if p
    )
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), args[0]), *args[1:]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def fit_config(
    tmp_path: Path,
    data: str,
    data_class: str = 'SSL4EOS12PairsDataModule',
    **data_args: object,
) -> Path:
    """A tiny DeCUR fit config: resnet10t, checkpoints after every step."""
    if data_class == 'SSL4EOS12PairsDataModule':
        data_args = {'size': 24, 'batch_size': 2, **data_args}
    extra = ''.join(f'    {k}: {json.dumps(v)}\n' for k, v in data_args.items())
    text = f"""\
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  max_epochs: 1
  logger: false
  enable_progress_bar: false
  enable_model_summary: false
  default_root_dir: {tmp_path / 'out'}
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args:
        dirpath: {tmp_path / 'out' / 'checkpoints'}
        save_last: true
        save_top_k: -1
        every_n_train_steps: 1
model:
  class_path: torchgeo_decur.DeCURTask
  init_args:
    model: resnet10t
    projector_dims: [32, 32]
    common_dim: 24
    crop_size: 32
    lr: 0.001
data:
  class_path: torchgeo_decur.datamodules.{data_class}
  init_args:
    root: {data}
{extra}"""
    path = tmp_path / 'fit.yaml'
    path.write_text(text)
    return path


def corrupt_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The S1/S2 L1C fixture with location 0000001's first S1 VV file truncated."""
    root = tmp_path / 'ssl4eo'
    for product in ('s1', 's2c'):
        shutil.copytree(os.path.join(SSL4EO, product), root / product)
    stamp = sorted((root / 's1' / '0000001').iterdir())[0]
    bad = stamp / 'VV.tif'
    bad.write_bytes(bad.read_bytes()[:500])
    return root, bad


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_finite_checkpoint(path: Path) -> None:
    state = torch.load(path, weights_only=True, map_location='cpu')['state_dict']
    for key, value in state.items():
        if value.is_floating_point():
            assert torch.isfinite(value).all(), f'{path}: {key} is not finite'


def test_fit_on_corrupt_file_names_it(tmp_path: Path) -> None:
    root, bad = corrupt_copy(tmp_path)
    config = fit_config(tmp_path, str(root), check_files=True)
    result = run('torchgeo', 'fit', '--config', str(config))
    assert result.returncode != 0
    assert str(bad) in result.stderr
    assert "malformed SSL4EO-S12 location '0000001'" in result.stderr
    assert not (tmp_path / 'out' / 'checkpoints').exists()


def test_fit_with_too_few_samples_for_a_batch_fails(tmp_path: Path) -> None:
    # on_invalid: skip removes the corrupt location: 3 left, batch_size 4.
    root, _ = corrupt_copy(tmp_path)
    config = fit_config(tmp_path, str(root), on_invalid='skip', batch_size=4)
    result = run('torchgeo', 'fit', '--config', str(config))
    assert result.returncode != 0
    assert 'batch_size=4 is larger than the 3 training samples' in result.stderr
    assert "on_invalid='skip' removed 1 invalid location" in result.stderr


def test_divergence_stops_and_keeps_finite_checkpoints(tmp_path: Path) -> None:
    config = fit_config(tmp_path, SSL4EO)
    good = run('torchgeo', 'fit', '--config', str(config))
    assert good.returncode == 0, good.stderr[-3000:]
    checkpoints = tmp_path / 'out' / 'checkpoints'
    last = checkpoints / 'last.ckpt'
    before = sha256(last)

    diverge = run(
        'torchgeo',
        'fit',
        '--config',
        str(config),
        '--model.init_args.lr=1e6',
        '--trainer.max_epochs=20',
    )
    assert diverge.returncode != 0
    message = diverge.stderr
    assert 'NonFiniteError' in message
    assert 'step ' in message
    assert (
        'refusing to write a checkpoint' in message
        or 'non-finite training loss' in message
    )
    if 'non-finite training loss' in message:
        assert "modality '" in message
    # The earlier run's last.ckpt is intact, and nothing non-finite was written.
    assert sha256(last) == before
    for path in checkpoints.glob('*.ckpt'):
        assert_finite_checkpoint(path)


def test_cache_writer_on_corrupt_file(tmp_path: Path) -> None:
    root, bad = corrupt_copy(tmp_path)
    failed = run(
        'torchgeo-decur',
        'cache-ssl4eo-s12',
        '--root',
        str(root),
        '--output',
        str(tmp_path / 'cache-error'),
        '--size',
        '12',
    )
    assert failed.returncode == 1
    last_line = failed.stderr.strip().splitlines()[-1]
    assert last_line.startswith('torchgeo-decur cache-ssl4eo-s12: error: ')
    assert str(bad) in last_line
    assert 'Traceback' not in failed.stderr

    cache = tmp_path / 'cache'
    skipped = run(
        'torchgeo-decur',
        'cache-ssl4eo-s12',
        '--root',
        str(root),
        '--output',
        str(cache),
        '--size',
        '12',
        '--on-invalid',
        'skip',
    )
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert 'wrote 3 locations (1 skipped' in skipped.stdout
    manifest = json.loads(next(cache.glob('*.json')).read_text())
    assert str(bad) in manifest['skipped']['0000001']


def test_fit_on_empty_shards_fails_naming_the_root(tmp_path: Path) -> None:
    # Issue 24 B11: every tar is empty; fit used to exit 0 with a step-0 last.ckpt.
    root = tmp_path / 'shards'
    for folder in ('S1GRD', 'S2L1C'):
        os.makedirs(root / 'train' / folder)
        with tarfile.open(root / 'train' / folder / 'x_shard_000000.tar', 'w'):
            pass
    config = fit_config(tmp_path, str(root), 'TerraMeshDataModule', batch_size=2)
    result = run('torchgeo', 'fit', '--config', str(config))
    assert result.returncode != 0
    assert f'no sample found in {root}/train' in result.stderr
    assert 'x_shard_000000.tar' in result.stderr
    assert not (tmp_path / 'out' / 'checkpoints' / 'last.ckpt').exists()


@pytest.mark.parametrize('fault', list(FAULTS))
def test_cache_command_on_every_catalogue_fault(
    fault: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 24 item 3: one line naming the file and exit 1, or (blank and
    # constant bands) a warning naming it and exit 0; never a traceback.
    root = tmp_path / 'ssl4eo'
    for product in ('s1', 's2c'):
        shutil.copytree(os.path.join(SSL4EO, product), root / product)
    bad = sorted((root / 's2c' / '0000001').iterdir())[0] / 'B2.tif'
    FAULTS[fault](str(bad))
    argv = ['cache-ssl4eo-s12', '--root', str(root), '--output', str(tmp_path / 'c')]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        status = cli_main([*argv, '--size', '12'])
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    if status == 0:
        assert fault in ('all-nodata', 'constant-band')
        assert any(str(bad) in str(w.message) for w in record)
        return
    assert status == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith('torchgeo-decur cache-ssl4eo-s12: error: ')
    assert str(bad) in last or "location '0000001'" in last
