from django.urls import include, path

from access.views import groups, keys, mfa, policies, simulator, users

pages = [
    path("users/", users.user_list, name="users"),
    path("users/new/", users.user_create, name="user-create"),
    path("users/<int:pk>/", users.user_detail, name="user"),
    path("users/<int:pk>/groups/", users.user_groups, name="user-groups"),
    path("users/<int:pk>/policies/", users.user_policy_attach, name="user-policy-attach"),
    path(
        "users/<int:pk>/policies/<int:policy_pk>/detach/",
        users.user_policy_detach,
        name="user-policy-detach",
    ),
    path("users/<int:pk>/active/", users.user_active, name="user-active"),
    path("users/<int:pk>/mfa/reset/", users.user_mfa_reset, name="user-mfa-reset"),
    path("users/<int:pk>/keys/", keys.key_create, name="key-create"),
    path("users/<int:pk>/keys/<int:key_pk>/status/", keys.key_status, name="key-status"),
    path("users/<int:pk>/keys/<int:key_pk>/delete/", keys.key_delete, name="key-delete"),
    path("groups/", groups.group_list, name="groups"),
    path("groups/<int:pk>/", groups.group_detail, name="group"),
    path("groups/<int:pk>/delete/", groups.group_delete, name="group-delete"),
    path("groups/<int:pk>/members/", groups.group_member, name="group-member"),
    path("groups/<int:pk>/policies/", groups.group_policy, name="group-policy"),
    path("groups/<int:pk>/mfa/", groups.group_mfa, name="group-mfa"),
    path("mfa/everyone/", groups.mfa_everyone, name="mfa-everyone"),
    path("policies/", policies.policy_list, name="policies"),
    path("policies/new/", policies.policy_create, name="policy-create"),
    path("policies/<int:pk>/", policies.policy_detail, name="policy"),
    path("policies/<int:pk>/edit/", policies.policy_edit, name="policy-edit"),
    path("policies/<int:pk>/delete/", policies.policy_delete, name="policy-delete"),
    path("simulator/", simulator.simulator, name="simulator"),
]

urlpatterns = [
    path("login/mfa/", mfa.mfa_verify, name="mfa-verify"),
    path("account/mfa/", mfa.mfa_setup, name="mfa-setup"),
    path("access/", include((pages, "access"))),
]
