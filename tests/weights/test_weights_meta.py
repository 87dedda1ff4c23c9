"""The members' meta: plain values, consistent with the input pipelines."""

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import torch
from torch import nn

from torchgeo_decur.models.shapes import encoder_shapes
from torchgeo_decur.weights import INPUTS, WEIGHTS, DeCURWeightsEnum

MEMBERS = [m for enum in WEIGHTS for m in enum]


def modules_in(value: Any) -> list[nn.Module]:
    """Every nn.Module inside a (nested) meta value."""
    if isinstance(value, nn.Module):
        return [value]
    if isinstance(value, Mapping):
        return [m for v in value.values() for m in modules_in(v)]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [m for v in value for m in modules_in(v)]
    return []


@pytest.mark.parametrize('member', MEMBERS, ids=str)
def test_meta_is_plain_and_matches_the_inputs(member: DeCURWeightsEnum) -> None:
    assert modules_in(member.meta) == []
    inputs = member.meta['inputs']
    assert len(inputs) == len(member.modalities)
    for position, key in enumerate(inputs, start=1):
        spec = INPUTS[key]
        assert spec.name == member.modalities[position - 1]
        assert member.bands_for(position) == spec.bands
        transform = member.transforms_for(position)
        assert isinstance(transform, nn.Module)
        assert type(transform) is type(spec.transforms())


def test_expected_shapes_come_from_the_meta_device() -> None:
    shapes = encoder_shapes('resnet18', 5, num_classes=0)
    assert shapes is not None
    assert shapes['conv1.weight'] == torch.Size([64, 5, 7, 7])
    assert 'fc.weight' not in shapes
    # smp's MiT reads a value from a tensor in its constructor: not checked here.
    assert encoder_shapes('mit_b2', 3, num_classes=0) is None
