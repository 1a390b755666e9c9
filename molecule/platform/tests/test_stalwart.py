"""The Stalwart cluster of the converged platform, checked with REAL clients (urllib over verified TLS, openssl
s_client, ansible-playbook running site.yml). The server is the STAND-IN artifact (the project's emulator of
Stalwart v0.16's management surface, packaged as the release tarball), not Stalwart: the management API, health,
listener greetings over TLS, the shared PostgreSQL state, unit, hardening, files and firewall are real; mail
delivery is not.

verify.yml runs this after lab-verify and writes what the inventory says (hosts, names, the contract's endpoints:
never a secret) to platform-facts.json in Molecule's ephemeral directory; the secrets the checks compare against
are read from the lab's root-only files.
"""
import ipaddress
import json
import os
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import testinfra

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
with open(os.path.join(EPHEMERAL, "platform-facts.json"), encoding="utf-8") as _handle:
    FACTS = json.load(_handle)
TOP = FACTS["top"]
NODES = FACTS["nodes"]
HOSTS = {name: testinfra.get_host("podman://" + name) for name in NODES}
ADDRESSES = FACTS["addresses"]
CONTEXT = ssl.create_default_context(cafile=FACTS["ca"])
MGMT = 8080
BIN = os.path.dirname(sys.executable)


def secret(name):
    with open(os.path.join(FACTS["secrets_dir"], name), encoding="utf-8") as handle:
        return handle.read().split()[0]


def jmap(node, calls):
    body = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"], "methodCalls": calls}).encode()
    with open(FACTS["api_key_file"], encoding="utf-8") as handle:
        key = handle.read().strip()
    req = urllib.request.Request("https://%s:%d/jmap" % (ADDRESSES[node], MGMT), data=body, method="POST",
                                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=CONTEXT, timeout=10) as resp:
        return [r[1] for r in json.loads(resp.read())["methodResponses"]]


def get_all(node, obj_type):
    return jmap(node, [["x:%s/get" % obj_type, {"ids": None}, "g"]])[0]["list"]


def singleton(node, obj_type):
    return jmap(node, [["x:%s/get" % obj_type, {"ids": ["singleton"]}, "s"]])[0]["list"][0]


