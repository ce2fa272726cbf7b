"""Shared pytest options: `--update-golden` rewrites golden files instead of comparing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

# Properties are judged on what they find, never on how fast one example ran: a per-example
# deadline only makes them flaky on a busy machine.
settings.register_profile("kubezt", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kubezt")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files (tests/golden/, checked-in schemas) from the current output",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
