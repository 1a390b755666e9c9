"""Node lifecycle: the binary's flags, bootstrap completion, recovery mode, config.json as x:DataStore, and the
default objects of a first start. Emulator-only: these start their own emulator processes."""
import json
import os
import subprocess
import sys

from tests.conftest import emulator_only
from tests.stalwart_emulator.harness import ENTRY, EmulatorProcess

pytestmark = emulator_only


def ok(resp, index=0):
    name, args, dummy = resp["methodResponses"][index]
    assert name != "error", args
    return args


def test_binary_flags():
    out = subprocess.run([sys.executable, ENTRY, "--version"], capture_output=True, text=True, check=True).stdout
    assert "talentmesh emulator of Stalwart 0.16.18" in out
    out = subprocess.run([sys.executable, ENTRY, "-V"], capture_output=True, text=True, check=True).stdout
    assert "0.16.18" in out
    out = subprocess.run([sys.executable, ENTRY, "--help"], capture_output=True, text=True, check=True).stdout
    assert "--config" in out and "--version" in out


def test_invalid_config_fails_startup(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    proc = subprocess.run([sys.executable, ENTRY, "-c", str(bad)], capture_output=True, text=True, timeout=30,
                          check=False, env=dict(os.environ, STALWART_EMULATOR_HTTP="127.0.0.1:0"))
    assert proc.returncode != 0 and str(bad) in proc.stderr


def test_bootstrap_completion_writes_config_and_creates_admin(tmp_path):
    emu = EmulatorProcess(str(tmp_path), datastore=None)
    try:
        assert emu.raw("GET", "/healthz/ready", auth=False)[0] == 503
        current = ok(emu.jmap([["x:Bootstrap/get", {"ids": None}, "0"]]))["list"][0]
        assert current["id"] == "singleton" and current["dataStore"]["@type"] == "RocksDb"
        assert ok(emu.jmap([["x:Bootstrap/get", {"ids": ["nope"]}, "0"]]))["notFound"] == ["nope"]
        data = str(tmp_path / "data")
        done = ok(emu.jmap([["x:Bootstrap/set", {"update": {"singleton": {
            "serverHostname": "MX1.Boot.Example.com", "defaultDomain": "Boot.Example.com",
            "dataStore": {"@type": "Sqlite", "path": data}, "generateDkimKeys": False}}}, "0"]]))
        admin = done["updated"]["singleton"]
        assert admin["username"] == "admin@boot.example.com" and len(admin["secret"]) == 16
        with open(emu.config, encoding="utf-8") as handle:
            assert json.load(handle)["@type"] == "Sqlite"
        assert emu.raw("GET", "/healthz/ready", auth=False)[0] == 200
        # the generated admin can now manage the server; the default domain and hostname are set
        auth = {"Authorization": emu.auth_header(admin["username"], admin["secret"])}
        session = emu.raw("GET", "/jmap/session", headers=auth)[2]
        assert "urn:stalwart:jmap" in session["primaryAccounts"]
        settings = ok(emu.jmap([["x:SystemSettings/get", {"ids": None}, "0"]]))["list"][0]
        assert settings["defaultHostname"] == "mx1.boot.example.com"
        dom = ok(emu.jmap([["x:Domain/get", {"ids": [settings["defaultDomainId"]]}, "0"]]))["list"][0]
        assert dom["name"] == "boot.example.com" and dom["dkimManagement"]["@type"] == "Manual"
        # bare user names get the default domain appended
        assert emu.raw("GET", "/jmap/session", headers={"Authorization": emu.auth_header("ADMIN", admin["secret"])})[0] == 200
        again = emu.jmap([["x:Bootstrap/set", {"update": {"singleton": {"defaultDomain": "x.example.com"}}}, "0"]])
        assert again["methodResponses"][0][1]["type"] == "forbidden"
    finally:
        emu.stop()
    # after a restart the node comes up in normal mode from the written config.json
    with open(emu.config, encoding="utf-8") as handle:
        datastore = json.load(handle)
    again = EmulatorProcess(str(tmp_path / "restart"), datastore=datastore)
    try:
        assert again.raw("GET", "/healthz/ready", auth=False)[0] == 200
        names = [d["name"] for d in ok(again.jmap([["x:Domain/get", {"ids": None, "properties": ["name"]}, "0"]]))["list"]]
        assert names == ["boot.example.com"]
    finally:
        again.stop()


def test_bootstrap_rejects_bad_input(tmp_path):
    emu = EmulatorProcess(str(tmp_path), datastore=None)
    try:
        resp = ok(emu.jmap([["x:Bootstrap/set", {"update": {"singleton": {"defaultDomain": "bad.invalidtld"}}}, "0"]]))
        assert resp["notUpdated"]["singleton"]["type"] == "invalidPatch"
        resp = ok(emu.jmap([["x:Bootstrap/set", {"update": {"singleton": {"username": "x@y.com"}}}, "0"]]))
        assert resp["notUpdated"]["singleton"]["type"] == "invalidPatch"
        resp = ok(emu.jmap([["x:Bootstrap/set", {"destroy": ["singleton"]}, "0"]]))
        assert resp["notDestroyed"]["singleton"]["type"] == "singleton"
        assert not os.path.exists(emu.config)
        assert emu.raw("GET", "/healthz/ready", auth=False)[0] == 503
    finally:
        emu.stop()


def test_datastore_singleton_is_the_config_file(tmp_path):
    emu = EmulatorProcess(str(tmp_path))
    try:
        got = ok(emu.jmap([["x:DataStore/get", {"ids": ["singleton"]}, "0"]]))["list"][0]
        assert got["@type"] == "RocksDb" and got["path"].endswith("data-%d" % emu.port)
        assert got["id"] == "singleton"
        moved = str(tmp_path / "moved")
        ok(emu.jmap([["x:DataStore/set", {"update": {"singleton": {"path": moved}}}, "0"]]))
        with open(emu.config, encoding="utf-8") as handle:
            text = handle.read()
        assert json.loads(text)["path"] == moved and ": " not in text  # compact JSON, like the server writes
        pg = {"@type": "PostgreSql", "host": "db.internal", "authSecret": {"@type": "Value", "secret": "hunter22"}}
        ok(emu.jmap([["x:DataStore/set", {"update": {"singleton": pg}}, "0"]]))
        got = ok(emu.jmap([["x:DataStore/get", {"ids": None}, "0"]]))["list"][0]
        assert got["authSecret"] == {"@type": "Value", "secret": "****"} and got["port"] == 5432
        # writing the mask back keeps the stored secret
        masked = {"authSecret": {"@type": "Value", "secret": "****"}, "database": "mail"}
        ok(emu.jmap([["x:DataStore/set", {"update": {"singleton": masked}}, "0"]]))
        with open(emu.config, encoding="utf-8") as handle:
            stored = json.load(handle)
        assert stored["authSecret"]["secret"] == "hunter22" and stored["database"] == "mail"
        err = ok(emu.jmap([["x:DataStore/set", {"destroy": ["singleton"]}, "0"]]))["notDestroyed"]["singleton"]
        assert err["type"] == "singleton"
    finally:
        emu.stop()


def test_first_start_defaults(tmp_path):
    emu = EmulatorProcess(str(tmp_path), env={"STALWART_HOSTNAME": "Node-7.Example.com"})
    try:
        roles = ok(emu.jmap([["x:Role/get", {"ids": None, "properties": ["description"]}, "0"]]))["list"]
        assert sorted(r["description"] for r in roles) == ["Group", "System Administrator", "Tenant Administrator", "User"]
        auth = ok(emu.jmap([["x:Authentication/get", {"ids": None}, "0"]]))["list"][0]
        by_desc = {r["description"]: r["id"] for r in roles}
        assert auth["defaultAdminRoleIds"] == {by_desc["System Administrator"]: True}
        listeners = ok(emu.jmap([["x:NetworkListener/get", {"ids": None}, "0"]]))["list"]
        assert {(l["name"], l["protocol"], next(iter(l["bind"])), l["tlsImplicit"]) for l in listeners} == {
            ("smtp", "smtp", "[::]:25", False), ("submissions", "smtp", "[::]:465", True),
            ("imaps", "imap", "[::]:993", True), ("pop3s", "pop3", "[::]:995", True),
            ("sieve", "manageSieve", "[::]:4190", False), ("https", "http", "[::]:443", True),
            ("http", "http", "[::]:8080", False)}
        nodes = ok(emu.jmap([["x:ClusterNode/get", {"ids": None}, "0"]]))["list"]
        assert [n["hostname"] for n in nodes] == ["node-7.example.com"]
        err = emu.jmap([["x:ClusterNode/set", {"destroy": [nodes[0]["id"]]}, "0"]])["methodResponses"][0]
        assert err[0] == "error" and err[1]["type"] == "forbidden"
        session = emu.raw("GET", "/jmap/session")[2]
        assert session["apiUrl"] == "https://node-7.example.com/jmap/"
        assert session["primaryAccounts"]["urn:stalwart:jmap"] == "d333333"
    finally:
        emu.stop()


def test_recovery_mode_queues_dkim_and_restores_account_ids(tmp_path):
    emu = EmulatorProcess(str(tmp_path), env={"STALWART_RECOVERY_MODE": "1"})
    datastore = {"@type": "RocksDb", "path": str(tmp_path / ("data-%d" % emu.port))}
    try:
        dom = ok(emu.jmap([["x:Domain/set", {"create": {"d": {"name": "recovery.example.com"}}}, "0"]]))["created"]["d"]["id"]
        assert ok(emu.jmap([["x:DkimSignature/query", {"filter": {"domainId": dom}}, "0"]]))["ids"] == []
        tasks = ok(emu.jmap([["x:Task/get", {"ids": None}, "0"]]))["list"]
        assert [(t["@type"], t["domainId"]) for t in tasks] == [("DkimManagement", dom)]
        restored = ok(emu.jmap([["x:Account/set", {"create": {"restore-40": {
            "@type": "User", "name": "legacy", "domainId": dom}}}, "0"]]))["created"]["restore-40"]
        assert restored["id"] == "bi"  # 40 in Stalwart's id alphabet
    finally:
        emu.stop()
    normal = EmulatorProcess(str(tmp_path / "normal"), datastore=datastore)
    try:
        sigs = ok(normal.jmap([["x:DkimSignature/query", {"filter": {"domainId": dom}}, "0"]]))["ids"]
        assert len(sigs) == 2
        assert ok(normal.jmap([["x:Task/get", {"ids": None}, "0"]]))["list"] == []
        again = ok(normal.jmap([["x:Account/set", {"create": {"restore-41": {
            "@type": "User", "name": "other", "domainId": dom}}}, "0"]]))["created"]["restore-41"]
        assert again["id"] != "bj"  # only recovery mode honours restore-<n>
    finally:
        normal.stop()
