"""The contract suite covers the registry: a method registered without a prover fails
here, with what to add."""

from __future__ import annotations

from tests.contract.drivers import PROVERS, missing_provers, prover_for, registered


def test_every_registered_method_has_a_prover() -> None:
    for method_type in missing_provers():
        prover_for(method_type)  # fails, saying what to add


def test_every_prover_serves_a_registered_method() -> None:
    assert set(PROVERS) <= set(registered()), set(PROVERS) - set(registered())
