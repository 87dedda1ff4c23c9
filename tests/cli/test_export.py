"""``torchgeo-decur export`` under faults, driven through the real command.

Each fault that needs its own process (a kill mid-write, a file size limit) and
the first refusal run ``torchgeo-decur`` in a subprocess; the other refusals and
the set-up exports call the same entry point in this process
(:func:`~tests.cli.conftest.run_in_process`), which skips a fresh interpreter's
start-up.

The checkpoints are Lightning checkpoints in the layout of this package's
two-encoder tasks (``state_dict`` with ``backbones.<m>.*`` / ``projectors.<m>.*``
and ``hyper_parameters``), kept tiny: the export only rearranges keys, and
``tests/test_export.py`` round-trips a trained DeCURTask.
"""

import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from .conftest import cli_env, one_line_error, run_cli, run_in_process, snapshot

#: What timm's save_for_hf writes into each exported encoder folder.
TIMM_FILES = ('config.json', 'model.safetensors')


def write_checkpoint(
    path: Path, seed: int = 0, big: int = 0, nan: bool = False
) -> Path:
    """A Lightning checkpoint of an S1/S2 two-encoder task.

    The encoders are timm's tiny ``test_resnet`` (1.5 MB each) with random
    weights, so every output (the released layouts and the timm folders) is
    written; ``big`` adds a projector layer of that many rows (joint file only).
    """
    import timm

    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {}
    for modality, channels in (('s1', 2), ('s2', 13)):
        encoder = timm.create_model('test_resnet', in_chans=channels, num_classes=0)
        for key, value in encoder.state_dict().items():
            if value.is_floating_point():
                value = torch.randn(value.shape, generator=generator)
            state[f'backbones.{modality}.{key}'] = value
        state[f'projectors.{modality}.0.weight'] = torch.randn(
            16, encoder.num_features, generator=generator
        )
        if big:
            state[f'projectors.{modality}.1.weight'] = torch.randn(
                big, 16, generator=generator
            )
    if nan:
        state['backbones.s2.conv1.0.weight'][0, 0, 0, 0] = float('nan')
    hparams = {
        'modalities': ['s1', 's2'],
        'model': 'test_resnet',
        'in_channels': [2, 13],
    }
    torch.save({'state_dict': state, 'hyper_parameters': hparams, 'epoch': 3}, path)
    return path


EXPECTED = tuple(
    sorted(
        [
            'ckpt_joint_decur.pth',
            'ckpt_s1_decur.pth',
            'ckpt_s2_decur.pth',
            *(f'ckpt_{m}_timm/{f}' for m in ('s1', 's2') for f in TIMM_FILES),
        ]
    )
)


def exported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int = 0
) -> tuple[Path, dict[str, bytes]]:
    """Export a checkpoint once (in this process); return the folder and files."""
    ckpt = write_checkpoint(tmp_path / 'ckpt.ckpt', seed)
    out = tmp_path / 'out'
    result = run_in_process(capsys, 'export', str(ckpt), '--output-dir', str(out))
    assert result.returncode == 0, result.stderr
    files = snapshot(str(out))
    assert sorted(files) == list(EXPECTED)
    return out, files


def temporaries(folder: Path) -> list[str]:
    return glob.glob(os.path.join(folder, '.*.tmp-*'))


def test_second_export_refused_then_overwrite_replaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, before = exported(tmp_path, capsys)
    ckpt = write_checkpoint(tmp_path / 'ckpt.ckpt', seed=1)  # new weights
    line = one_line_error(
        run_cli('export', str(ckpt), '--output-dir', str(out)), 'export'
    )
    assert 'already exist' in line
    assert '--overwrite' in line
    assert str(out / 'ckpt_joint_decur.pth') in line
    assert snapshot(str(out)) == before  # nothing replaced, nothing added

    result = run_cli('export', str(ckpt), '--output-dir', str(out), '--overwrite')
    assert result.returncode == 0, result.stderr
    after = snapshot(str(out))
    assert sorted(after) == list(EXPECTED)
    # Every weights file is new (a config.json is the same for the same model).
    assert all(
        after[name] != before[name]
        for name in EXPECTED
        if not name.endswith('config.json')
    )
    joint = torch.load(out / 'ckpt_joint_decur.pth', weights_only=True)['model']
    want = torch.load(ckpt, weights_only=True)['state_dict']
    assert torch.equal(
        joint['module.backbone_1.conv1.0.weight'], want['backbones.s1.conv1.0.weight']
    )


