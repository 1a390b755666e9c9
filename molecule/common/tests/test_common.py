"""Verify the common baseline on a real systemd container (podman backend), including the firewall as seen
from a peer container on the same test network."""
import json
import os
import sys
import time

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from hostcheck import exposure  # noqa: E402  pylint: disable=wrong-import-position

RELEASE = os.environ.get("MOLECULE_DEBIAN", "12")
PEER = testinfra.get_host(f"podman://tm-common-peer-d{RELEASE}")
# Every unit the role configures, and the project's ceiling for `systemd-analyze security` (issue 10).
UNITS = ["nftables.service", "systemd-journald.service", "systemd-timesyncd.service"]
MAX_EXPOSURE = 2.0
# The package's set without cap_sys_admin, cap_chown, cap_mac_override and the audit capabilities.
JOURNALD_CAPS = {"cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_setuid", "cap_setgid",
                 "cap_sys_ptrace", "cap_syslog"}


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


@pytest.mark.parametrize("unit", UNITS)
def test_unit_hardened(host, unit):
    """The shared profile as a drop-in of each unit the role configures; systemd loads and accepts it."""
    assert host.file(f"/etc/systemd/system/{unit}.d/10-talentmesh-hardening.conf").exists
    assert host.check_output(f"systemctl show -p LoadState --value {unit}") == "loaded"
    verify = host.run(f"systemd-analyze verify --man=no {unit}")
    assert verify.rc == 0, verify.stderr
    score, out = exposure(host, unit)
    assert score <= MAX_EXPOSURE, out


def test_nftables_hardened_loads_ruleset_and_dropins(host):
    """A boot-style start (ExecStop flushes, ExecStart loads /etc/nftables.conf) in the sandbox: the talentmesh table
    and a drop-in of /etc/nftables.d are loaded again."""
    dropin = "/etc/nftables.d/zz-verify.nft"
    host.run(f"printf '%s\\n' 'tcp dport 8099 accept comment \"verify-dropin\"' > {dropin}")
    try:
        restart = host.run("systemctl restart nftables")
        assert restart.rc == 0, host.run("journalctl -u nftables -n 20 --no-pager").stdout
        assert host.service("nftables").is_running  # oneshot with RemainAfterExit: active (exited)
        ruleset = host.check_output("nft list ruleset")
        assert "table inet talentmesh" in ruleset and "probe-from-test-net" in ruleset
        assert 'comment "verify-dropin"' in ruleset
        assert host.check_output("systemctl show -p CapabilityBoundingSet --value nftables") == "cap_net_admin"
    finally:
        host.run(f"rm -f {dropin}")
        host.run("systemctl reload nftables")
    assert "verify-dropin" not in host.check_output("nft list ruleset")


def _entry(host, field, value, directory=None):
    where = f"-D {directory}" if directory else ""
    out = host.check_output(f"journalctl {where} -o json --no-pager {field}={value}")
    assert out, f"no journal entry with {field}={value} in {directory or 'the journal'}"
    return json.loads(out.splitlines()[-1])


def test_journald_hardened_records_trusted_fields_persistently(host):
    """After a restart in the sandbox journald still stores messages with their trusted fields in /var/log/journal,
    over stdout, syslog (/dev/log) and native transports, and the journal files verify."""
    assert host.run("systemctl restart systemd-journald").rc == 0
    assert host.service("systemd-journald").is_running
    # The configured set (the container's own bounding set lacks some of them: CapBnd in /proc is smaller).
    caps = set(host.check_output("systemctl show -p CapabilityBoundingSet --value systemd-journald").split())
    assert caps == JOURNALD_CAPS, caps
    marker = f"tm-verify-{time.time_ns()}"
    unit = f"{marker}.service"
    # The process stays alive for a moment, so journald reads its /proc entries (not the stream's cached context).
    run = host.run(f"systemd-run --quiet --wait --unit={unit} /bin/sh -c 'echo {marker}-stdout; sleep 2'")
    assert run.rc == 0, run.stderr
    host.check_output(f"runuser -u nobody -- logger -t tm-verify {marker}-syslog")
    host.check_output(f"echo {marker}-native | systemd-cat -t tm-verify-native")
    host.check_output("journalctl --sync")
    persistent = "/var/log/journal/" + host.file("/etc/machine-id").content_string.strip()
    stdout = _entry(host, "MESSAGE", f"{marker}-stdout", persistent)
    assert stdout["_SYSTEMD_UNIT"] == unit and stdout["_COMM"] == "sh", stdout
    assert stdout["_TRANSPORT"] == "stdout" and stdout.get("_SYSTEMD_INVOCATION_ID"), stdout
    assert stdout["_BOOT_ID"] == host.check_output("cat /proc/sys/kernel/random/boot_id").replace("-", "")
    assert stdout["_HOSTNAME"] == host.check_output("hostname")
    syslog = _entry(host, "MESSAGE", f"{marker}-syslog", persistent)
    assert syslog["_TRANSPORT"] == "syslog" and syslog["_UID"] == "65534", syslog
    assert syslog["SYSLOG_IDENTIFIER"] == "tm-verify", syslog
    native = _entry(host, "SYSLOG_IDENTIFIER", "tm-verify-native", persistent)
    assert native["MESSAGE"] == f"{marker}-native", native
    verify = host.run("journalctl --verify")
    assert verify.rc == 0, verify.stderr


def test_timesyncd_hardened_unit_loads(host):
    """timesyncd is skipped in a container by its own ConditionVirtualization=!container; its unit with the drop-in
    loads (test_unit_hardened runs systemd-analyze verify) and keeps what setting the clock needs."""
    show = host.check_output("systemctl show -p CapabilityBoundingSet -p ProtectClock -p User systemd-timesyncd")
    assert "CapabilityBoundingSet=cap_sys_time" in show and "ProtectClock=no" in show, show
    assert "User=systemd-timesync" in show, show
