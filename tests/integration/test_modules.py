"""The Stalwart modules run by ansible-playbook against a live emulator: idempotence, check mode, diff, updates,
deletes, pruning, failures, TLS with a private CA, and no secret in any output."""
import json
import os
import subprocess
import sys

import pytest

from tests.stalwart_emulator.harness import EmulatorProcess, free_port
from tests.tlsutil import make_ca_and_cert

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "Integr4tion-Secret-Pw!"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_ca_and_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def emu(tmp_path_factory, tls):
    srv = EmulatorProcess(str(tmp_path_factory.mktemp("emu")), https=(tls["cert"], tls["key"]))
    yield srv
    srv.stop()


class Runner:
    def __init__(self, emu, workdir):
        self.emu = emu
        self.workdir = workdir
        self.outputs = []

    def run(self, tasks, check=False, diff=True, conn=None, expect_fail=False):
        conn = conn or {"url": self.emu.url, "username": self.emu.user, "password": self.emu.password}
        play = [{"name": "t", "hosts": "localhost", "gather_facts": False,
                 "vars": {"ansible_python_interpreter": sys.executable},
                 "module_defaults": {"group/talentmesh.mail.stalwart": conn}, "tasks": tasks}]
        path = os.path.join(self.workdir, "play.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(play, handle)
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local", "-v", path]
        cmd += ["--check"] if check else []
        cmd += ["--diff"] if diff else []
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"),
                   ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
                   ANSIBLE_NOCOLOR="1")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        self.outputs.append(proc.stdout + proc.stderr)
        assert (proc.returncode != 0) == expect_fail, proc.stdout[-3000:] + proc.stderr[-2000:]
        data = json.loads(proc.stdout[proc.stdout.index("{"):])
        return [t["hosts"]["localhost"] for t in data["plays"][0]["tasks"]]


@pytest.fixture(scope="module")
def runner(emu, tmp_path_factory):
    return Runner(emu, str(tmp_path_factory.mktemp("plays")))


def plan(users, domain="int.example.com", group="staff"):
    return [
        {"@type": "upsert", "object": "Domain", "value": {"dom": {"name": domain}}},
        {"@type": "upsert", "object": "Account", "matchOn": ["name", "domainId"], "value": dict(
            [("grp", {"@type": "Group", "name": group, "domainId": "#dom"})] +
            [("u-" + u, {"@type": "User", "name": u, "domainId": "#dom", "description": d, "memberGroupIds": {"#grp": True},
                         "credentials": {"0": {"@type": "Password", "secret": PASSWORD}}}) for u, d in users.items()])},
    ]


USERS = {"alice": "Alice", "bob": "Bob", "carol": "Carol"}


def test_apply_creates_then_is_idempotent(runner, emu):
    emu.reset_stats()
    (res,) = runner.run([{"talentmesh.mail.stalwart_apply": {"plan": plan(USERS)}}])
    assert res["changed"] is True
    assert res["summary"]["Account"]["created"] == 4 and res["summary"]["Domain"]["created"] == 1
    assert emu.writes() >= 1
    emu.reset_stats()
    (res,) = runner.run([{"talentmesh.mail.stalwart_apply": {"plan": plan(USERS)}}])
    assert res["changed"] is False
    assert res["summary"]["Account"]["unchanged"] == 4
    assert emu.writes() == 0


def test_check_mode_makes_no_writes(runner, emu):
    changed = dict(USERS, dave="Dave")
    emu.reset_stats()
    (res,) = runner.run([{"talentmesh.mail.stalwart_apply": {"plan": plan(changed)}}], check=True)
    assert res["changed"] is True and res["summary"]["Account"]["created"] == 1
    assert emu.writes() == 0
    ids = emu.jmap([["x:Account/query", {"filter": {"name": "dave"}}, "0"]])["methodResponses"][0][1]["ids"]
    assert ids == []


def test_update_one_property_with_diff(runner, emu):
    changed = dict(USERS, bob="Robert")
    emu.reset_stats()
    (res,) = runner.run([{"talentmesh.mail.stalwart_apply": {"plan": plan(changed)}}])
    assert res["summary"]["Account"]["updated"] == 1 and res["summary"]["Account"]["unchanged"] == 3
    assert res["diff"]["after"]["Account u-bob"] == {"description": "Robert"}
    assert res["diff"]["before"]["Account u-bob"] == {"description": "Bob"}
    assert emu.stats()["objects"] == {"updated": 1}


