"""Bootstrap mode, real admin accounts and API keys, TLS with a private CA, and a PostgreSQL datastore shared by two
emulator nodes (the cluster case). Emulator-only: these start their own servers."""
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request

import pytest

from tests.conftest import emulator_only
from tests.stalwart_emulator.harness import EmulatorProcess, free_port
from tests.tlsutil import make_ca_and_cert

pytestmark = emulator_only
PG_BIN = "/usr/lib/postgresql/15/bin"


def test_bootstrap_mode_without_config(tmp_path):
    emu = EmulatorProcess(str(tmp_path), datastore=None)
    try:
        assert emu.raw("GET", "/healthz/ready", auth=False)[0] == 503
        resp = emu.jmap([["x:Domain/get", {"ids": None}, "0"]])["methodResponses"][0]
        assert resp[0] == "error" and resp[1]["type"] == "forbidden" and "bootstrap" in resp[1]["description"]
    finally:
        emu.stop()


def test_admin_account_login_and_api_key(server):
    dom = server.jmap([["x:Domain/set", {"create": {"d": {"name": "keys.example.com"}}}, "0"]])["methodResponses"][0][1]
    dom_id = dom["created"]["d"]["id"]
    server.jmap([["x:Account/set", {"create": {
        "adm": {"@type": "User", "name": "ops", "domainId": dom_id, "roles": {"@type": "Admin"},
                "credentials": {"0": {"@type": "Password", "secret": "Adm1n-Passphrase-42"}}},
        "usr": {"@type": "User", "name": "plain", "domainId": dom_id,
                "credentials": {"0": {"@type": "Password", "secret": "Us3r-Passphrase-42"}}}}}, "0"]])
    admin_auth = server.auth_header("ops@keys.example.com", "Adm1n-Passphrase-42")
    session = server.raw("GET", "/jmap/session", headers={"Authorization": admin_auth})[2]
    acct = session["primaryAccounts"]["urn:stalwart:jmap"]
    created = server.raw("POST", "/jmap", {"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"], "methodCalls": [
        ["x:ApiKey/set", {"create": {"k": {"description": "automation"}}}, "0"]]}, headers={"Authorization": admin_auth})[2]
    key = created["methodResponses"][0][1]["created"]["k"]["secret"]
    assert key.startswith("API_")
    status, dummy, session = server.raw("GET", "/jmap/session", headers={"Authorization": "Bearer " + key})
    assert status == 200 and session["primaryAccounts"]["urn:stalwart:jmap"] == acct
    # a user without an admin role: the session still lists its account for urn:stalwart:jmap, administrative calls
    # are refused, and the default User role manages its own API keys
    plain_auth = {"Authorization": server.auth_header("plain@keys.example.com", "Us3r-Passphrase-42")}
    plain = server.raw("GET", "/jmap/session", headers=plain_auth)[2]
    plain_id = plain["primaryAccounts"]["urn:stalwart:jmap"]
    assert plain_id != acct and "urn:stalwart:jmap" in plain["accounts"][plain_id]["accountCapabilities"]
    using = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]
    resp = server.raw("POST", "/jmap", {"using": using, "methodCalls": [
        ["x:Domain/get", {"ids": None}, "0"], ["x:ApiKey/set", {"create": {"k": {"description": "mine"}}}, "1"],
        ["x:ApiKey/get", {"ids": None}, "2"], ["x:AccountSettings/get", {"ids": None}, "3"]]}, headers=plain_auth)[2]
    calls = resp["methodResponses"]
    assert calls[0][0] == "error" and calls[0][1]["type"] == "forbidden"
    assert calls[1][1]["created"]["k"]["secret"].startswith("API_")
    keys = calls[2][1]["list"]
    assert [k["description"] for k in keys] == ["mine"] and keys[0]["secret"] == "****" and "credentialId" not in keys[0]
    assert calls[3][1]["list"][0]["locale"] == "en_US"
    assert server.raw("GET", "/jmap/session", headers={"Authorization": "Bearer API_not-a-key"})[0] == 401


