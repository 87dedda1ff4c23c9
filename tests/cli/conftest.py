"""Helpers for driving the real ``torchgeo-decur`` command in a subprocess."""

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from ..conftest import ROOT

#: The installed console script beside this interpreter (what users run); the
#: command line package's ``__main__`` where it is not installed.
SCRIPT = os.path.join(os.path.dirname(sys.executable), 'torchgeo-decur')
COMMAND = (
    [SCRIPT] if os.path.isfile(SCRIPT) else [sys.executable, '-m', 'torchgeo_decur_cli']
)


def cli_env() -> dict[str, str]:
    """The environment with this checkout first on the import path."""
    path = os.environ.get('PYTHONPATH')
    return os.environ | {'PYTHONPATH': ROOT + (os.pathsep + path if path else '')}


def run_cli(
    *args: str,
    preexec_fn: Callable[[], Any] | None = None,
    command: Sequence[str] = COMMAND,
) -> subprocess.CompletedProcess[str]:
    """Run ``torchgeo-decur ARGS`` and return the finished process."""
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        preexec_fn=preexec_fn,
        timeout=300,
    )


def one_line_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    """Assert exit 1 with a single ``torchgeo-decur CMD: error:`` line; return it."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert 'Traceback' not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith('torchgeo-decur')]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f'torchgeo-decur {command}: error: '), lines[0]
    return lines[0]


def snapshot(folder: str) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    out = {}
    for directory, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, 'rb') as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def run_in_process(
    capsys: pytest.CaptureFixture[str], *args: str
) -> subprocess.CompletedProcess[str]:
    """Run ``torchgeo-decur ARGS`` through :func:`torchgeo_decur_cli.main` in this process.

    For the many refusal cases of one subcommand: each module still drives the
    real command in a subprocess at least once (:func:`run_cli`), and the rest skip
    the ~10 s interpreter start-up of a fresh process.

    Returns:
        The exit status and captured output, shaped like :func:`run_cli`'s.
    """
    from torchgeo_decur_cli import main

    capsys.readouterr()  # drop what the test printed before
    status = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(['torchgeo-decur', *args], status, out, err)
