"""benchmarks/rda.py runs and reports consistent JSON (tiny settings)."""

import json

import pytest

from benchmarks import rda


def test_rda_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    rda.main(
        [
            '--batch-size',
            '1',
            '--size',
            '48',
            '--in-chans',
            '2',
            '--warmup',
            '0',
            '--repeats',
            '1',
            '--device',
            'cpu',
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert result['benchmark'] == 'rda'
    assert result['feature_maps'] == {'layer3': [3, 3], 'layer4': [2, 2]}
    names = [m['name'] for m in result['models']]
    assert names == ['resnet50', 'resnet50_rda', 'da_l3 (residual)', 'da_l4 (residual)']
    plain, full, l3, l4 = result['models']
    assert full['parameters'] - plain['parameters'] == 4_211_912 + 16_791_696
    assert l3['parameters'] == 4_211_912
    assert l4['parameters'] == 16_791_696
    assert full['saved_activations_mib'] > plain['saved_activations_mib'] > 0
    assert all(m['seconds_median'] > 0 for m in result['models'])
    parity = result['layer3_block_float32_vs_cpu_float64']
    assert parity['max_abs_diff_output'] < 1e-5 * parity['max_abs_output']
    assert 0 < parity['max_abs_diff_rpe_grad'] < 1e-4 * parity['max_abs_rpe_grad']
    rel = result['relative_to_resnet50']
    assert rel['parameters_resnet50_rda'] == full['parameters'] / plain['parameters']
