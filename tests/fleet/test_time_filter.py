from datetime import timedelta

from django.utils import timezone

from fleet.templatetags.fleet_time import ago


def test_a_moment_within_the_last_minute_reads_just_now_and_older_ones_read_as_time_ago():
    now = timezone.now()
    assert ago(now - timedelta(seconds=20)) == "just now"
    assert ago(now - timedelta(minutes=5)) == "5\xa0minutes ago"
    assert ago(None) == "never"
