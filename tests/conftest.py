import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'tests', 'data')
SHARED = os.path.abspath(os.path.join(ROOT, '..', 'shared', 'realdata'))


@pytest.fixture
def shared_realdata() -> str:
    """Path of the real sample data beside the checkout; skips when absent."""
    if not os.path.isdir(SHARED):
        pytest.skip(
            f'real sample data not found at {SHARED} (only in the dev/CI setup)'
        )
    return SHARED