def test_https_listener_with_private_ca(tmp_path):
    tls = make_ca_and_cert(tmp_path)
    emu = EmulatorProcess(str(tmp_path), https=(tls["cert"], tls["key"]))
    try:
        time.sleep(0.2)
        ctx = ssl.create_default_context(cafile=tls["ca"])
        with urllib.request.urlopen(emu.https_url + "/healthz/live", context=ctx, timeout=5) as resp:
            assert resp.status == 200
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(emu.https_url + "/healthz/live", context=ssl.create_default_context(), timeout=5)
    finally:
        emu.stop()


def _as_postgres(*cmd):
    return subprocess.run(["runuser", "-u", "postgres", "--"] + list(cmd), check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL 15 cluster on a free loopback port (password auth for the stalwart role)."""
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        pytest.skip("PostgreSQL 15 server binaries are not installed (make host installs them)")
    data = tempfile.mkdtemp(prefix="tm-pg-")  # outside pytest's 0700 root-only tree: postgres must reach it
    shutil.chown(data, "postgres", "postgres")
    port = free_port()
    _as_postgres(os.path.join(PG_BIN, "initdb"), "-D", data + "/db", "-U", "postgres",
                 "--auth-local=trust", "--auth-host=scram-sha-256")
    _as_postgres(os.path.join(PG_BIN, "pg_ctl"), "-D", data + "/db", "-l", data + "/log", "-w",
                 "-o", "-p %d -k %s -c listen_addresses=127.0.0.1" % (port, data), "start")
    try:
        psql = [os.path.join(PG_BIN, "psql"), "-h", data, "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c"]
        _as_postgres(*(psql + ["CREATE ROLE stalwart LOGIN PASSWORD 'pg-test-pw'"]))
        _as_postgres(*(psql + ["CREATE DATABASE stalwart OWNER stalwart"]))
        yield port
    finally:
        _as_postgres(os.path.join(PG_BIN, "pg_ctl"), "-D", data + "/db", "-m", "fast", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_two_nodes_share_a_postgresql_datastore(tmp_path, postgres):
    datastore = {"@type": "PostgreSql", "host": "127.0.0.1", "port": postgres, "database": "stalwart",
                 "authUsername": "stalwart", "authSecret": {"@type": "EnvironmentVariable", "variableName": "PG_PW"}}
    env = {"PG_PW": "pg-test-pw"}
    node_a = EmulatorProcess(str(tmp_path / "a"), datastore=datastore, env=dict(env, STALWART_HOSTNAME="node-a"))
    node_b = EmulatorProcess(str(tmp_path / "b"), datastore=datastore, env=dict(env, STALWART_HOSTNAME="node-b"))
    try:
        created = node_a.jmap([["x:Domain/set", {"create": {"d": {"name": "cluster.example.com"}}}, "0"]])
        dom_id = created["methodResponses"][0][1]["created"]["d"]["id"]
        seen = node_b.jmap([["x:Domain/get", {"ids": [dom_id], "properties": ["name"]}, "0"]])["methodResponses"][0][1]
        assert seen["list"][0]["name"] == "cluster.example.com"
        dup = node_b.jmap([["x:Domain/set", {"create": {"d": {"name": "cluster.example.com"}}}, "0"]])["methodResponses"][0][1]
        assert dup["notCreated"]["d"]["type"] == "primaryKeyViolation"
        nodes = node_a.jmap([["x:ClusterNode/get", {"ids": None}, "0"]])["methodResponses"][0][1]["list"]
        assert {"node-a", "node-b"} <= {n["hostname"] for n in nodes}
        # sequential ids stay unique across nodes
        a2 = node_a.jmap([["x:Domain/set", {"create": {"x": {"name": "a2.example.com"}}}, "0"]])["methodResponses"][0][1]
        b2 = node_b.jmap([["x:Domain/set", {"create": {"x": {"name": "b2.example.com"}}}, "0"]])["methodResponses"][0][1]
        assert a2["created"]["x"]["id"] != b2["created"]["x"]["id"]
    finally:
        node_a.stop()
        node_b.stop()
