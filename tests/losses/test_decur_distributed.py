import functools

import pytest
import torch

from torchgeo_decur.losses import DeCURLoss

from .ddp_harness import assert_ddp_equivalent


def make_decur(method: str, gather: bool) -> DeCURLoss:
    return DeCURLoss(common_dim=18, gather_distributed=gather, method=method)  # type: ignore[arg-type]


def make_local_decur(gather: bool) -> DeCURLoss:
    return DeCURLoss(common_dim=18, gather_distributed=False)


@pytest.mark.skipif(
    not torch.distributed.is_available(), reason='torch.distributed unavailable'
)
@pytest.mark.parametrize('method', ['gram', 'direct'])
def test_two_process_ddp_equals_single_process(method: str) -> None:
    assert_ddp_equivalent(functools.partial(make_decur, method))


def test_without_gathering_ranks_differ() -> None:
    # Sanity check of the harness: per-rank losses without gathering are not the
    # global loss, so the equivalence test above can fail.
    from .ddp_harness import check_ddp_equivalence

    dist_out, single = check_ddp_equivalence(make_local_decur)
    assert not torch.allclose(dist_out['loss'], single['loss'], rtol=1e-3)  # type: ignore[arg-type]
