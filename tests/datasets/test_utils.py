import pytest

from torchgeo_decur.datasets.utils import distinct_subset


def test_distinct_subset() -> None:
    assert distinct_subset(['s2', 's1'], ['s1', 's2']) == ('s2', 's1')
    for bad in ([], ['s1', 's1'], ['s3']):
        with pytest.raises(ValueError, match='modalities must be distinct'):
            distinct_subset(bad, ['s1', 's2'])
