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
    )
    assert result['benchmark'] == 'train_step'
    assert result['samples_per_second'] > 0
    assert result['peak_rss_increase_mib'] >= 0


def test_data_loading_benchmark() -> None:
    result = run(
        'benchmarks.data_loading',
        '--root',
        os.path.join(DATA, 'ssl4eo_s12'),
        '--size',
        '24',
        '--samples',
        '8',
        '--batch-size',
        '4',
    )
    assert result['samples'] == 8
    assert result['locations'] == 4
