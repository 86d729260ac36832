"""Fixtures of the agent protocol tests: activations and registered agents."""

from __future__ import annotations

import pytest

from tests.fleet.protocol.agents import Agent, activation_make


@pytest.fixture
def activation(db):
    """A five-use activation and its code."""
    return activation_make(limit=5)


@pytest.fixture
def agent(activation) -> Agent:
    """A registered agent."""
    registering = Agent()
    response = registering.register(*activation)
    assert response.status_code == 201, response.content
    return registering
