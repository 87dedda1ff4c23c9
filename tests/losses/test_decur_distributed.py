"""DeCURLoss with gathering under two-process DDP equals the one-process loss.

One process group checks every loss of this module (spawning the processes costs
more than the checks): the gathered loss with both methods, and, as a check of
the harness itself, a loss without gathering, which must differ.
"""

import functools

import pytest
import torch

from torchgeo_decur.losses import DeCURLoss

from .ddp_harness import (
    DDPResults,
    assert_results_equivalent,
    check_ddp_equivalence_many,
)

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason='torch.distributed unavailable'
)


def make_decur(method: str, gather: bool) -> DeCURLoss:
    return DeCURLoss(common_dim=18, gather_distributed=gather, method=method)  # type: ignore[arg-type]


def make_local_decur(gather: bool) -> DeCURLoss:
    return DeCURLoss(common_dim=18, gather_distributed=False)


@pytest.fixture(scope='module')
def results() -> DDPResults:
    return check_ddp_equivalence_many(
        {
            'gram': functools.partial(make_decur, 'gram'),
            'direct': functools.partial(make_decur, 'direct'),
            'local': make_local_decur,
        }
    )


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
