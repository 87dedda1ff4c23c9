"""Folders that a writer fills resumably: settings record, refusal, resume or overwrite.

A writer of many data files (the SSL4EO-S12 array cache, the co-registered store)
records the settings of its run in ``writing.json`` before the first data file
and replaces that by ``manifest.json`` (the settings and what was written) after
the last one, so a folder without a manifest is unfinished. A rerun with the
same settings resumes, keeping the data files already written; a rerun with
other settings is refused naming each, and so are data files that no settings
or manifest file accounts for, unless ``overwrite``, which first deletes what an
earlier run wrote (and nothing else). Temporary files of an interrupted run are
removed. The JSON files are written atomically, with the umask's mode.
"""

import glob
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..checkpoints.files import save_atomically, stale_temporaries

#: The finished folder's record: the settings and what was written.
MANIFEST = 'manifest.json'
#: The settings of a run in progress, present until the manifest is.
SETTINGS = 'writing.json'


@dataclass(frozen=True)
class ResumableFolder:
    """The rules of one kind of resumably written folder.

    Attributes:
        noun: What the folder is, for messages (``'SSL4EO-S12 cache'``).
        command: The command that writes it (``'torchgeo-decur coregister'``).
        rewrite_hint: How to write it anew, the end of every refusal.
        setting_keys: Settings that must agree for a rerun to resume.
        data_files: Glob patterns, relative to the folder, of the data files
            the writer creates (removed by ``overwrite``).
        temporaries: Glob patterns of the temporary data files an interrupted
            run leaves.
    """

    noun: str
    command: str
    rewrite_hint: str
    setting_keys: tuple[str, ...]
    data_files: tuple[str, ...]
    temporaries: tuple[str, ...]

    def read_json(self, path: str) -> dict[str, Any]:
        """A manifest or settings file as a dict.

        Args:
            path: The JSON file.

        Returns:
            Its content.

        Raises:
            ValueError: If it cannot be read or holds no JSON object (naming it).
        """
        try:
            with open(path) as f:
                content = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(
                f'{self.noun} file {path!r} cannot be read ({err}), so it is unknown '
                f'what the folder holds; {self.rewrite_hint}'
            ) from None
        if not isinstance(content, dict):
            raise ValueError(
                f'{self.noun} file {path!r} holds a {type(content).__name__}, not a '
                f'JSON object; {self.rewrite_hint}'
            )
        return content

    def read_manifest(self, root: str) -> dict[str, Any]:
        """The manifest of a finished folder (the caller checks its entries).

        Args:
            root: The folder.

        Returns:
            The manifest.

        Raises:
            ValueError: If ``root`` holds no manifest (an unfinished folder says
                to rerun the command) or an unreadable one, naming the file.
        """
        file = os.path.join(root, MANIFEST)
        if not os.path.isfile(file) and os.path.isfile(os.path.join(root, SETTINGS)):
            raise ValueError(
                f'{file!r} not found: the {self.noun} {root!r} is unfinished (its '
                f'writer was interrupted); rerun the same `{self.command}` command '
                'to finish it'
            )
        if not os.path.isfile(file):
            raise ValueError(
                f'{file!r} not found: {root!r} holds no {self.noun} (write one with '
                f'`{self.command}`)'
            )
        return self.read_json(file)

    def previous_settings(self, output: str) -> dict[str, Any] | None:
        """Settings of what an earlier run wrote into ``output``.

        Args:
            output: The folder.

        Returns:
            The recorded settings (``setting_keys``), or None if ``output`` holds
            nothing of this kind.

        Raises:
            ValueError: If ``output`` holds data files but no manifest or settings
                file saying where they came from, or one that cannot be read.
        """
        for name in (MANIFEST, SETTINGS):
            file = os.path.join(output, name)
            if os.path.isfile(file):
                content = self.read_json(file)
                return {k: content.get(k) for k in self.setting_keys}
        found = self._glob(output, self.data_files)
        if found:
            raise ValueError(
                f'{self.noun} {output!r} holds {len(found)} data file(s) (e.g. '
                f'{found[0]!r}) but no {MANIFEST} or {SETTINGS} saying where they '
                'came from; pass --overwrite (overwrite=True) to delete and rewrite '
                'them or choose another output folder'
            )
        return None

    def start(
        self,
        output: str,
        settings: Mapping[str, Any],
        overwrite: bool = False,
        check: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        """Refuse other settings, then make ``output`` ready for (resumed) writing.

        Afterwards ``output`` exists, holds the settings file and no manifest, no
        temporary files and (with ``overwrite``) none of an earlier run's files.

        Args:
            output: The folder (created).
            settings: This run's settings (JSON values; every ``setting_keys``).
            overwrite: Delete what an earlier run wrote, whatever its settings.
            check: Called with the earlier run's settings before they are
                compared, for refusals of the writer's own (e.g. changed sources).

        Raises:
            ValueError: Without ``overwrite``, if ``output`` holds a folder of
                other settings (naming each, with both values) or unaccounted
                data files.
            NotADirectoryError: If ``output`` is a file.
        """
        if os.path.exists(output) and not os.path.isdir(output):
            raise NotADirectoryError(f'{self.noun} output {output!r} is a file')
        previous = None if overwrite else self.previous_settings(output)
        if previous is not None:
            if check is not None:
                check(previous)
            differ = [k for k in self.setting_keys if previous.get(k) != settings[k]]
            if differ:
                described = ', '.join(
                    f'{k}={previous.get(k)!r} (now {settings[k]!r})' for k in differ
                )
                raise ValueError(
                    f'{self.noun} {output!r} was written with {described}; a '
                    f'{self.noun} never mixes settings: pass --overwrite '
                    '(overwrite=True) to delete it and write it anew, or choose '
                    'another output folder'
                )
        os.makedirs(output, exist_ok=True)
        records = [os.path.join(output, name) for name in (MANIFEST, SETTINGS)]
        stale = self._glob(output, self.temporaries)
        stale += [p for record in records for p in stale_temporaries(record)]
        if overwrite:
            stale += self._glob(output, self.data_files)
        for path in [*stale, *records]:  # the manifest is rewritten at the end
            if os.path.isfile(path):
                os.remove(path)
        self._write_json(os.path.join(output, SETTINGS), settings)

    def finish(self, output: str, manifest: Mapping[str, Any]) -> None:
        """Record a finished run: write the manifest, remove the settings file.

        Args:
            output: The folder.
            manifest: The settings and what was written.
        """
        self._write_json(os.path.join(output, MANIFEST), manifest)
        os.remove(os.path.join(output, SETTINGS))

    @staticmethod
    def _write_json(path: str, content: Mapping[str, Any]) -> None:
        """Write a JSON file atomically, replacing the file there."""
        text = json.dumps(content, indent=1)
        save_atomically({path: text.encode()}, overwrite=True)

    @staticmethod
    def _glob(output: str, patterns: tuple[str, ...]) -> list[str]:
        """Files under ``output`` matching any of ``patterns``, sorted."""
        folder = glob.escape(output)
        found = {p for pattern in patterns for p in glob.glob(f'{folder}/{pattern}')}
        return sorted(found)


__all__ = ('MANIFEST', 'SETTINGS', 'ResumableFolder')
