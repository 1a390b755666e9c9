"""Verify the stalwart role with REAL clients (urllib over verified TLS, openssl s_client, ansible-playbook). The server
is the STAND-IN artifact (the project's emulator of Stalwart v0.16's management surface, packaged as the release
tarball), not Stalwart: the management API, health, listener greetings over TLS, the shared PostgreSQL state, unit,
hardening, files and firewall are real; mail delivery is not."""
import ipaddress
import json
import os
import re
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import testinfra

RELEASE = os.environ.get("MOLECULE_DEBIAN", "12")
NODES = ["tm-stalwart-%d-d%s" % (n, RELEASE) for n in (1, 2, 3)]
DATA = "tm-stalwart-db-d%s" % RELEASE
HOSTS = {name: testinfra.get_host("podman://" + name) for name in NODES + [DATA]}
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
SCENARIO = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
CA = os.path.join(EPHEMERAL, "lab-ca", "ca.crt")
MGMT = 8080
SECRETS = ["molecule-stalwart-db-0123456789", "molecule-recovery-0123456789", "Molecule-Admin-2024-pass!"]


def address(name):
    return HOSTS[name].check_output("hostname -I").split()[0]


ADDRESSES = {name: address(name) for name in NODES + [DATA]}
CONTEXT = ssl.create_default_context(cafile=CA)


def api_key():
    with open(os.path.join(EPHEMERAL, "stalwart-api-key"), encoding="utf-8") as handle:
        return handle.read().strip()


