"""benchmarks/embed.py runs and prints well-formed JSON (tiny settings)."""

from collections.abc import Callable
from typing import Any


def test_embed_benchmark_on_the_fixture(
    run_benchmark: Callable[..., dict[str, Any]],
) -> None:
    result = run_benchmark(
        'benchmarks.embed',
        '--patch-size',
        '32',
        '--stride',
        '32',
        '--batch-size',
        '8',
        '--repeats',
        '1',
    )
    assert result['bands'] == 13
    assert result['patches'] == 16
    assert result['patches_per_second'] > 0
    assert result['encoder_only_patches_per_second'] > 0
    assert len(result['seconds']) == 1


def test_embed_benchmark_on_shards(
    run_benchmark: Callable[..., dict[str, Any]],
) -> None:
    shards = 'tests/data/terramesh/train/S2L1C'
    result = run_benchmark('benchmarks.embed', '--shards', shards, '--repeats', '1')
    assert (result['kind'], result['data']) == ('shards', shards)
    assert (result['bands'], result['patch_size'], result['patches']) == (13, 8, 8)
    assert result['patches_per_second'] > 0