@pytest.mark.parametrize('case', ['missing', 'directory', 'truncated', 'text', 'empty'])
def test_unreadable_checkpoint_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    path = tmp_path / 'model.ckpt'
    if case == 'directory':
        path.mkdir()
    elif case == 'truncated':
        write_checkpoint(path)
        path.write_bytes(path.read_bytes()[:-200])
    elif case == 'text':
        path.write_text('not a checkpoint\n')
    elif case == 'empty':
        path.write_bytes(b'')
    out = tmp_path / 'out'
    line = one_line_error(
        run_in_process(capsys, 'export', str(path), '--output-dir', str(out)), 'export'
    )
    assert repr(str(path)) in line
    assert not out.exists() or not os.listdir(out)


def test_output_dir_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = write_checkpoint(tmp_path / 'ckpt.ckpt')
    target = tmp_path / 'taken'
    target.write_text('keep me')
    line = one_line_error(
        run_in_process(capsys, 'export', str(ckpt), '--output-dir', str(target)),
        'export',
    )
    assert str(target) in line
    assert 'not a directory' in line
    assert target.read_text() == 'keep me'


def test_non_finite_weights_are_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = write_checkpoint(tmp_path / 'ckpt.ckpt', nan=True)
    out = tmp_path / 'out'
    line = one_line_error(
        run_in_process(capsys, 'export', str(ckpt), '--output-dir', str(out)), 'export'
    )
    assert "'module.backbone_2.conv1.0.weight'" in line
    assert 'non-finite' in line
    assert not out.exists() or not os.listdir(out)


def _file_size_limit() -> None:
    """In the child: files may not grow past 64 KiB, like a disk that is full.

    Python ignores SIGXFSZ, so a write past the limit fails with EFBIG.
    """
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 2**10, 64 * 2**10))


def test_full_disk_keeps_previous_files_and_leaves_no_temporary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, before = exported(tmp_path, capsys)
    big = write_checkpoint(tmp_path / 'ckpt.ckpt', seed=1, big=512)  # ~150 KiB
    result = run_cli(
        'export',
        str(big),
        '--output-dir',
        str(out),
        '--overwrite',
        preexec_fn=_file_size_limit,
    )
    line = one_line_error(result, 'export')
    assert 'cannot write' in line
    assert str(out) in line
    assert snapshot(str(out)) == before
    assert not temporaries(out)


def _immutable(folder: Path) -> bool:
    """Make ``folder`` unwritable even for root (chattr +i) or by mode bits."""
    if os.geteuid() == 0:
        if shutil.which('chattr') is None:
            return False
        done = subprocess.run(['chattr', '+i', str(folder)], capture_output=True)
        return done.returncode == 0
    folder.chmod(0o555)
    return True


def _writable_again(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(['chattr', '-i', str(folder)], capture_output=True)
    folder.chmod(0o755)


def test_read_only_target_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, before = exported(tmp_path, capsys)
    if not _immutable(out):
        pytest.skip('cannot make a folder read-only here (root without chattr)')
    try:
        ckpt = write_checkpoint(tmp_path / 'ckpt.ckpt', seed=1)
        result = run_in_process(
            capsys, 'export', str(ckpt), '--output-dir', str(out), '--overwrite'
        )
        line = one_line_error(result, 'export')
        assert str(out) in line
    finally:
        _writable_again(out)
    assert snapshot(str(out)) == before


#: Runs the command with torch.save slowed down: the second file's temporary
#: copy gets a few bytes and then the process hangs, so the test can kill it in
#: the middle of the export.
SLOW_WRITER = """
import sys, time, torch
from torchgeo_decur.cli import main
save, calls = torch.save, []
def slow_save(obj, f, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        f.write(b'partial')
        f.flush()
        time.sleep(600)
    save(obj, f, *args, **kwargs)
torch.save = slow_save
raise SystemExit(main(sys.argv[1:]))
"""


def kill_mid_write(args: list[str], out: Path) -> None:
    """Start the command with a slow writer and SIGKILL it mid-write."""
    process = subprocess.Popen(
        [sys.executable, '-c', SLOW_WRITER, *args],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while len(temporaries(out)) < 2:
            assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, 'export never started writing'
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


def test_kill_during_export_keeps_previous_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, before = exported(tmp_path, capsys)
    ckpt = write_checkpoint(tmp_path / 'ckpt.ckpt', seed=1)
    kill_mid_write(['export', str(ckpt), '--output-dir', str(out), '--overwrite'], out)
    visible = {k: v for k, v in snapshot(str(out)).items() if not k.startswith('.')}
    assert visible == before  # every previous file intact
    assert temporaries(out)  # the interrupted run's partial files
    # The next run finishes the job and removes what the killed one left.
    result = run_in_process(
        capsys, 'export', str(ckpt), '--output-dir', str(out), '--overwrite'
    )
    assert result.returncode == 0, result.stderr
    assert not temporaries(out)
    after = snapshot(str(out))
    assert sorted(after) == list(EXPECTED)
    for name in EXPECTED:
        if name.endswith('.pth'):
            assert after[name] != before[name]
            torch.load(out / name, weights_only=True)  # complete, loadable files
