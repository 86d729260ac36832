from django.contrib.auth.models import AnonymousUser

from bosun.lib import navigation


def test_the_menu_lists_only_entries_the_user_may_see_in_console_order(admin_user, monkeypatch):
    monkeypatch.setattr(navigation, "_items", {})
    navigation.register(
        navigation.NavItem("Access", "Users", "home", "people", visible=lambda u: u.is_superuser),
        navigation.NavItem("Node management", "Fleet", "healthz", "hdd-network"),
    )
    sections = [section for section, _ in navigation.menu_for(admin_user, "healthz")]
    assert sections == ["Node management", "Access"]
    ((_, fleet),) = [
        entry
        for entry in navigation.menu_for(admin_user, "healthz")
        if entry[0] == "Node management"
    ]
    assert fleet[0].active


def test_signed_out_visitors_get_no_menu():
    assert navigation.menu_for(AnonymousUser(), None) == []


def test_an_unknown_section_is_a_programming_error():
    try:
        navigation.NavItem("Misc", "X", "home", "x")
    except ValueError as error:
        assert "Misc" in str(error)
    else:
        raise AssertionError("NavItem accepted an unknown section")
