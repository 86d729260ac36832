"""The node list's cost does not grow with the number of nodes (DESIGN.md §4: query counts)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import ManagedNodeFactory, NodeTagFactory

pytestmark = pytest.mark.django_db


def add_nodes(count: int) -> None:
    for node in ManagedNodeFactory.create_batch(count, tags={"Env": "dev"}):
        NodeTagFactory(node=node, key="Role", value="web")


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("persona", ["admin_client", "operator_client"])
def test_the_node_list_costs_as_many_queries_for_100_nodes_as_for_10(
    persona, request, django_assert_max_num_queries
):
    client = request.getfixturevalue(persona)
    url = reverse("fleet:nodes")
    add_nodes(10)
    with_ten = queries_for(client, url)
    add_nodes(90)
    with django_assert_max_num_queries(with_ten):
        assert client.get(url).status_code == 200


def test_the_live_row_and_counts_cost_a_fixed_number_of_queries(admin_client):
    add_nodes(5)
    node = ManagedNodeFactory(tags={"Env": "dev"})
    row, counts = reverse("fleet:node-row", args=[node.pk]), reverse("fleet:node-counts")
    before = queries_for(admin_client, row), queries_for(admin_client, counts)
    add_nodes(50)
    assert (queries_for(admin_client, row), queries_for(admin_client, counts)) == before
