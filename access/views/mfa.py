"""The second-factor step at sign-in and MFA enrolment."""

from __future__ import annotations

import base64

import segno
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice

from access import mfa


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return "/"


@login_required
@require_http_methods(["GET", "POST"])
def mfa_verify(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        error = mfa.sign_in_verify(request=request, token=request.POST.get("token", "")) or ""
        if not error:
            return redirect(_next_url(request))
    return render(
        request,
        "access/mfa_verify.html",
        {"error": error, "next": _next_url(request)},
        status=400 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def mfa_setup(request: HttpRequest) -> HttpResponse:
    user = request.user
    error = ""
    device: TOTPDevice | None = None
    action = request.POST.get("action")
    if action == "start":
        device = mfa.enrolment_begin(user=user)
    elif action == "confirm":
        device_id = request.POST.get("device", "")
        error = (
            mfa.enrolment_confirm(
                request=request, device_id=int(device_id), token=request.POST.get("token", "")
            )
            if device_id.isdigit()
            else mfa.BAD_CODE
        ) or ""
        if not error:
            return redirect(_next_url(request) if request.POST.get("next") else "mfa-setup")
        device = TOTPDevice.objects.filter(pk=device_id or 0, user=user, confirmed=False).first()
    elif action == "disable" and not mfa.mfa_required_for(user):
        mfa.mfa_disable(request=request, user=user)
        return redirect("mfa-setup")
    return render(
        request,
        "access/mfa_setup.html",
        {
            "enabled": mfa.confirmed_device(user) is not None,
            "required": mfa.mfa_required_for(user),
            "device": device,
            "qr_svg": _qr_svg(device) if device else "",
            "secret": base64.b32encode(device.bin_key).decode() if device else "",
            "error": error,
            "next": request.GET.get("next") or request.POST.get("next", ""),
        },
        status=400 if error else 200,
    )


def _qr_svg(device: TOTPDevice) -> str:
    return segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#212529")
