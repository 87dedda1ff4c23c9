"""User-facing text stands alone: no pointers to documents users do not have."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Internal notes of the developers (the fact sheet, the design contracts and the
#: folder beside a development checkout that holds them); users never get them.
INTERNAL = re.compile(r'\bFACTS\b|\bDESIGN(?:\.md)?\b|\.\./shared')


def user_facing_files() -> list[Path]:
    files = [ROOT / 'README.md']
    for folder, pattern in (
        ('torchgeo_decur', '*.py'),
        ('conf', '*.yaml'),
        ('docs', '*.md'),
        ('docs', '*.py'),
    ):
        files += sorted(
            p for p in (ROOT / folder).rglob(pattern) if '_build' not in p.parts
        )
    return files


def test_user_facing_files_found() -> None:
    files = user_facing_files()
    assert ROOT / 'README.md' in files
    assert ROOT / 'docs' / 'user_guide' / 'reproducing.md' in files
    assert any(p.suffix == '.yaml' for p in files)


@pytest.mark.parametrize(
    'path', user_facing_files(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_internal_references(path: Path) -> None:
    hits = [
        f'{path.relative_to(ROOT)}:{number}: {line.strip()}'
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if INTERNAL.search(line)
    ]
    assert not hits, 'cites internal notes users do not have:\n' + '\n'.join(hits)


def test_readme_is_a_landing_page() -> None:
    readme = (ROOT / 'README.md').read_text()
    assert len(readme.encode()) < 10_000
    # The two set-up commands come first.
    first_block = readme.split('```bash\n', 1)[1].split('```', 1)[0]
    assert [line.split()[:2] for line in first_block.splitlines()] == [
        ['make', 'quickstart'],
        ['make', 'test'],
    ]
    # Every documentation page the README links to exists.
    for link in re.findall(r'\]\((docs/[^)#]+)', readme):
        assert (ROOT / link).is_file(), link
