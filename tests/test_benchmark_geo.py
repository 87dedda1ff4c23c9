"""benchmarks/geo_loading.py runs and prints well-formed JSON (tiny settings)."""

from collections.abc import Callable
from typing import Any


def test_geo_loading_benchmark_on_the_fixture(
    run_benchmark: Callable[..., dict[str, Any]],
) -> None:
    result = run_benchmark(
        'benchmarks.geo_loading',
        '--patches',
        '4',
        '--batch-size',
        '2',
        '--repeats',
        '1',
        '--coregistered',
    )
    fixture = result['paths']['geo:fixture']
    assert fixture['patches'] == 4
    assert fixture['bands'] == {'s1': 2, 's2': 13, 'dem': 1}
    assert fixture['patches_per_second'] > 0
    assert fixture['patches_per_second_per_worker'] == fixture['patches_per_second']
    coregistered = result['paths']['geo:fixture+coregistered']
    assert coregistered['patches'] == 4
    assert coregistered['bands'] == fixture['bands']
    assert coregistered['coregister_seconds'] > 0
    ratio = result['ratios']['geo:fixture+coregistered / geo:fixture (patches/s)']
    assert ratio == coregistered['patches_per_second'] / fixture['patches_per_second']
