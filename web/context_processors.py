from bosun.lib.navigation import menu_for


def navigation(request):
    match = getattr(request, "resolver_match", None)
    return {"nav_menu": menu_for(request.user, match.view_name if match else None)}
