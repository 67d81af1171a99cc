"""The method contract through the integration API: a portal's app key enrols and
manages its user's methods and has StepUp send and check the codes of its own login."""

from __future__ import annotations

from tests.contract.contract import Contract
from tests.contract.surfaces import IntegrationSurface


class TestIntegrationApi(Contract):
    surface_kind = IntegrationSurface
