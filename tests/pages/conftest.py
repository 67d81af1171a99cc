"""The browser tests' ``server`` fixture (tests/pages/browser_support.py), found by name."""

from tests.pages.browser_support import server

__all__ = ["server"]
