"""Every reader x every fault: a defined outcome, never a bare error or silence.

One test per cell of the catalogue (:mod:`.catalogue`); each writes its outcome
into ``catalogue.md`` of the session's temporary folder and prints it, so a run
with ``-s`` shows the table row by row. A hang fails the cell's timeout.
"""

from pathlib import Path

import pytest

from .catalogue import BAD, READERS, outcome
from .library import FAULTS

#: Cells whose outcome is not yet acceptable, with the reason (strict: a cell
#: that starts passing must be taken off this list).
KNOWN: dict[tuple[str, str], str] = {}


@pytest.mark.timeout(120)
@pytest.mark.parametrize('fault', list(FAULTS))
@pytest.mark.parametrize('reader', list(READERS))
def test_cell(
    reader: str, fault: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    result = outcome(READERS[reader], fault, tmp_path)
    table = tmp_path_factory.getbasetemp() / 'catalogue.md'
    with open(table, 'a') as f:
        f.write(f'| {reader} | {fault} | {result} |\n')
    print(f'{reader} x {fault}: {result}')
    bad = any(b in result for b in BAD)
    if (reader, fault) in KNOWN:
        assert bad, f'{reader} x {fault} now gives {result!r}: take it off KNOWN'
        pytest.xfail(f'{KNOWN[reader, fault]} ({result})')
    assert not bad, result
