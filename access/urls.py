from django.urls import path

from access import views

urlpatterns = [
    path("login/mfa/", views.mfa_verify, name="mfa-verify"),
    path("account/mfa/", views.mfa_setup, name="mfa-setup"),
]
