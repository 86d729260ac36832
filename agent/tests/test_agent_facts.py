from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from bosun_agent import facts
from bosun_agent.facts import (
    FingerprintError,
    collect_facts,
    machine_fingerprint,
    order_addresses,
    parse_ip_json,
    parse_os_release,
)


def test_host_facts_have_the_shape_the_protocol_describes() -> None:
    host = collect_facts(server_host="127.0.0.1")
    assert set(host) == {
        "hostname",
        "platform_type",
        "platform_name",
        "platform_version",
        "kernel_version",
        "architecture",
        "ip_addresses",
        "agent_version",
        "python_version",
    }
    assert host["platform_type"] == "Linux"
    assert all(isinstance(v, str) and len(v) <= 256 for k, v in host.items() if k != "ip_addresses")
    assert isinstance(host["ip_addresses"], list) and len(host["ip_addresses"]) <= 64
    for address in host["ip_addresses"]:
        assert not ipaddress.ip_address(address).is_loopback


def test_os_release_values_are_unquoted() -> None:
    text = 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n# comment\nID=debian\nPRETTY=\'x\'\n'
    assert parse_os_release(text) == {
        "NAME": "Debian GNU/Linux",
        "VERSION_ID": "12",
        "ID": "debian",
        "PRETTY": "x",
    }


def test_addresses_put_the_primary_first_link_local_last_and_leave_loopback_out() -> None:
    ip_json = [
        {"ifname": "lo", "addr_info": [{"local": "127.0.0.1"}, {"local": "::1"}]},
        {
            "ifname": "eth0",
            "addr_info": [
                {"local": "fe80::fc:ff:fe00:1"},
                {"local": "fd00::2"},
                {"local": "192.0.2.2"},
            ],
        },
        {"ifname": "eth1", "addr_info": [{"local": "10.0.0.5"}]},
    ]
    found = parse_ip_json(ip_json)
    assert order_addresses(found, primary="10.0.0.5") == [
        "10.0.0.5",
        "192.0.2.2",
        "fd00::2",
        "fe80::fc:ff:fe00:1",
    ]


def test_the_fingerprint_override_stands_in_for_another_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(facts.FINGERPRINT_ENV, "machine-a")
    first, sources = machine_fingerprint()
    assert sources == ("env",)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    monkeypatch.setenv(facts.FINGERPRINT_ENV, "machine-b")
    assert machine_fingerprint()[0] != first


def test_the_fingerprint_is_stable_and_made_from_the_machine_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(facts.FINGERPRINT_ENV)
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setattr(facts, "MACHINE_ID_PATHS", (str(machine_id),))
    monkeypatch.setattr(facts, "PRODUCT_UUID_PATH", str(tmp_path / "absent"))
    fingerprint, sources = machine_fingerprint()
    assert sources == ("machine-id",)
    assert machine_fingerprint(sources) == (fingerprint, sources)
    machine_id.write_text("fedcba9876543210fedcba9876543210\n")  # a cloned disk, re-IDed
    assert machine_fingerprint(sources)[0] != fingerprint


def test_a_fingerprint_source_that_cannot_be_read_now_is_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(facts.FINGERPRINT_ENV)
    monkeypatch.setattr(facts, "PRODUCT_UUID_PATH", str(tmp_path / "unreadable"))
    with pytest.raises(FingerprintError, match=r"product_uuid .*readable by root only"):
        machine_fingerprint(("machine-id", "product_uuid"))


def test_without_a_machine_id_the_fingerprint_falls_back_to_host_name_and_mac(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(facts.FINGERPRINT_ENV)
    monkeypatch.setattr(facts, "MACHINE_ID_PATHS", ("/nonexistent/machine-id",))
    monkeypatch.setattr(facts.uuid, "getnode", lambda: 0x0242AC110002)
    _, sources = machine_fingerprint()
    assert sources == ("hostname", "mac")