def ready(node, timeout=2):
    try:
        with urllib.request.urlopen("https://%s:%d/healthz/ready" % (ADDRESSES[node], MGMT), context=CONTEXT,
                                    timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def main_pid(node):
    return HOSTS[node].check_output("systemctl show -p MainPID --value stalwart")


def site(*extra):
    """site.yml against the converged platform with Molecule's inventory and configuration, as a user runs it."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(EPHEMERAL, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", TALENTMESH_TOP=TOP)
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", os.environ["MOLECULE_INVENTORY_FILE"]] + FACTS["extra_args"] \
        + list(extra) + [os.path.join(TOP, "site.yml")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("node", NODES)
def test_service_active_ready_and_installed_like_the_installer(node):
    host = HOSTS[node]
    svc = host.service("stalwart")
    assert svc.is_running and svc.is_enabled
    assert ready(node)
    show = host.check_output("systemctl show stalwart -p User -p KillSignal -p LimitNOFILE -p AmbientCapabilities "
                             "-p CapabilityBoundingSet -p Conflicts -p ExecStart")
    assert "User=stalwart" in show and "KillSignal=2" in show and "LimitNOFILE=65536" in show
    assert "AmbientCapabilities=cap_net_bind_service" in show and "CapabilityBoundingSet=cap_net_bind_service" in show
    for unit in ("postfix.service", "sendmail.service", "exim4.service"):
        assert unit in show
    assert "/usr/local/bin/stalwart" in show and "--config=/etc/stalwart/config.json" in show
    assert FACTS["version_line"] in host.check_output("/usr/local/bin/stalwart --version")


@pytest.mark.parametrize("node", NODES)
def test_secret_bearing_files(node):
    host = HOSTS[node]
    for path, user, mode in (("/etc/stalwart/config.json", "root", 0o640), ("/etc/stalwart/stalwart.env", "root", 0o640),
                             ("/etc/stalwart/tls/tls.key", "stalwart", 0o600)):
        f = host.file(path)
        assert f.exists and f.user == user and f.group == "stalwart" and f.mode == mode, path
    for path in ("/var/lib/stalwart", "/var/log/stalwart"):
        d = host.file(path)
        assert d.is_directory and d.user == "stalwart" and d.group == "stalwart" and d.mode == 0o750
    config = json.loads(host.file("/etc/stalwart/config.json").content_string)
    assert config["@type"] == "PostgreSql" and config["useTls"] is True
    assert config["authSecret"] == {"@type": "EnvironmentVariable", "variableName": "STALWART_DB_PASSWORD"}
    env = host.file("/etc/stalwart/stalwart.env").content_string
    assert "STALWART_RECOVERY" not in env, "the recovery administrator must not stay behind"
    assert 'STALWART_HOSTNAME="%s"' % FACTS["node_hostnames"][node] in env


def test_config_json_identical_on_every_node_and_free_of_secrets():
    contents = {HOSTS[n].file("/etc/stalwart/config.json").content_string for n in NODES}
    assert len(contents) == 1
    text = contents.pop()
    for name in ("pg-stalwart", "stalwart-recovery", "stalwart-admin"):
        leaked = secret(name) in text
        assert not leaked, "config.json holds the secret %s (value not shown)" % name


@pytest.mark.parametrize("node", NODES)
@pytest.mark.parametrize("port", [465, 993, 443])
def test_tls_verifies_against_the_ca(node, port):
    name = FACTS["hostname"]
    out = HOSTS[node].run("openssl s_client -connect %s:%d -CAfile /etc/stalwart/tls/ca.crt -verify_return_error "
                          "-verify_hostname %s -servername %s </dev/null 2>&1" % (ADDRESSES[node], port, name, name))
    assert "Verify return code: 0 (ok)" in out.stdout, out.stdout[-1500:]


@pytest.mark.parametrize("node", NODES)
def test_greetings(node):
    host = HOSTS[node]
    smtp = host.run("timeout 5 openssl s_client -quiet -connect %s:465 -CAfile /etc/stalwart/tls/ca.crt "
                    "-verify_return_error < /dev/null 2>/dev/null | head -1" % ADDRESSES[node])
    assert smtp.stdout.startswith("220 ")
    imap = host.run("timeout 5 openssl s_client -quiet -connect %s:993 -CAfile /etc/stalwart/tls/ca.crt "
                    "-verify_return_error < /dev/null 2>/dev/null | head -1" % ADDRESSES[node])
    assert imap.stdout.startswith("* OK")
    plain = host.run("timeout 5 bash -c 'exec 3<>/dev/tcp/%s/25; head -1 <&3'" % ADDRESSES[node])
    assert plain.stdout.startswith("220 ")


@pytest.mark.parametrize("node", NODES)
def test_hardening_score(node):
    out = HOSTS[node].check_output("systemd-analyze security stalwart.service --no-pager | tail -1")
    score = float(re.search(r"exposure level for stalwart.service: ([0-9.]+)", out).group(1))
    print("systemd-analyze security stalwart.service: %s" % out)
    assert score <= 2.0, out


def nft_set(line):
    """Membership test for the address set of one nft rule line (nft merges neighbours into ranges)."""
    elements = re.search(r"saddr \{ ([^}]*) \}", line).group(1).split(", ")

    def member(addr):
        ip = ipaddress.ip_address(addr)
        for element in elements:
            low, dummy, high = element.partition("-")
            if "/" in low and ip in ipaddress.ip_network(low, strict=False):
                return True
            if "/" not in low and ipaddress.ip_address(low) <= ip <= ipaddress.ip_address(high or low):
                return True
        return False
    return member


@pytest.mark.parametrize("node", NODES)
def test_firewall(node):
    rules = HOSTS[node].check_output("nft list table inet talentmesh")
    assert 'comment "stalwart-management"' in rules and 'comment "stalwart-smtp"' in rules
    mgmt = [line for line in rules.splitlines() if "stalwart-management" in line][0]
    allowed = nft_set(mgmt)
    assert allowed(FACTS["gateway"]), mgmt
    for other in NODES:
        assert allowed(ADDRESSES[other]), mgmt
    assert not allowed(FACTS["outsider"]), mgmt


def test_inventory_state_converged_and_dkim():
    domains = {d["name"]: d for d in get_all(NODES[0], "Domain")}
    assert set(FACTS["domains"]) <= set(domains), sorted(domains)
    accounts = {(a["name"], a["domainId"]): a for a in get_all(NODES[0], "Account")}
    for email in FACTS["accounts"] + FACTS["groups"]:
        local, domain = email.split("@")
        assert (local, domains[domain]["id"]) in accounts, email
    lists = {m["name"] for m in get_all(NODES[0], "MailingList")}
    assert {e.split("@")[0] for e in FACTS["mailing_lists"]} <= lists, lists
    signatures = get_all(NODES[0], "DkimSignature")
    for domain in FACTS["domains"]:
        kinds = {s["@type"] for s in signatures if s["domainId"] == domains[domain]["id"]}
        assert {"Dkim1RsaSha256", "Dkim1Ed25519Sha256"} <= kinds, (domain, kinds)
    listeners = {item["name"] for item in get_all(NODES[0], "NetworkListener")}
    assert listeners == {"smtp", "submission", "submissions", "imaps", "sieve", "https", "management"}
    assert singleton(NODES[0], "SystemSettings")["defaultHostname"] == FACTS["hostname"]
    nodes = {n["hostname"] for n in get_all(NODES[0], "ClusterNode")}
    assert set(FACTS["node_hostnames"].values()) <= nodes, nodes


def test_stores_and_coordinator_hold_the_contract_endpoints():
    """x:BlobStore, x:InMemoryStore and x:Coordinator carry the platform contract's S3 and Redis-protocol endpoints
    (mail_s3_*, mail_kv_*), read back through the first and the last node. The stand-in stores them and connects to
    neither store (see the role README); lab-verify proves both stores work with the same credentials."""
    kv_url = "rediss://:%s@%s:%d" % (secret("dragonfly"), FACTS["kv_host"], FACTS["kv_port"])
    for node in (NODES[0], NODES[-1]):
        blob = singleton(node, "BlobStore")
        assert blob["@type"] == "S3" and blob["bucket"] == FACTS["s3_bucket"], blob.get("bucket")
        assert blob["region"] == {"@type": "Custom", "customEndpoint": FACTS["s3_endpoint"],
                                  "customRegion": FACTS["s3_region"]}, blob["region"]
        assert blob["accessKey"] == {"@type": "Value", "value": FACTS["s3_access_key"]}
        for obj_type in ("InMemoryStore", "Coordinator"):
            obj = singleton(node, obj_type)
            same = obj["@type"] == "Redis" and obj.get("url") == kv_url
            assert same, "%s on %s is not the contract's Redis URL (values not shown: they hold the password)" \
                % (obj_type, node)


def test_check_diff_on_the_converged_platform_reports_no_change():
    """site.yml --check --diff on the converged platform: zero changes on every host, no diff printed."""
    rc, out = site("--check", "--diff")
    assert rc == 0, out[-4000:]
    recap = out[out.rindex("PLAY RECAP"):]
    hosts = dict(re.findall(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)", recap, re.M))
    assert set(FACTS["all_hosts"]) <= set(hosts), recap
    changed = [line for line in out.splitlines() if line.startswith("changed:") or line.startswith("--- before")]
    assert all(n == "0" for n in hosts.values()), "\n".join(changed[-20:]) + "\n" + recap
    assert not any(line.startswith("--- before") for line in out.splitlines()), "\n".join(changed[-20:])


def test_node_that_does_not_come_back_stops_the_play():
    """The second node is broken by the test (it cannot start again); a rolling restart restarts the first, fails on
    the second and stops: the third is never restarted and the others keep serving; the next run repairs it."""
    broken = HOSTS[NODES[1]]
    broken.run("mkdir -p /run/systemd/system/stalwart.service.d && printf '[Service]\\nExecStartPre=/bin/false\\n' "
               "> /run/systemd/system/stalwart.service.d/99-test-broken.conf && systemctl daemon-reload")
    pid3 = main_pid(NODES[2])
    try:
        rc, out = site("--tags", "stalwart", "-e", "stalwart_rolling_restart=true", "-e", "stalwart_gate_timeout=15")
        assert rc != 0
        assert "did not pass its gates" in out and NODES[1] in out, out[-4000:]
        assert main_pid(NODES[2]) == pid3, "the third node must not be restarted after the second failed"
        assert ready(NODES[0]) and ready(NODES[2]) and not ready(NODES[1])
    finally:
        broken.run("rm -f /run/systemd/system/stalwart.service.d/99-test-broken.conf && systemctl daemon-reload")
    rc, out = site("--tags", "stalwart")
    assert rc == 0, out[-4000:]
    assert all(ready(n, timeout=5) for n in NODES)
