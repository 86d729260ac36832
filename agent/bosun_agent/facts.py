"""Host facts (PROTOCOL.md "Host facts") and the machine fingerprint, in pure Python."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import platform
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from bosun_agent import __version__

FINGERPRINT_ENV = "BOSUN_AGENT_FINGERPRINT"
MACHINE_ID_PATHS = ("/etc/machine-id", "/var/lib/dbus/machine-id")
PRODUCT_UUID_PATH = "/sys/class/dmi/id/product_uuid"
OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")

MAX_FACT_CHARS = 256
MAX_ADDRESSES = 64

# Documentation addresses (RFC 5737, RFC 3849): connecting a UDP socket to them sends nothing
# but tells which local address the default route would use.
_ROUTE_PROBES = ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1"))


class FingerprintError(Exception):
    """The fingerprint cannot be made the way this node registered it."""


def collect_facts(*, server_host: str | None = None) -> dict[str, Any]:
    """What the agent reports about its host; `server_host` picks the primary address."""
    release = os_release()
    uname = platform.uname()
    facts = {
        "hostname": socket.gethostname(),
        "platform_type": "Linux" if uname.system == "Linux" else uname.system,
        "platform_name": release.get("NAME", uname.system),
        "platform_version": release.get("VERSION_ID", ""),
        "kernel_version": uname.release,
        "architecture": uname.machine,
        "agent_version": __version__,
        "python_version": platform.python_version(),
    }
    clipped: dict[str, Any] = {key: str(value)[:MAX_FACT_CHARS] for key, value in facts.items()}
    clipped["ip_addresses"] = ip_addresses(server_host=server_host)
    return clipped


def facts_digest(facts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode("utf-8")).hexdigest()


def os_release(paths: Sequence[str] = OS_RELEASE_PATHS) -> dict[str, str]:
    """/etc/os-release as a dict (platform.freedesktop_os_release is Python 3.10+)."""
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                return parse_os_release(handle.read())
        except OSError:
            continue
    return {}


def parse_os_release(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        values[key.strip()] = value
    return values


# IP addresses.


def ip_addresses(*, server_host: str | None = None) -> list[str]:
    """Global addresses with the primary (the one that reaches the server) first, link-local
    ones last, loopback never."""
    found = _addresses_from_ip_command()
    if found is None:
        found = _addresses_from_sockets()
    primary = primary_address(server_host)
    return order_addresses(found, primary=primary)[:MAX_ADDRESSES]


def order_addresses(addresses: Iterable[str], *, primary: str | None = None) -> list[str]:
    unique: dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}
    for text in [*([primary] if primary else []), *addresses]:
        try:
            address = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            continue
        if address.is_loopback or address.is_unspecified or address.is_multicast:
            continue
        unique.setdefault(str(address), address)

    def rank(item: tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]) -> tuple[int, int]:
        text, address = item
        if text == primary:
            return (0, 0)
        return (2 if address.is_link_local else 1, address.version)

    # sorted() is stable, so the kernel's own order is kept within each rank.
    return [text for text, _ in sorted(unique.items(), key=rank)]


def primary_address(server_host: str | None = None) -> str | None:
    """The local address the kernel would use to reach the server (or the default route)."""
    targets: list[tuple[int, str]] = []
    if server_host:
        targets.append((socket.AF_UNSPEC, server_host))
    targets.extend(_ROUTE_PROBES)
    for family, host in targets:
        try:
            infos = socket.getaddrinfo(host, 9, family, socket.SOCK_DGRAM)
        except OSError:
            continue
        for info_family, kind, proto, _, address in infos:
            try:
                with socket.socket(info_family, kind, proto) as probe:
                    probe.connect(address)  # UDP: no packet leaves the host
                    local = str(probe.getsockname()[0])
            except OSError:
                continue
            if not ipaddress.ip_address(local.split("%")[0]).is_loopback:
                return local
    return None


def _addresses_from_ip_command() -> list[str] | None:
    ip = shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.path.exists(p)), None
    )
    if ip is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - a fixed argv, no shell
            [ip, "-j", "addr"], capture_output=True, timeout=5, check=False
        )
        interfaces = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return parse_ip_json(interfaces) if isinstance(interfaces, list) else None


def parse_ip_json(interfaces: list[Any]) -> list[str]:
    """The addresses of `ip -j addr`, in its order."""
    found = []
    for interface in interfaces:
        if not isinstance(interface, dict):
            continue
        for info in interface.get("addr_info") or ():
            if isinstance(info, dict) and isinstance(info.get("local"), str):
                found.append(info["local"])
    return found


def _addresses_from_sockets() -> list[str]:
    """Without `ip`: the host name's addresses and the kernel's IPv6 list."""
    found: list[str] = []
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.append(str(info[4][0]))
    except OSError:
        pass
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as handle:
            for line in handle:
                hex_address = line.split()[0] if line.strip() else ""
                if len(hex_address) == 32:
                    found.append(str(ipaddress.IPv6Address(bytes.fromhex(hex_address))))
    except (OSError, ValueError):
        pass
    return found


# Fingerprint.


def _read_first_line(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            value = handle.readline().strip()
    except OSError:
        return None
    return value or None


def _machine_id() -> str | None:
    for path in MACHINE_ID_PATHS:
        value = _read_first_line(path)
        if value:
            return value
    return None


def _stable_mac() -> str | None:
    node = uuid.getnode()
    # uuid.getnode() falls back to a random number with the multicast bit set: not stable.
    if node >> 40 & 1:
        return None
    return f"{node:012x}"


_SOURCES = {
    "machine-id": _machine_id,
    "product_uuid": lambda: _read_first_line(PRODUCT_UUID_PATH),
    "hostname": socket.gethostname,
    "mac": _stable_mac,
}


def machine_fingerprint(sources: Sequence[str] = ()) -> tuple[str, tuple[str, ...]]:
    """SHA-256 hex of the machine's identity, and the sources it was made from.

    With no `sources`, the best available are used: machine-id plus the DMI product UUID
    when readable, else host name plus MAC address. With `sources` (recorded at
    registration), exactly those are used. $BOSUN_AGENT_FINGERPRINT overrides everything.
    """
    override = os.environ.get(FINGERPRINT_ENV)
    if override:
        return hashlib.sha256(override.encode("utf-8")).hexdigest(), ("env",)
    chosen = tuple(sources) if sources and "env" not in sources else _available_sources()
    parts = []
    for name in chosen:
        read = _SOURCES.get(name)
        value = read() if read else None
        if not value:
            hint = " (readable by root only)" if name == "product_uuid" else ""
            raise FingerprintError(
                f"this node's fingerprint was made from {name}{hint}, which cannot be read "
                "now; run the agent as the user that registered it, usually root"
            )
        parts.append(f"{name}={value}")
    digest = hashlib.sha256(("bosun-fingerprint-v1\n" + "\n".join(parts)).encode("utf-8"))
    return digest.hexdigest(), chosen


def _available_sources() -> tuple[str, ...]:
    if _machine_id():
        if _read_first_line(PRODUCT_UUID_PATH):
            return ("machine-id", "product_uuid")
        return ("machine-id",)
    if _stable_mac():
        return ("hostname", "mac")
    return ("hostname",)