def jmap(node, calls):
    body = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"], "methodCalls": calls}).encode()
    req = urllib.request.Request("https://%s:%d/jmap" % (ADDRESSES[node], MGMT), data=body, method="POST",
                                 headers={"Authorization": "Bearer " + api_key(), "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=CONTEXT, timeout=10) as resp:
        return [r[1] for r in json.loads(resp.read())["methodResponses"]]


def get_all(node, obj_type):
    return jmap(node, [["x:%s/get" % obj_type, {"ids": None}, "g"]])[0]["list"]


def ready(node, timeout=2):
    try:
        with urllib.request.urlopen("https://%s:%d/healthz/ready" % (ADDRESSES[node], MGMT), context=CONTEXT,
                                    timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def main_pid(node):
    return HOSTS[node].check_output("systemctl show -p MainPID --value stalwart")


def playbook(name, *extra):
    """Run a scenario playbook against the converged scenario with molecule's inventory and configuration."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(EPHEMERAL, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0")
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(SCENARIO, name)] + list(extra)
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
    assert host.file("/usr/local/bin/stalwart").exists
    assert "0.16" in host.check_output("/usr/local/bin/stalwart --version")


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
    assert "STALWART_HOSTNAME=\"node%s.talentmesh.test\"" % node.split("-")[2] in env


def test_config_json_identical_on_every_node():
    contents = {HOSTS[n].file("/etc/stalwart/config.json").content_string for n in NODES}
    assert len(contents) == 1
    for secret in SECRETS:
        assert secret not in contents.pop() if contents else True


@pytest.mark.parametrize("node", NODES)
@pytest.mark.parametrize("port", [465, 993, 443])
def test_tls_verifies_against_the_ca(node, port):
    host = HOSTS[node]
    out = host.run("openssl s_client -connect %s:%d -CAfile /etc/stalwart/tls/ca.crt -verify_return_error "
                   "-verify_hostname mail.talentmesh.test -servername mail.talentmesh.test </dev/null 2>&1"
                   % (ADDRESSES[node], port))
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


@pytest.mark.parametrize("node", NODES)
def test_firewall(node):
    rules = HOSTS[node].check_output("nft list table inet talentmesh")
    assert 'comment "stalwart-management"' in rules and 'comment "stalwart-smtp"' in rules
    mgmt = [line for line in rules.splitlines() if "stalwart-management" in line][0]
    allowed = nft_set(mgmt)
    assert allowed("10.231.%s1.1" % RELEASE), mgmt
    for other in NODES:
        assert allowed(ADDRESSES[other]), mgmt
    assert not allowed("10.231.%s1.250" % RELEASE), mgmt


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


def test_inventory_state_converged_and_dkim():
    domains = {d["name"]: d for d in get_all(NODES[0], "Domain")}
    assert {"talentmesh.test", "example.test"} <= set(domains)
    accounts = {(a["name"], a["domainId"]): a for a in get_all(NODES[0], "Account")}
    tm = domains["talentmesh.test"]["id"]
    assert ("alice", tm) in accounts and ("staff", tm) in accounts and ("admin", tm) in accounts
    assert accounts[("admin", tm)]["roles"]["@type"] == "Admin"
    assert ("bob", domains["example.test"]["id"]) in accounts
    assert any(m["name"] == "all" for m in get_all(NODES[0], "MailingList"))
    signatures = get_all(NODES[0], "DkimSignature")
    for domain in ("talentmesh.test", "example.test"):
        kinds = {s["@type"] for s in signatures if s["domainId"] == domains[domain]["id"]}
        assert {"Dkim1RsaSha256", "Dkim1Ed25519Sha256"} <= kinds, (domain, kinds)
    listeners = {item["name"]: item for item in get_all(NODES[0], "NetworkListener")}
    assert set(listeners) == {"smtp", "submission", "submissions", "imaps", "sieve", "https", "management"}
    settings = jmap(NODES[0], [["x:SystemSettings/get", {"ids": ["singleton"]}, "s"]])[0]["list"][0]
    assert settings["defaultHostname"] == "mail.talentmesh.test"
    blob = jmap(NODES[0], [["x:BlobStore/get", {"ids": ["singleton"]}, "b"]])[0]["list"][0]
    assert blob["@type"] == "S3" and blob["bucket"] == "stalwart-blobs"
    coordinator = jmap(NODES[0], [["x:Coordinator/get", {"ids": ["singleton"]}, "c"]])[0]["list"][0]
    assert coordinator["@type"] == "Redis"
    nodes = {n["hostname"] for n in get_all(NODES[0], "ClusterNode")}
    assert {"node1.talentmesh.test", "node2.talentmesh.test", "node3.talentmesh.test"} <= nodes


def test_created_through_node1_visible_through_nodes_2_and_3():
    created = jmap(NODES[0], [
        ["x:Domain/set", {"create": {"d": {"name": "verify.test"}}}, "d"],
        ["x:Account/set", {"create": {"u": {"@type": "User", "name": "carol", "domainId": "#d"},
                                      "v": {"@type": "User", "name": "dave", "domainId": "#d"}}}, "a"]])
    assert "d" in created[0].get("created", {}), created
    assert set(created[1].get("created", {})) == {"u", "v"}, created
    domain_id = created[0]["created"]["d"]["id"]
    for node in NODES[1:]:
        names = {d["name"] for d in get_all(node, "Domain")}
        assert "verify.test" in names
        users = {a["name"] for a in get_all(node, "Account") if a.get("domainId") == domain_id}
        assert users == {"carol", "dave"}
    jmap(NODES[0], [["x:Account/set", {"destroy": [created[1]["created"]["u"]["id"], created[1]["created"]["v"]["id"]]}, "x"],
                    ["x:Domain/set", {"destroy": [domain_id]}, "y"]])


def test_stores_and_coordinator_hold_the_contract_endpoints():
    """x:BlobStore, x:InMemoryStore and x:Coordinator carry the platform contract's S3 and Redis-protocol endpoints
    (mail_s3_*, mail_kv_* in molecule.yml), read back through nodes 1 and 3. The stand-in stores them and connects to
    neither store (see the role README)."""
    kv_url = "rediss://:molecule-kv-pass-0123456789@%s:6379" % ADDRESSES[DATA]
    for node in (NODES[0], NODES[2]):
        blob = jmap(node, [["x:BlobStore/get", {"ids": ["singleton"]}, "b"]])[0]["list"][0]
        assert blob["@type"] == "S3" and blob["bucket"] == "stalwart-blobs", blob.get("bucket")
        assert blob["region"] == {"@type": "Custom", "customEndpoint": "https://%s:8333" % ADDRESSES[DATA],
                                  "customRegion": "us-east-1"}, blob["region"]
        assert blob["accessKey"] == {"@type": "Value", "value": "molecule-stalwart"}, blob["accessKey"]
        in_memory = jmap(node, [["x:InMemoryStore/get", {"ids": ["singleton"]}, "m"]])[0]["list"][0]
        assert in_memory["@type"] == "Redis" and in_memory["url"] == kv_url, in_memory["@type"]
        coordinator = jmap(node, [["x:Coordinator/get", {"ids": ["singleton"]}, "c"]])[0]["list"][0]
        assert coordinator["@type"] == "Redis" and coordinator["url"] == kv_url, coordinator["@type"]


def test_check_mode_reports_no_change():
    """converge.yml in --check on the converged scenario (baseline, PostgreSQL, the cluster) changes nothing on any
    of the four hosts."""
    rc, out = playbook("converge.yml", "--check")
    assert rc == 0, out[-4000:]
    recap = out[out.rindex("PLAY RECAP"):]
    hosts = dict(re.findall(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)", recap, re.M))
    assert set(hosts) == set(NODES + [DATA]), recap
    changed = [line for line in out.splitlines() if line.startswith("changed:")]
    assert all(n == "0" for n in hosts.values()), "\n".join(changed[-20:]) + "\n" + recap


def test_rolling_restart_keeps_two_nodes_ready():
    pids = {n: main_pid(n) for n in NODES}
    samples, stop = [], threading.Event()

    def poll():
        while not stop.is_set():
            results = []
            threads = [threading.Thread(target=lambda n=n: results.append(ready(n, timeout=1))) for n in NODES]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            samples.append(sum(results))
            time.sleep(0.1)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        rc, out = playbook("restart.yml", "-e", "stalwart_rolling_restart=true")
    finally:
        stop.set()
        poller.join()
    assert rc == 0, out[-4000:]
    assert all(main_pid(n) != pids[n] for n in NODES), "every node restarted"
    assert len(samples) > 10 and min(samples) >= 2, samples
    print("rolling restart: %d samples, minimum ready %d" % (len(samples), min(samples)))


def test_node_that_does_not_come_back_stops_the_play():
    """Node 2 is broken by the test (it cannot start again); a rolling restart restarts node 1, fails on node 2 and
    stops: node 3 is never restarted and nodes 1 and 3 keep serving."""
    broken = HOSTS[NODES[1]]
    broken.run("mkdir -p /run/systemd/system/stalwart.service.d && printf '[Service]\\nExecStartPre=/bin/false\\n' "
               "> /run/systemd/system/stalwart.service.d/99-test-broken.conf && systemctl daemon-reload")
    pid3 = main_pid(NODES[2])
    try:
        rc, out = playbook("restart.yml", "-e", "stalwart_rolling_restart=true", "-e", "stalwart_gate_timeout=15")
        assert rc != 0
        assert "did not pass its gates" in out and NODES[1] in out, out[-4000:]
        assert main_pid(NODES[2]) == pid3, "node 3 must not be restarted after node 2 failed"
        assert ready(NODES[0]) and ready(NODES[2]) and not ready(NODES[1])
    finally:
        broken.run("rm -f /run/systemd/system/stalwart.service.d/99-test-broken.conf && systemctl daemon-reload "
                   "&& systemctl start stalwart")
    deadline = time.time() + 30
    while not ready(NODES[1]) and time.time() < deadline:
        time.sleep(1)
    assert ready(NODES[1])


def test_stopped_member_blocks_restarts():
    """With node 3 stopped, the role refuses to restart node 1 (the cluster would drop below two ready nodes)."""
    HOSTS[NODES[2]].run("systemctl stop stalwart && mkdir -p /run/systemd/system/stalwart.service.d && "
                        "printf '[Service]\\nExecStartPre=/bin/false\\n' > /run/systemd/system/stalwart.service.d/99-test-broken.conf "
                        "&& systemctl daemon-reload")
    pid1, pid2 = main_pid(NODES[0]), main_pid(NODES[1])
    try:
        rc, out = playbook("restart.yml", "-e", "stalwart_rolling_restart=true")
        assert rc != 0 and "not restarting %s" % NODES[0] in out, out[-4000:]
        assert main_pid(NODES[0]) == pid1 and main_pid(NODES[1]) == pid2
        assert ready(NODES[0]) and ready(NODES[1])
    finally:
        HOSTS[NODES[2]].run("rm -f /run/systemd/system/stalwart.service.d/99-test-broken.conf && systemctl daemon-reload "
                            "&& systemctl start stalwart")
