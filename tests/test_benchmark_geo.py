"""benchmarks/geo_loading.py runs and prints well-formed JSON (tiny settings)."""

import json
import subprocess
import sys

from .conftest import ROOT


def test_geo_loading_benchmark_on_the_fixture() -> None:
    out = subprocess.run(
        [
            sys.executable,
            '-m',
            'benchmarks.geo_loading',
            '--patches',
            '4',
            '--batch-size',
            '2',
            '--repeats',
            '1',
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out)
    fixture = result['paths']['geo:fixture']
    assert fixture['patches'] == 4
    assert fixture['bands'] == {'s1': 2, 's2': 13, 'dem': 1}
    assert fixture['patches_per_second'] > 0
    assert fixture['patches_per_second_per_worker'] == fixture['patches_per_second']
