import pytest
from django.contrib.auth.models import AnonymousUser

from audit.models import AuditEvent
from audit.selectors import EventFilter, events_filter, events_visible_to

pytestmark = pytest.mark.django_db


def test_a_superuser_sees_every_event_and_anyone_else_only_their_own(
    trail, admin_user, operator_user
):
    trail(2, principal="ada", user_id=admin_user.pk)
    trail(1, principal="otto", user_id=operator_user.pk)
    trail(1, principal="system")
    assert events_visible_to(admin_user).count() == 4
    assert [e.principal for e in events_visible_to(operator_user)] == ["otto"]
    assert not events_visible_to(AnonymousUser()).exists()


def test_an_action_filter_is_exact_unless_it_ends_in_a_star(trail):
    trail(1, action="ssm:GetParameter")
    trail(1, action="ssm:GetParameters")
    trail(1, action="bosun:SignIn")
    events = AuditEvent.objects.all()
    assert events_filter(events, EventFilter(action="ssm:GetParameter")).count() == 1
    assert events_filter(events, EventFilter(action="ssm:GetParameter*")).count() == 2
    assert events_filter(events, EventFilter(action="ssm:*")).count() == 2
    assert events_filter(events, EventFilter()).count() == 3
