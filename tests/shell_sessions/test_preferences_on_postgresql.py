"""Preferences and run-as rules on PostgreSQL: the migration's constraints hold there (a rule
for both a user and a group, or for neither, is refused by the database itself; idle timeout
bounds), and the group rule picked among several is the same as on SQLite, whatever the
database's collation would sort first; a rule is removed under a lock PostgreSQL can take."""

from __future__ import annotations

import textwrap

import pytest

from tests.support.cluster import shell_on_postgresql

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(
    """
    import json
    from django.contrib.auth.models import Group, User
    from django.db import IntegrityError, transaction
    from access.authorization import Principal
    from sessions.models import RunAsRule, SessionPreferences
    from sessions.services.preferences import run_as_for, run_as_rule_delete, run_as_rule_put

    admin = Principal(user=User.objects.create(username="ada", is_superuser=True))
    bob = User.objects.create(username="bob")
    for name, run_as in (("Web", "www-data"), ("apps", "app"), ("DBAs", "postgres")):
        group = Group.objects.create(name=name)
        group.user_set.add(bob)
        run_as_rule_put(principal=admin, group=group, run_as=run_as)
    refused = []
    for fields in ({"user": bob, "group": Group.objects.get(name="Web")}, {}):
        try:
            with transaction.atomic():
                RunAsRule.objects.create(run_as="x", **fields)
        except IntegrityError:
            refused.append(True)
    try:
        with transaction.atomic():
            SessionPreferences.objects.create(pk=1, idle_timeout_minutes=61)
    except IntegrityError:
        refused.append(True)
    first = run_as_for(bob)
    apps = RunAsRule.objects.get(group__name="apps")
    run_as_rule_delete(principal=admin, rule_id=apps.pk)
    result = {"run_as": first, "then": run_as_for(bob), "refused": len(refused)}
    print(json.dumps(result))
    """
)


def test_rules_and_preferences_behave_on_postgresql_as_on_sqlite(tmp_path):
    result = shell_on_postgresql(SCRIPT, tmp_path)
    assert result == {"run_as": "app", "then": "postgres", "refused": 3}