def test_prune_removes_undeclared_accounts_of_named_types_only(runner, emu):
    fewer = {"alice": "Alice", "bob": "Robert"}
    (res,) = runner.run([{"talentmesh.mail.stalwart_apply": {"plan": plan(fewer), "prune": ["Account"]}}])
    assert res["summary"]["Account"]["destroyed"] >= 1
    names = [a["name"] for a in emu.jmap([["x:Account/get", {"ids": None, "properties": ["name"]}, "0"]])["methodResponses"][0][1]["list"]]
    assert "carol" not in names and "alice" in names and "staff" in names
    (res,) = runner.run([{"talentmesh.mail.stalwart_apply": {"plan": plan(fewer), "prune": ["Account"]}}])
    assert res["changed"] is False


def test_ndjson_file_equals_yaml_plan(runner, emu, tmp_path):
    path = tmp_path / "plan.ndjson"
    path.write_text("\n".join(json.dumps(op) for op in plan({"alice": "Alice", "bob": "Robert"})) + "\n")
    (res,) = runner.run([{"talentmesh.mail.stalwart_apply": {"src": str(path)}}])
    assert res["changed"] is False


def test_object_and_convenience_modules(runner, emu):
    tasks = [
        {"talentmesh.mail.stalwart_domain": {"name": "conv.example.com", "aliases": ["conv.example.net"]}},
        {"talentmesh.mail.stalwart_account": {"email": "team@conv.example.com", "kind": "group"}},
        {"talentmesh.mail.stalwart_account": {"email": "erin@conv.example.com", "user_password": PASSWORD,
                                              "description": "Erin", "member_of": ["team"], "quota": 1073741824}},
        {"talentmesh.mail.stalwart_object": {"type": "NetworkListener", "key": {"name": "submission"},
                                             "properties": {"protocol": "smtp", "bind": {"[::]:587": True}, "tlsImplicit": False}}},
        {"talentmesh.mail.stalwart_object": {"type": "MtaSts", "singleton": True, "properties": {"mode": "enforce"}}},
    ]
    first = runner.run(tasks)
    assert [r["changed"] for r in first] == [True, True, True, True, True]
    emu.reset_stats()
    second = runner.run(tasks)
    assert [r["changed"] for r in second] == [False] * 5
    assert emu.writes() == 0
    (gone,) = runner.run([{"talentmesh.mail.stalwart_object": {"type": "NetworkListener", "key": {"name": "submission"}, "state": "absent"}}])
    assert gone["changed"] is True


def test_dkim_and_info_records(runner, emu):
    dkim, info = runner.run([
        {"talentmesh.mail.stalwart_dkim": {"domain": "conv.example.com"}},
        {"talentmesh.mail.stalwart_info": {"domain": "conv.example.com"}},
    ])
    assert {r["value"].split(";")[1].strip() for r in dkim["records"]} == {"k=rsa", "k=ed25519"}
    assert info["health"] == {"live": True, "ready": True}
    types = {r["type"] for r in info["dns_records"]}
    assert {"MX", "TXT", "SRV", "CNAME"} <= types
    txt = [r["value"] for r in info["dns_records"] if r["type"] == "TXT"]
    assert any(v.startswith("v=spf1") for v in txt) and any(v.startswith("v=DMARC1") for v in txt)
    assert all(r["value"] in txt for r in dkim["records"])
    (rot,) = runner.run([{"talentmesh.mail.stalwart_dkim": {"domain": "conv.example.com", "rotate": True}}])
    assert rot["changed"] is True and len(rot["signatures"]) == 4


def test_wrong_credentials(runner, emu):
    (res,) = runner.run([{"talentmesh.mail.stalwart_info": {}}], expect_fail=True,
                        conn={"url": emu.url, "username": "admin", "password": "definitely-wrong"})
    assert "authentication" in res["msg"] and "401" in res["msg"]


def test_unknown_domain(runner):
    (res,) = runner.run([{"talentmesh.mail.stalwart_account": {"email": "x@nowhere.example.com"}}], expect_fail=True)
    assert "nowhere.example.com does not exist" in res["msg"]


