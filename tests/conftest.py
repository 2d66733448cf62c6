from __future__ import annotations

from pathlib import Path

import pytest

from infratech.plan import record
from infratech.stacks import find_project

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project():
    return find_project(ROOT)


@pytest.fixture(scope="session")
def default_plan(project):
    """The default stack recorded once for the whole session (the runtime is process-global)."""
    return record(project, "ovh-gra11")
