import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import seed_page  # noqa: E402


@pytest.fixture(scope="session")
def seed():
    path = seed_page.seed_path()
    if path is None:
        pytest.skip("seed page not found (../shared/seed/runware-pixverse-provider.md or "
                    "PIXVERSE_SEED_PATH): the spec-vs-seed checks need it")
    return seed_page.parse(path)


@pytest.fixture(scope="session")
def spec():
    from nodes.spec import load_spec
    return load_spec()