def test_duplicate_create(runner):
    op = [{"@type": "create", "object": "Domain", "value": {"d": {"name": "int.example.com"}}}]
    (res,) = runner.run([{"talentmesh.mail.stalwart_apply": {"plan": op}}], expect_fail=True)
    assert "primaryKeyViolation" in res["msg"] and "already used by Domain" in res["msg"]


def test_invalid_property(runner):
    op = [{"@type": "upsert", "object": "Domain", "value": {"d": {"name": "bad.example.com", "colour": "blue"}}}]
    (res,) = runner.run([{"talentmesh.mail.stalwart_apply": {"plan": op}}], expect_fail=True)
    assert "invalidPatch" in res["msg"] and "colour" in res["msg"]


def test_server_down_retries_then_fails_clearly(runner):
    url = "http://127.0.0.1:%d" % free_port()
    (res,) = runner.run([{"talentmesh.mail.stalwart_info": {"retries": 2}}], expect_fail=True,
                        conn={"url": url, "username": "admin", "password": "x"})
    assert "cannot reach Stalwart at %s after 3 attempts" % url in res["msg"]


def test_tls_with_private_ca(runner, emu, tls):
    conn = {"url": emu.https_url, "username": emu.user, "password": emu.password, "ca_path": tls["ca"]}
    (res,) = runner.run([{"talentmesh.mail.stalwart_info": {}}], conn=conn)
    assert res["health"]["live"] is True
    conn.pop("ca_path")
    (res,) = runner.run([{"talentmesh.mail.stalwart_info": {"retries": 0}}], conn=conn, expect_fail=True)
    assert "TLS verification" in res["msg"] and "ca_path" in res["msg"]


def test_no_secret_in_any_output(runner, emu):
    """Runs last in this module: every play's output so far, with -v and --diff."""
    assert runner.outputs
    for out in runner.outputs:
        assert PASSWORD not in out
        assert emu.password not in out


def test_false_booleans_and_defaults_are_unchanged_on_a_fresh_server(tmp_path):
    """Declaring what a fresh server already holds (false booleans, wire-form defaults: durations in ms, expressions,
    nested Rate objects) reports changed: false and writes nothing."""
    fresh = EmulatorProcess(str(tmp_path / "emu"))
    try:
        ops = [
            {"@type": "update", "object": "Http", "value": {
                "enableHsts": False, "usePermissiveCors": False, "useXForwarded": False,
                "rateLimitAnonymous": {"count": 100, "period": 60000}, "allowedEndpoints": {"match": {}, "else": "200"}}},
            {"@type": "update", "object": "Imap", "value": {"allowPlainTextAuth": False}},
            {"@type": "update", "object": "MtaStageRcpt", "value": {"waitOnFail": {"match": {}, "else": "5s"}}},
            {"@type": "upsert", "object": "NetworkListener", "matchOn": ["name"], "value": {"http": {
                "name": "http", "protocol": "http", "bind": {"[::]:8080": True}, "tlsImplicit": False, "useTls": True,
                "tlsTimeout": 60000}}},
        ]
        fresh.reset_stats()
        (res,) = Runner(fresh, str(tmp_path)).run([{"talentmesh.mail.stalwart_apply": {"plan": ops}}])
        assert res["changed"] is False, res["summary"]
        assert fresh.writes() == 0
        assert res["summary"]["Http"] == {"created": 0, "updated": 0, "destroyed": 0, "unchanged": 1}
    finally:
        fresh.stop()


def test_plain_user_is_told_it_is_not_an_administrator(runner, emu):
    dom = emu.jmap([["x:Domain/set", {"create": {"d": {"name": "plain.example.com"}}}, "0"]])["methodResponses"][0][1]
    emu.jmap([["x:Account/set", {"create": {"u": {"@type": "User", "name": "pat", "domainId": dom["created"]["d"]["id"],
                                                  "credentials": {"0": {"@type": "Password", "secret": PASSWORD}}}}}, "0"]])
    conn = {"url": emu.url, "username": "pat@plain.example.com", "password": PASSWORD}
    (res,) = runner.run([{"talentmesh.mail.stalwart_domain": {"name": "other.example.com"}}], conn=conn, expect_fail=True)
    assert "forbidden" in res["msg"] and "not an administrator" in res["msg"]
