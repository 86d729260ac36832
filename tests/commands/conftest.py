"""Fixtures of the Run Command tests: registered protocol-level agents (real signatures)."""

from __future__ import annotations

import pytest

from tests.fleet.protocol.agents import Agent, activation_make


@pytest.fixture
def activation(db):
    return activation_make(limit=50)


@pytest.fixture
def agent(activation) -> Agent:
    registering = Agent()
    response = registering.register(*activation)
    assert response.status_code == 201, response.content
    return registering
