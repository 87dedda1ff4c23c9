"""Released weights with no network: one line naming the file and where it goes."""

import os
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import torch
from torchgeo.models import get_model

from torchgeo_decur.cli import main
from torchgeo_decur.weights import DeCURMiTB2_Weights, DeCURResNet50_Weights
from torchgeo_decur.weights.loading import read_state_dict


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch.hub cache and a network that is down; the checkpoints dir."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))

    def no_network(url: str, *args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError('[Errno -2] Name or service not known')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    return Path(torch.hub.get_dir()) / 'checkpoints'


def test_library_names_the_file_and_the_folder(offline: Path) -> None:
    member = DeCURResNet50_Weights.SENTINEL1_SENTINEL2_SSL4EO_DECUR
    target = os.path.join(offline, member.meta['file'])
    with pytest.raises(OSError, match='put it at') as caught:
        read_state_dict(member)
    message = str(caught.value)
    assert target in message
    assert '\n' not in message
    assert 'local file path' in message
    with pytest.raises(OSError, match='put it at'):
        get_model('decur_resnet50', weights=member)


def test_cmx_says_it_in_one_line(
    offline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    member = DeCURMiTB2_Weights.RGB_HHA_SUNRGBD_DECUR
    status = main(['cmx', str(member), '--out-dir', str(tmp_path / 'cmx')])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(err) == 1
    assert err[0].startswith('torchgeo-decur cmx: error: ')
    assert os.path.join(offline, member.meta['file']) in err[0]
