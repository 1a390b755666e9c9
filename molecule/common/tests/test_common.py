"""Verify the common baseline on a real systemd container (podman backend), including the firewall as seen
from a peer container on the same test network."""
import os
import time

import pytest
import testinfra

RELEASE = os.environ.get("MOLECULE_DEBIAN", "12")
PEER = testinfra.get_host(f"podman://tm-common-peer-d{RELEASE}")


def test_systemd_is_pid1_and_healthy(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-legend").stdout


def test_debian_release(host):
    assert host.system_info.distribution == "debian"
    assert host.system_info.release.split(".")[0] == RELEASE


def test_timezone(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/Berlin"
    assert host.file("/etc/timezone").content_string == "Europe/Berlin\n"
    assert host.run("date +%Z").stdout.strip() in {"CET", "CEST"}


def test_timesyncd_configured_and_enabled(host):
    conf = host.file("/etc/systemd/timesyncd.conf.d/50-talentmesh.conf").content_string
    assert "NTP=0.debian.pool.ntp.org 1.debian.pool.ntp.org" in conf
    assert host.service("systemd-timesyncd").is_enabled
    # In a container timesyncd's ConditionVirtualization=!container keeps it stopped (the host keeps the clock).
    cond = host.run("systemctl show -p ConditionResult --value systemd-timesyncd").stdout.strip()
    assert cond in {"no", "yes"}


def test_locales(host):
    available = host.run("locale -a").stdout.lower()
    assert "en_us.utf8" in available and "de_de.utf8" in available
    assert "LANG=en_US.UTF-8" in host.file("/etc/default/locale").content_string


def test_journald_limits_applied(host):
    conf = host.file("/etc/systemd/journald.conf.d/50-talentmesh.conf")
    assert conf.mode == 0o644
    assert "SystemMaxUse=256M" in conf.content_string
    assert "RateLimitBurst=10000" in conf.content_string
    assert host.service("systemd-journald").is_running


@pytest.mark.parametrize("name,home", [("talentmesh", "/var/lib/talentmesh"), ("mailsvc", "/var/lib/mailsvc")])
def test_service_users_unprivileged(host, name, home):
    user = host.user(name)
    assert user.exists
    assert user.uid < 1000
    assert user.shell == "/usr/sbin/nologin"
    assert user.password.startswith(("!", "*")), "service users must have a locked password"
    assert host.file(home).mode == 0o750
    assert host.file(home).user == name


def test_nftables_loaded(host):
    assert host.service("nftables").is_enabled
    ruleset = host.check_output("nft list table inet talentmesh")
    assert "policy drop" in ruleset
    assert "probe-from-test-net" in ruleset
    assert "dport 22" not in ruleset  # common_firewall_ssh_sources: [] closes SSH
    assert host.file("/etc/nftables.conf").mode == 0o640


def _listen(host, port):
    host.run(f"systemd-run --unit=tm-probe-{port} --collect python3 -m http.server {port}")
    for _attempt in range(50):
        if host.socket(f"tcp://0.0.0.0:{port}").is_listening:
            return
        time.sleep(0.1)
    raise AssertionError(f"probe listener on {port} did not start")


def _connect(from_host, target, port):
    code = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(2)\n"
        f"sys.exit(s.connect_ex(('{target}', {port})))\n"
    )
    return from_host.run(f"python3 -c \"{code}\"").rc


def test_firewall_allows_only_declared_ports_from_peer(host):
    target = host.check_output("hostname -I").split()[0]
    _listen(host, 8080)
    _listen(host, 8081)
    try:
        assert _connect(PEER, target, 8080) == 0, "declared rule should admit the test network"
        assert _connect(PEER, target, 8081) != 0, "undeclared port must be dropped"
        assert _connect(host, "127.0.0.1", 8081) == 0, "loopback stays open"
    finally:
        host.run("systemctl stop tm-probe-8080 tm-probe-8081")


def test_test_network_reaches_only_host_and_containers(host):
    """The scenario network is internal: no route out; the host-side apt proxy forwards only to the Debian mirror."""
    direct = host.run("python3 -c \"import socket; socket.create_connection(('203.0.113.80', 80), timeout=3)\"")
    assert direct.rc != 0 and "unreachable" in direct.stderr.lower()
    refused = host.run(
        "curl -s -o /dev/null -w '%{http_code}' -x http://host.containers.internal:3142 http://example.org/"
    )
    assert refused.stdout == "403"
    peer_ip = PEER.check_output("hostname -I").split()[0]
    assert peer_ip.startswith("10.231.")
