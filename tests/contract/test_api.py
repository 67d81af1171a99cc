"""The method contract through the user API: ``/api/v1/me/methods`` and ``/api/v1/login``
with the user's session token."""

from __future__ import annotations

from tests.contract.contract import Contract
from tests.contract.surfaces import ApiSurface


class TestUserApi(Contract):
    surface_kind = ApiSurface
