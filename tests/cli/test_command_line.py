"""The command line itself: quick, plain help, and one-line errors for every command."""

import argparse
import importlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from torchgeo_decur.datasets.ssl4eo_s12_cache import DTYPES
from torchgeo_decur_cli import build_parser
from torchgeo_decur_cli.cache_ssl4eo_s12 import ENCODINGS

from ..conftest import ROOT
from .conftest import cli_env, one_line_error, run_in_process


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser, by name."""
    parser = build_parser()
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices)


#: Modules that --help must not load (torch and Lightning above all; the package
#: itself imports torch).
HEAVY = ('torch', 'lightning', 'torchgeo', 'torchgeo_decur', 'numpy', 'timm')

#: reStructuredText a terminal shows raw: roles, double backticks, literal-block ``::``.
MARKUP = re.compile(r':[a-z]+:`|``|::\s*$', re.MULTILINE)

#: One fresh interpreter prints the help of the command and of every subcommand,
#: then the modules those imports loaded.
HELP_SCRIPT = """
import contextlib, io, json, sys
from torchgeo_decur_cli import build_parser, main
names = [None, *build_parser()._subparsers._group_actions[0].choices]
texts = {}
for name in names:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([name, '--help'] if name else ['--help'])
        except SystemExit as exit:
            assert exit.code == 0, (name, exit.code)
    texts[name or ''] = out.getvalue()
print(json.dumps({'help': texts, 'modules': sorted(sys.modules)}))
"""


@pytest.fixture(scope='module')
def help_run() -> dict[str, dict[str, str] | list[str]]:
    result = subprocess.run(
        [sys.executable, '-c', HELP_SCRIPT],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, dict[str, str] | list[str]] = json.loads(result.stdout)
    return found


def test_help_imports_neither_torch_nor_lightning(
    help_run: dict[str, dict[str, str] | list[str]],
) -> None:
    loaded = [m for m in help_run['modules'] if m.split('.')[0] in HEAVY]
    assert loaded == []
    assert 'torchgeo_decur_cli.embed' in help_run['modules']  # the check can fail


def test_help_of_every_command_is_plain_text(
    help_run: dict[str, dict[str, str] | list[str]],
) -> None:
    texts = help_run['help']
    assert isinstance(texts, dict)
    assert set(texts) == {'', *subcommands()}
    for name, text in texts.items():
        assert text.startswith(f'usage: torchgeo-decur {name}'.rstrip()), text
        assert MARKUP.search(text) is None, (name, MARKUP.search(text))
    for name in subcommands():  # the top-level help lists every command
        assert f'    {name}' in texts['']


def test_the_console_script_is_the_light_main() -> None:
    with open(f'{ROOT}/pyproject.toml', 'rb') as f:
        scripts = tomllib.load(f)['project']['scripts']
    assert scripts == {'torchgeo-decur': 'torchgeo_decur_cli:main'}


def test_markup_check_finds_markup() -> None:
    for text in ('see :func:`f`', 'the ``x`` option', 'Example::\n'):
        assert MARKUP.search(text) is not None, text


def test_every_command_names_a_module_that_runs_it() -> None:
    for name, parser in subcommands().items():
        module = importlib.import_module(parser.get_default('implementation'))
        assert callable(module.run), name


def test_cache_encodings_are_the_cache_formats() -> None:
    assert list(ENCODINGS) == sorted(DTYPES)


def missing_input(name: str, missing: str, out: str) -> list[str]:
    """Arguments of ``name`` whose input ``missing`` does not exist."""
    return {
        'export': ['export', missing, '--output-dir', out],
        'cmx': ['cmx', missing, '--out-dir', out],
        'cache-ssl4eo-s12': ['cache-ssl4eo-s12', '--root', missing, '--output', out],
        'shards': ['shards', 'ssl4eo-s12', '--root', missing, '--out', out],
        'info': ['info', missing],
        'picture': ['picture', missing, f'{out}.png', '--config', missing],
        'embed': ['embed', missing, out, '--chips', f's2={missing}'],
        'neighbours': ['neighbours', missing, '--id', '0'],
        'coregister': ['coregister', '--config', missing, '--output', out],
    }[name]


@pytest.mark.parametrize('name', list(subcommands()))
def test_every_command_reports_a_missing_input_in_one_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / 'no_such_input')
    result = run_in_process(capsys, *missing_input(name, missing, str(tmp_path / 'o')))
    assert missing in one_line_error(result, name)
    assert [p for p in tmp_path.rglob('*') if not p.is_dir()] == []  # nothing written
