"""The benchmark scripts run and print well-formed JSON (tiny settings)."""

import json
import os
import subprocess
import sys
from typing import Any

from .conftest import DATA, ROOT


def run(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, '-m', *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def test_train_step_benchmark() -> None:
    result = run(
        'benchmarks.train_step',
        '--model',
        'resnet18',
        '--batch-size',
        '4',
        '--size',
        '32',
        '--input-size',
        '40',
        '--projector-dims',
        '64',
        '64',
        '--warmup',
        '1',
        '--steps',
        '1',
        '--device',
        'cpu',
        '--variants',
        'fp32',
        'bf16+cl',
        '--verify-steps',
        '2',
    )
    assert result['benchmark'] == 'train_step'
    assert result['baseline'] == 'fp32'
    assert result['peak_rss_increase_mib'] >= 0
    fp32, fast = result['variants']['fp32'], result['variants']['bf16+cl']
    assert fp32['samples_per_second'] > 0
    assert fast['precision'] == 'bf16'
    assert fast['channels_last'] is True
    assert len(fast['losses']) == 2
    assert fp32['max_rel_loss_diff_vs_baseline'] == 0
    assert 0 < fast['max_rel_loss_diff_vs_baseline'] < 0.05


def test_data_loading_benchmark() -> None:
    result = run(
        'benchmarks.data_loading',
        '--root',
        os.path.join(DATA, 'ssl4eo_s12'),
        '--size',
        '24',
        '--samples',
        '8',
        '--cache-samples',
        '8',
        '--batch-size',
        '4',
        '--repeats',
        '1',
        '--write-cache',
        'uint8',
        '--floor',
    )
    assert result['locations'] == 4
    assert set(result['paths']) == {'geotiff', 'cache:uint8', 'floor:cache:uint8'}
    for path in result['paths'].values():
        assert path['samples'] == 8
        assert path['samples_per_second'] > 0
        assert path['cpu_seconds_per_sample'] > 0
    assert result['paths']['cache:uint8']['write_seconds'] > 0
    assert result['speedup_vs_geotiff']['cache:uint8'] > 0


def test_decur_loss_benchmark() -> None:
    result = run(
        'benchmarks.decur_loss',
        '--device',
        'cpu',
        '--k',
        '32',
        '--n',
        '8',
        '--methods',
        'reference',
        'gram',
        '--repeats',
        '1',
        '--in-process',
    )
    (row,) = result['results']
    assert row['n'] == 8
    for method in ('reference', 'gram'):
        assert row[method]['seconds_median'] > 0
        assert 'peak_memory_mib' in row[method]
    assert row['gram']['speedup_vs_reference'] > 0
    # The equality check covers every method against the K x K transcription.
    for method in ('direct', 'gram', 'auto'):
        check = row['check'][method]
        assert check['values_equal'], (method, check)
        assert check['grads_equal'], (method, check)
