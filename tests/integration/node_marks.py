"""Markers for the ``node`` fixture (tests/conftest.py)."""

import pytest

#: Rate limits off, for a module whose tests send faster than a person would (the limiter
#: has its own tests).
NO_RATE_LIMITS = pytest.mark.node_settings(ratelimit={"enabled": False})
