"""DeCURLoss with gathering under two-process DDP equals the one-process loss.

The suite's one process group (tests/distributed.py) runs every loss of this
module: the gathered loss with both methods, and, as a check of the harness
itself, a loss without gathering, which must differ.
"""

import functools

import pytest
import torch

from torchgeo_decur.losses import DeCURLoss

from ..distributed import Results
from .ddp_harness import (
    DDPResults,
    LossFactory,
    assert_results_equivalent,
    rank_results,
    with_single_process,
)


def make_decur(method: str, gather: bool) -> DeCURLoss:
    return DeCURLoss(common_dim=18, gather_distributed=gather, method=method)  # type: ignore[arg-type]


def make_local_decur(gather: bool) -> DeCURLoss:
    return DeCURLoss(common_dim=18, gather_distributed=False)


FACTORIES: dict[str, LossFactory] = {
    'gram': functools.partial(make_decur, 'gram'),
    'direct': functools.partial(make_decur, 'direct'),
    'local': make_local_decur,
}


def ddp_job(rank: int, world_size: int) -> dict[str, dict[str, object]]:
    """This module's part of the suite's process group (tests/distributed.py)."""
    return rank_results(rank, world_size, FACTORIES)


@pytest.fixture(scope='module')
def results(distributed: Results) -> DDPResults:
    return with_single_process(FACTORIES, distributed['decur_loss'])


@pytest.mark.parametrize('method', ['gram', 'direct'])
def test_two_process_ddp_equals_single_process(
    results: DDPResults, method: str
) -> None:
    dist_out, single = results[method]
    assert_results_equivalent(method, dist_out, single, rtol=1e-5)


def test_without_gathering_ranks_differ(results: DDPResults) -> None:
    # Sanity check of the harness: per-rank losses without gathering are not the
    # global loss, so the equivalence test above can fail.
    dist_out, single = results['local']
    assert not torch.allclose(dist_out['loss'], single['loss'], rtol=1e-3)  # type: ignore[arg-type]
