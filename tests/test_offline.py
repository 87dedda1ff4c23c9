"""Released weights with no network: one line naming the file and where it goes."""

import os
import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import torch
from torchgeo.models import get_model, get_weight

from torchgeo_decur.cli import main
from torchgeo_decur.weights import DeCURMiTB2_Weights, DeCURResNet50_Weights
from torchgeo_decur.weights.loading import read_state_dict

from .conftest import ROOT

#: The member conf/eurosat_classification_decur_vits16.yaml names.
EUROSAT_MEMBER = 'DeCURViTSmall16_Weights.SENTINEL2_L1C_SSL4EO_DECUR'


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


#: A network that is down for urllib (torch.hub): every request goes to a proxy
#: on a closed port.
NO_NETWORK = {
    f'{scheme}_proxy': 'http://127.0.0.1:9'
    for scheme in ('http', 'https', 'HTTP', 'HTTPS')
}


@pytest.mark.parametrize(
    'command',
    [
        # A DeCUR task given a member on the command line.
        [
            '--config',
            'tests/conf/decur_ssl4eo_s12.yaml',
            '--model.init_args.model=resnet50',
            '--model.init_args.weights',
            'DeCURResNet50_Weights.SENTINEL1_SENTINEL2_SSL4EO_DECUR',
        ],
        # torchgeo's own Classification with a member in the recipe itself.
        [
            '--config',
            'conf/eurosat_classification_decur_vits16.yaml',
            '--config',
            'conf/smoke.yaml',
        ],
    ],
    ids=['decur_task_argument', 'torchgeo_task_recipe'],
)
def test_torchgeo_fit_says_it_in_one_line(command: list[str], tmp_path: Path) -> None:
    """The real ``torchgeo fit``, offline: no traceback, no wall of Union errors."""
    torch_home = tmp_path / 'torch'
    env = os.environ | NO_NETWORK | {'TORCH_HOME': str(torch_home)}
    env.pop('TORCHGEO_DECUR_TRACEBACK', None)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (ROOT, os.environ.get('PYTHONPATH')) if p
    )
    done = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), 'torchgeo'),
            'fit',
            *command,
            f'--trainer.default_root_dir={tmp_path / "out"}',
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert 'Traceback' not in done.stderr, done.stderr
    assert 'Union' not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith('torchgeo fit: error: '), done.stderr
    member = get_weight(command[-1] if 'weights' in command[-2] else EUROSAT_MEMBER)
    target = torch_home / 'hub' / 'checkpoints' / member.meta['file']
    assert f'put it at {target} ' in last, last
    assert not target.exists()
