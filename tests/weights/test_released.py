"""The table of released files: every member is built from its row, and only so."""

import re
from pathlib import Path

import pytest

from torchgeo_decur.weights import (
    BUILDERS,
    INPUTS,
    RELEASED_FILES,
    WEIGHTS,
    DeCURWeightsEnum,
    released_file,
    released_weights,
)

from ..conftest import ROOT

MEMBERS: list[DeCURWeightsEnum] = [m for enum in WEIGHTS for m in enum]


def test_every_row_is_one_member_and_every_member_one_row() -> None:
    files = [row.file for row in RELEASED_FILES]
    assert len(files) == len(set(files)) == 24
    assert sorted(m.meta['file'] for m in MEMBERS) == sorted(files)


@pytest.mark.parametrize('member', MEMBERS, ids=str)
def test_member_is_built_from_its_row(member: DeCURWeightsEnum) -> None:
    row = released_file(member.meta['file'])
    rebuilt = released_weights(row.file)
    assert rebuilt.url == member.url == row.url
    assert rebuilt.meta == member.meta
    assert list(rebuilt.meta) == list(member.meta)
    assert type(rebuilt.transforms) is type(member.transforms)
    assert row.model == member.meta['model']
    assert row.dataset == member.meta['dataset']
    assert row.inputs == member.meta['inputs']
    assert row.modalities == member.modalities
    assert row.bands == {m: member.bands_for(m) for m in member.modalities}
    assert dict(row.backbone_kwargs) == member.meta['backbone_kwargs']


def test_one_architecture_per_enum_and_its_builder() -> None:
    for enum in WEIGHTS:
        (model,) = {member.meta['model'] for member in enum}
        builder, registered = BUILDERS[f'decur_{model}']
        assert registered is enum
        assert builder.__name__ == f'decur_{model}'


def test_unknown_file_is_one_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"'rn50_nope\.pth' is not a released DeCUR file"
    ):
        released_weights('rn50_nope.pth')


def test_user_guide_table_matches_the_release() -> None:
    # The member table of the weights page is written by hand; it must say what
    # the code does (member, file, URL, modalities and input scaling).
    text = (Path(ROOT) / 'docs' / 'user_guide' / 'weights.md').read_text()
    rows = re.findall(
        r'^\| `(DeCUR\w+\.\w+)` \| \[`([^`]+)`\]\(([^)]+)\) \| ([^|]+) \| [^|]+ \| ([^|]+) \|$',
        text,
        re.M,
    )
    documented = {
        name: (file, url, mods.strip(), scaling.strip())
        for name, file, url, mods, scaling in rows
    }
    expected = {
        str(m): (
            m.meta['file'],
            m.url,
            ' + '.join(m.modalities),
            ' / '.join(INPUTS[key].description for key in m.meta['inputs']),
        )
        for m in MEMBERS
    }
    assert documented == expected
