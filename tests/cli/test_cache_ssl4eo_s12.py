"""``torchgeo-decur cache-ssl4eo-s12`` never mixes sources, driven through the command.

The write, resume, overwrite and one refusal run the installed command in a
subprocess; the other refusals call its ``main`` in this process (the same code
path, and the same exit status and one-line message, without a fresh
interpreter's start-up).
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ..conftest import DATA
from .conftest import one_line_error, run_cli, run_in_process, snapshot

ROOT = os.path.join(DATA, 'ssl4eo_s12')
INVALID = os.path.join(ROOT, 'invalid')


def cache_args(root: str, out: Path, *extra: str) -> list[str]:
    return ['cache-ssl4eo-s12', '--root', root, '--output', str(out), *extra]


@pytest.fixture(scope='module')
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete raw 24 px cache of the fixture, written once by the command."""
    out = tmp_path_factory.mktemp('written') / 'cache'
    result = run_cli(*cache_args(ROOT, out, '--size', '24'))
    assert result.returncode == 0, result.stderr
    assert 'wrote 4 locations' in result.stdout
    return out


@pytest.fixture
def cache(written: Path, tmp_path: Path) -> Path:
    """A private copy of that cache (same settings, so the command resumes it)."""
    out = tmp_path / 'cache'
    shutil.copytree(written, out)
    return out


def mtimes(folder: Path) -> dict[str, int]:
    return {
        os.path.relpath(os.path.join(d, f), folder): os.stat(
            os.path.join(d, f)
        ).st_mtime_ns
        for d, _, files in os.walk(folder)
        for f in files
    }


@pytest.mark.parametrize(
    ('change', 'setting'),
    [
        (['--root', 'OTHER'], 'source'),
        (['--encoding', 'uint8'], 'encoding'),
        (['--size', '12'], 'size'),
        (['--s2-product', 's2a'], 'products'),
    ],
)
def test_rerun_with_other_settings_is_refused(
    cache: Path,
    tmp_path: Path,
    change: list[str],
    setting: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = snapshot(str(cache))
    args = {'--root': ROOT, '--size': '24'}
    if change[0] == '--root':  # the same data under another path: another source
        other = tmp_path / 'copy'
        shutil.copytree(ROOT, other, ignore=shutil.ignore_patterns('invalid'))
        change = ['--root', str(other)]
    args.update(dict([change]))  # type: ignore[arg-type]
    command = [
        'cache-ssl4eo-s12',
        '--output',
        str(cache),
        *[x for pair in args.items() for x in pair],
    ]
    if setting == 'source':
        result = run_cli(*command)
    else:
        result = run_in_process(capsys, *command)
    line = one_line_error(result, 'cache-ssl4eo-s12')
    assert f'{setting}=' in line
    assert '--overwrite' in line
    assert str(cache) in line
    assert snapshot(str(cache)) == before  # nothing written or deleted


def test_same_settings_resume_and_clean_temporaries(cache: Path) -> None:
    manifest = json.loads((cache / 'manifest.json').read_text())
    # What a killed run leaves: a missing array, temporary files.
    os.remove(cache / 's1' / '0000003.npy')
    (cache / 's1' / '0000002.npy.tmp-4242.npy').write_bytes(b'partial')
    (cache / '.manifest.json.tmp-4242').write_text('{')
    before = mtimes(cache)
    result = run_cli(*cache_args(ROOT, cache, '--size', '24'))
    assert result.returncode == 0, result.stderr
    after = mtimes(cache)
    assert 's1/0000002.npy.tmp-4242.npy' not in after
    assert '.manifest.json.tmp-4242' not in after
    assert 's1/0000003.npy' in after  # written again
    for name, stamp in before.items():  # complete locations kept as they were
        if name.endswith('.npy') and 'tmp' not in name and '0000003' not in name:
            assert after[name] == stamp, name
    assert json.loads((cache / 'manifest.json').read_text()) == manifest


def test_interrupted_first_run_resumes_but_refuses_other_settings(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = cache
    # Make it look like the first run died before its manifest was written.
    manifest = json.loads((out / 'manifest.json').read_text())
    os.remove(out / 'manifest.json')
    settings = {k: manifest[k] for k in manifest if k not in ('locations', 'skipped')}
    (out / 'writing.json').write_text(json.dumps(settings))
    os.remove(out / 's2c' / '0000001.npy')
    line = one_line_error(
        run_in_process(
            capsys, *cache_args(ROOT, out, '--size', '24', '--encoding', 'float32')
        ),
        'cache-ssl4eo-s12',
    )
    assert "encoding='raw'" in line
    result = run_cli(*cache_args(ROOT, out, '--size', '24'))
    assert result.returncode == 0, result.stderr
    assert not (out / 'writing.json').exists()
    assert json.loads((out / 'manifest.json').read_text()) == manifest


def test_overwrite_replaces_the_whole_cache(cache: Path, tmp_path: Path) -> None:
    stray = cache / 's2c' / '9999999.npy'  # an array of the old cache only
    np.save(stray, np.zeros((13, 24, 24), np.uint16))
    result = run_cli(
        *cache_args(
            INVALID, cache, '--size', '12', '--on-invalid', 'skip', '--overwrite'
        )
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((cache / 'manifest.json').read_text())
    assert manifest['size'] == 12
    assert manifest['source'] == os.path.realpath(INVALID)
    assert sorted(manifest['locations']) == ['0000000', '0000001']
    arrays = sorted(p.name for p in (cache / 's1').iterdir())
    assert arrays == ['0000000.npy', '0000001.npy']  # nothing from the old source
    assert not stray.exists()
    assert np.load(cache / 's1' / '0000000.npy').shape == (8, 12, 12)


def test_old_format_version_is_refused_with_rewrite_hint(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((cache / 'manifest.json').read_text())
    manifest['version'] = 1
    (cache / 'manifest.json').write_text(json.dumps(manifest))
    args = cache_args(ROOT, cache, '--size', '24')
    line = one_line_error(run_in_process(capsys, *args), 'cache-ssl4eo-s12')
    assert 'version=1' in line
    assert '--overwrite' in line
    assert run_in_process(capsys, *args, '--overwrite').returncode == 0
    assert json.loads((cache / 'manifest.json').read_text())['version'] != 1


@pytest.mark.parametrize('damage', ['broken-json', 'not-an-object'])
def test_broken_manifest_is_an_error_naming_it(
    cache: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = '{"format": "torchgeo' if damage == 'broken-json' else '[1, 2]'
    (cache / 'manifest.json').write_text(text)
    line = one_line_error(
        run_in_process(capsys, *cache_args(ROOT, cache, '--size', '24')),
        'cache-ssl4eo-s12',
    )
    assert str(cache / 'manifest.json') in line


def test_arrays_without_settings_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'cache'
    (out / 's1').mkdir(parents=True)
    np.save(out / 's1' / '0000000.npy', np.zeros((8, 24, 24), np.float32))
    line = one_line_error(
        run_in_process(capsys, *cache_args(ROOT, out, '--size', '24')),
        'cache-ssl4eo-s12',
    )
    assert str(out / 's1' / '0000000.npy') in line


def test_output_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'cache'
    out.write_text('keep me')
    line = one_line_error(
        run_in_process(capsys, *cache_args(ROOT, out, '--size', '24')),
        'cache-ssl4eo-s12',
    )
    assert str(out) in line
    assert out.read_text() == 'keep me'


def test_missing_root_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / 'nowhere'
    line = one_line_error(
        run_in_process(capsys, *cache_args(str(missing), tmp_path / 'cache')),
        'cache-ssl4eo-s12',
    )
    assert str(missing) in line
