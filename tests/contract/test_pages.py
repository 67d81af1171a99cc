"""The method contract through the portal's pages: forms posted with their CSRF token,
logins in a second browser."""

from __future__ import annotations

from tests.contract.contract import Contract
from tests.contract.surfaces import PageSurface


class TestPages(Contract):
    surface_kind = PageSurface
