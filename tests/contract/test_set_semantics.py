"""More /set, /get and /query semantics: links, unique keys, patches, passwords, actions, tasks, result references,
limits and encodings (contract sections 1.4, 2.3, 6.2-6.5). Runs against the emulator or a real server."""
import base64
import hashlib
import os
import uuid

import pytest

from tests.conftest import emulator_only


def unique(prefix):
    return "%s%s" % (prefix, uuid.uuid4().hex[:8])


def ok(resp, index=0):
    name, args, dummy = resp["methodResponses"][index]
    assert name != "error", args
    return args


def err(resp, index=0):
    name, args, dummy = resp["methodResponses"][index]
    assert name == "error", args
    return args


def pbkdf2(password):
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)

    def enc(raw):
        return base64.b64encode(raw).decode().rstrip("=")
    return "$pbkdf2-sha256$i=1000,l=32$%s$%s" % (enc(salt), enc(digest))


@pytest.fixture(scope="module")
def dom(server):
    name = unique("sem") + ".example.com"
    created = ok(server.jmap([["x:Domain/set", {"create": {"d": {"name": name, "dkimManagement": {"@type": "Manual"}}}}, "0"]]))
    return {"id": created["created"]["d"]["id"], "name": name}


def test_domain_tlds(server):
    good = {"a": unique("t") + ".test", "b": unique("t") + ".io", "c": unique("t") + ".de", "d": unique("t") + ".internal"}
    resp = ok(server.jmap([["x:Domain/set", {"create": dict(
        {k: {"name": v, "dkimManagement": {"@type": "Manual"}} for k, v in good.items()},
        bad={"name": "foo.invalidtld"}, worse={"name": "-x.example.com"})}, "0"]]))
    assert set(resp["created"]) == set(good)
    for key in ("bad", "worse"):
        assert resp["notCreated"][key] == {"type": "invalidPatch", "description": "Invalid domain name", "properties": ["name"]}


def test_domain_aliases_are_globally_unique(server, dom):
    alias = unique("alias") + ".example.com"
    resp = ok(server.jmap([["x:Domain/set", {"update": {dom["id"]: {"aliases": {alias.upper(): True}}}}, "0"],
                           ["x:Domain/set", {"create": {"x": {"name": alias}}}, "1"]]))
    assert dom["id"] in resp["updated"]
    clash = ok(server.jmap([["x:Domain/set", {"create": {"x": {"name": alias}}}, "1"]]))["notCreated"]["x"]
    assert clash["type"] == "primaryKeyViolation" and clash["objectId"] == {"object": "Domain", "id": dom["id"]}
    got = ok(server.jmap([["x:Domain/get", {"ids": [dom["id"]], "properties": ["aliases", "description", "catchAllAddress"]}, "0"]]))
    item = got["list"][0]
    assert item["aliases"] == {alias: True} and item["description"] is None and item["catchAllAddress"] is None


def test_email_addresses_unique_across_accounts_lists_and_aliases(server, dom):
    resp = ok(server.jmap([["x:Account/set", {"create": {"u": {
        "@type": "User", "name": "Owner", "domainId": dom["id"],
        "aliases": {"0": {"name": "Sales", "domainId": dom["id"]}}}}}, "0"],
        ["x:MailingList/set", {"create": {"l": {"name": "sales", "domainId": dom["id"]},
                                          "m": {"name": "owner", "domainId": dom["id"]},
                                          "n": {"name": "news", "domainId": dom["id"], "recipients": {"A@Example.com": True}}}}, "1"]]))
    owner = resp["created"]["u"]["id"]
    lists = ok(server.jmap([["x:MailingList/get", {"ids": None}, "0"]]))
    nots = ok(server.jmap([["x:MailingList/set", {"create": {"l": {"name": "sales", "domainId": dom["id"]}}}, "0"]]))["notCreated"]
    assert nots["l"]["type"] == "primaryKeyViolation" and nots["l"]["objectId"] == {"object": "Account", "id": owner}
    news = [m for m in lists["list"] if m["name"] == "news"]
    assert news and news[0]["emailAddress"] == "news@" + dom["name"] and news[0]["recipients"] == {"a@example.com": True}


def test_group_and_role_links_block_destroy(server, dom):
    resp = server.jmap([
        ["x:Role/set", {"create": {"r": {"description": unique("Auditors "), "enabledPermissions": {"sysDomainGet": True}}}}, "0"],
        ["x:Account/set", {"create": {
            "g": {"@type": "Group", "name": unique("grp"), "domainId": dom["id"]},
            "u": {"@type": "User", "name": unique("member"), "domainId": dom["id"], "memberGroupIds": {"#g": True},
                  "roles": {"@type": "Custom", "roleIds": {"#r": True}}}}}, "1"]], created_ids={})
    role_id = ok(resp, 0)["created"]["r"]["id"]
    acc = ok(resp, 1)["created"]
    group_id, user_id = acc["g"]["id"], acc["u"]["id"]
    assert resp["createdIds"] == {"r": role_id, "g": group_id, "u": user_id}
    linked = ok(server.jmap([["x:Account/set", {"destroy": [group_id]}, "0"]]))["notDestroyed"][group_id]
    assert linked == {"type": "objectIsLinked", "objectId": {"object": "Account", "id": group_id},
                      "linkedObjects": [{"object": "Account", "id": user_id}]}
    linked = ok(server.jmap([["x:Role/set", {"destroy": [role_id]}, "0"]]))["notDestroyed"][role_id]
    assert linked["type"] == "objectIsLinked" and {"object": "Account", "id": user_id} in linked["linkedObjects"]
    # JSON-pointer set membership: remove the group and the role, then both can go
    resp = server.jmap([["x:Account/set", {"update": {user_id: {"memberGroupIds/" + group_id: None,
                                                                "roles": {"@type": "User"}}}}, "0"],
                        ["x:Account/set", {"destroy": [group_id]}, "1"],
                        ["x:Role/set", {"destroy": [role_id]}, "2"]])
    assert user_id in ok(resp, 0)["updated"]
    assert ok(resp, 1)["destroyed"] == [group_id] and ok(resp, 2)["destroyed"] == [role_id]


def test_member_of_user_is_invalid_foreign_key(server, dom):
    resp = ok(server.jmap([["x:Account/set", {"create": {
        "a": {"@type": "User", "name": unique("a"), "domainId": dom["id"]},
        "b": {"@type": "User", "name": unique("b"), "domainId": dom["id"], "memberGroupIds": {"#a": True}}}}, "0"]]))
    assert "a" in resp["created"]
    assert resp["notCreated"]["b"]["type"] == "invalidForeignKey"
    assert "notUpdated" not in resp and "updated" not in resp and "destroyed" not in resp  # empty members omitted


def test_unresolvable_creation_reference_fails_the_method(server, dom):
    name = unique("c")
    resp = server.jmap([["x:Account/set", {"create": {
        "ok": {"@type": "User", "name": name + "x", "domainId": dom["id"]},
        "c": {"@type": "User", "name": name, "domainId": dom["id"], "memberGroupIds": {"#missing": True}}}}, "0"],
        ["x:Account/query", {"filter": {"name": name + "x"}}, "1"]])
    assert err(resp)["type"] == "invalidResultReference"
    assert ok(resp, 1)["ids"] == []  # nothing of the failed method was written


def test_result_references_only_to_get_changes_query(server, dom):
    resp = server.jmap([["x:Domain/set", {"update": {dom["id"]: {"description": "ref"}}}, "0"],
                        ["x:Domain/get", {"#ids": {"resultOf": "0", "name": "x:Domain/set", "path": "/updated"}}, "1"]])
    assert err(resp, 1)["type"] == "invalidResultReference"


def test_pointer_patches_on_lists_and_sets(server, dom):
    grp = ok(server.jmap([["x:Account/set", {"create": {"g": {"@type": "Group", "name": unique("g"), "domainId": dom["id"]}}}, "0"]]))
    gid = grp["created"]["g"]["id"]
    uid = ok(server.jmap([["x:Account/set", {"create": {"u": {
        "@type": "User", "name": unique("p"), "domainId": dom["id"],
        "aliases": {"0": {"name": unique("x"), "domainId": dom["id"]}, "1": {"name": unique("y"), "domainId": dom["id"]}}}}}, "0"]]))["created"]["u"]["id"]
    ok(server.jmap([["x:Account/set", {"update": {uid: {"memberGroupIds/" + gid: True, "aliases/0": None,
                                                        "aliases/0/description": "kept"}}}, "0"]]))
    got = ok(server.jmap([["x:Account/get", {"ids": [uid], "properties": ["memberGroupIds", "aliases"]}, "0"]]))["list"][0]
    assert got["memberGroupIds"] == {gid: True}
    assert list(got["aliases"]) == ["0"] and got["aliases"]["0"]["description"] == "kept"
    bad = ok(server.jmap([["x:Account/set", {"update": {uid: {"nosuch/path": 1, }}}, "0"]]))["notUpdated"][uid]
    assert bad["type"] == "invalidPatch"
    bad = ok(server.jmap([["x:Account/set", {"update": {uid: {"emailAddress": "x@y.com"}}}, "0"]]))["notUpdated"][uid]
    assert bad["type"] == "invalidPatch"


def test_listener_names_unique_and_immutable(server):
    name = unique("lst")
    resp = ok(server.jmap([["x:NetworkListener/set", {"create": {
        "a": {"name": name, "bind": {"127.0.0.1:2587": True}, "protocol": "smtp", "tlsImplicit": False},
        "b": {"name": name, "bind": {"127.0.0.1:2588": True}},
        "c": {"name": unique("nobind")}}}, "0"]]))
    lid = resp["created"]["a"]["id"]
    assert resp["notCreated"]["b"]["type"] == "primaryKeyViolation"
    assert resp["notCreated"]["b"]["objectId"] == {"object": "NetworkListener", "id": lid}
    assert resp["notCreated"]["c"]["type"] == "validationFailed"
    err_ = ok(server.jmap([["x:NetworkListener/set", {"update": {lid: {"name": unique("renamed")}}}, "0"]]))["notUpdated"][lid]
    assert err_["type"] == "invalidPatch" and err_["description"] == "Cannot modify read-only property"
    ok(server.jmap([["x:NetworkListener/set", {"destroy": [lid]}, "0"]]))


def test_default_domain_cannot_be_destroyed(server, dom):
    before = ok(server.jmap([["x:SystemSettings/get", {"ids": ["singleton"], "properties": ["defaultDomainId"]}, "0"]]))["list"][0]
    new_domain = {"name": unique("def") + ".example.com", "dkimManagement": {"@type": "Manual"}}
    other = ok(server.jmap([["x:Domain/set", {"create": {"d": new_domain}}, "0"]]))["created"]["d"]["id"]
    ok(server.jmap([["x:SystemSettings/set", {"update": {"singleton": {"defaultDomainId": other}}}, "0"]]))
    try:
        linked = ok(server.jmap([["x:Domain/set", {"destroy": [other]}, "0"]]))["notDestroyed"][other]
        assert linked["type"] == "objectIsLinked" and {"object": "SystemSettings", "id": "singleton"} in linked["linkedObjects"]
    finally:
        if before.get("defaultDomainId"):
            ok(server.jmap([["x:SystemSettings/set", {"update": {"singleton": {"defaultDomainId": before["defaultDomainId"]}}}, "0"]]))


def test_passwords_hashes_and_masking(server, dom):
    local = unique("pw")
    hashed = pbkdf2("Hashed-Passw0rd!")
    resp = ok(server.jmap([["x:Account/set", {"create": {
        "h": {"@type": "User", "name": local, "domainId": dom["id"], "roles": {"@type": "Admin"},
              "credentials": {"0": {"@type": "Password", "secret": hashed}}},
        "p": {"@type": "User", "name": local + "b", "domainId": dom["id"], "roles": {"@type": "Admin"},
              "credentials": {"0": {"@type": "Password", "secret": "Plain-Passw0rd!"}}},
        "two": {"@type": "User", "name": local + "c", "domainId": dom["id"],
                "credentials": {"0": {"@type": "Password", "secret": hashed}, "1": {"@type": "Password", "secret": hashed}}},
        "api": {"@type": "User", "name": local + "d", "domainId": dom["id"],
                "credentials": {"0": {"@type": "ApiKey", "description": "x"}}},
        "lower": {"@type": "User", "name": local + "e", "domainId": dom["id"],
                  "credentials": {"0": {"@type": "Password", "secret": "alllowercaseletters"}}}}}, "0"]]))
    assert set(resp["created"]) == {"h", "p"}
    assert resp["notCreated"]["two"]["type"] == "invalidProperties"
    assert resp["notCreated"]["api"]["type"] == "invalidProperties"
    assert resp["notCreated"]["lower"] == dict(resp["notCreated"]["lower"], type="invalidProperties", properties=["secret"])
    for user, password in ((local, "Hashed-Passw0rd!"), (local + "b", "Plain-Passw0rd!")):
        header = {"Authorization": server.auth_header("%s@%s" % (user.upper(), dom["name"]), password)}
        assert server.raw("GET", "/jmap/session", headers=header)[0] == 200
    uid = resp["created"]["p"]["id"]
    ok(server.jmap([["x:Account/set", {"update": {uid: {"credentials": {"0": {"@type": "Password", "secret": "****"}}}}}, "0"]]))
    header = {"Authorization": server.auth_header("%sb@%s" % (local, dom["name"]), "Plain-Passw0rd!")}
    assert server.raw("GET", "/jmap/session", headers=header)[0] == 200
    got = ok(server.jmap([["x:Account/get", {"ids": [uid], "properties": ["credentials"]}, "0"]]))["list"][0]
    assert got["credentials"]["0"]["secret"] == "****"


def test_actions_and_tasks(server, dom):
    resp = server.jmap([["x:Action/set", {"create": {"a": {"@type": "ReloadSettings"}}}, "0"],
                        ["x:Action/get", {"ids": ["anything"]}, "1"],
                        ["x:Action/query", {}, "2"],
                        ["x:Task/set", {"create": {"t": {"@type": "DestroyAccount"}}}, "3"]])
    assert "a" in ok(resp, 0)["created"]
    assert ok(resp, 1)["notFound"] == ["anything"] and ok(resp, 1)["list"] == []
    assert err(resp, 2)["type"] == "invalidArguments"
    assert ok(resp, 3)["notCreated"]["t"]["type"] == "forbidden"


@emulator_only
def test_dkim_task_rotates_keys(server, dom):
    first = ok(server.jmap([["x:Task/set", {"create": {"t": {"@type": "DkimManagement", "domainId": dom["id"]}}}, "0"],
                            ["x:DkimSignature/query", {"filter": {"domainId": dom["id"]}}, "1"]]), 1)["ids"]
    assert len(first) == 2
    ok(server.jmap([["x:Task/set", {"create": {"t": {"@type": "DkimManagement", "domainId": dom["id"]}}}, "0"]]))
    sigs = ok(server.jmap([["x:DkimSignature/query", {"filter": {"domainId": dom["id"]}}, "0"],
                           ["x:DkimSignature/get", {"#ids": {"resultOf": "0", "name": "x:DkimSignature/query", "path": "/ids"},
                                                    "properties": ["stage", "selector"]}, "1"]]), 1)["list"]
    assert sorted(s["stage"] for s in sigs) == ["active", "active", "retiring", "retiring"]
    zone = ok(server.jmap([["x:Domain/get", {"ids": [dom["id"]], "properties": ["dnsZoneFile"]}, "0"]]))["list"][0]["dnsZoneFile"]
    for record in (" IN MX ", "v=spf1 mx -all", "._domainkey.", "v=DMARC1", "_smtp._tls.", "v=TLSRPTv1", "mta-sts.",
                   "v=STSv1", "_imaps._tcp.", "_submissions._tcp.", "_jmap._tcp.", "autoconfig.", "_ua-auto-config."):
        assert record in zone, record
    # a DKIM signature with an unusable key is refused; a domain with signatures cannot be destroyed
    bad = ok(server.jmap([["x:DkimSignature/set", {"create": {"k": {
        "@type": "Dkim1RsaSha256", "domainId": dom["id"], "selector": "bad",
        "privateKey": {"@type": "Text", "secret": "not a key"}}}}, "0"]]))["notCreated"]["k"]
    assert bad["type"] == "invalidProperties"
    linked = ok(server.jmap([["x:Domain/set", {"destroy": [dom["id"]]}, "0"]]))["notDestroyed"][dom["id"]]
    assert {l["object"] for l in linked["linkedObjects"]} >= {"DkimSignature"}


def test_result_references_over_lists(server):
    names = [unique("ref") + ".example.org" for dummy in range(3)]
    creates = {str(i): {"name": n, "dkimManagement": {"@type": "Manual"}} for i, n in enumerate(names)}
    created = ok(server.jmap([["x:Domain/set", {"create": creates}, "0"]]))["created"]
    ids = [created[str(i)]["id"] for i in range(3)]
    resp = server.jmap([["x:Domain/get", {"ids": ids, "properties": ["name"]}, "g"],
                        ["x:Domain/set", {"#destroy": {"resultOf": "g", "name": "x:Domain/get", "path": "/list/*/id"}}, "d"],
                        ["x:Domain/get", {"#ids": {"resultOf": "nope", "name": "x:Domain/get", "path": "/ids"}}, "x"]])
    assert sorted(ok(resp, 1)["destroyed"]) == sorted(ids)
    assert err(resp, 2)["type"] == "invalidResultReference"
    assert resp["methodResponses"][2][2] == "x"


def test_set_limits_and_singleton_create(server):
    max_set = server.limits()[2]
    too_many = err(server.jmap([["x:Domain/set", {"destroy": ["a%d" % i for i in range(max_set + 1)]}, "0"]]))
    assert too_many["type"] == "requestTooLarge"
    resp = ok(server.jmap([["x:SpamSettings/set", {"create": {"s": {"scoreSpam": 7}}}, "0"],
                           ["x:SpamSettings/get", {"ids": None, "properties": ["scoreSpam", "enable"]}, "1"]]))
    assert resp["created"]["s"]["id"] == "singleton"
    assert server.jmap([["x:SpamSettings/get", {"ids": None, "properties": ["scoreSpam"]}, "1"]])["methodResponses"][0][1]["list"][0]["scoreSpam"] == 7
    resp = server.jmap([["x:SpamSettings/query", {}, "0"], ["x:Domain/changes", {"sinceState": "n"}, "1"],
                        ["x:NoSuchThing/get", {}, "2"]])
    assert [r[1]["type"] for r in resp["methodResponses"]] == ["unknownMethod"] * 3


def test_query_semantics(server, dom):
    tag = unique("Qry")
    users = {"u%d" % i: {"@type": "User", "name": "%s%d" % (tag, i), "domainId": dom["id"],
                         "description": "Query Person %s" % ("Even" if i % 2 == 0 else "Odd")} for i in range(6)}
    users["g"] = {"@type": "Group", "name": tag + "grp", "domainId": dom["id"]}
    ok(server.jmap([["x:Account/set", {"create": users}, "0"]]))
    resp = server.jmap([
        ["x:Account/query", {"filter": {"domainId": dom["id"], "@type": "Group"}}, "0"],
        ["x:Account/query", {"filter": {"domainId": dom["id"], "text": "person even"}, "calculateTotal": True}, "1"],
        ["x:Account/query", {"filter": {"domainId": dom["id"], "text": "pers"}}, "2"],
        ["x:Account/query", {"filter": {"domainId": dom["id"], "@type": "User"},
                             "sort": [{"property": "name", "isAscending": False}], "position": -2}, "3"],
        ["x:Account/query", {"filter": {"description": "x"}}, "4"],
        ["x:Account/query", {"sort": [{"property": "description"}]}, "5"],
        ["x:Account/query", {"filter": {"domainId": dom["id"], "@type": "User"}, "limit": 2, "calculateTotal": True}, "6"]])
    assert len(ok(resp, 0)["ids"]) >= 1
    assert ok(resp, 1)["total"] == 3
    assert ok(resp, 2)["ids"] == []
    assert ok(resp, 3)["position"] >= 0 and len(ok(resp, 3)["ids"]) == 2
    assert err(resp, 4)["type"] == "unsupportedFilter"
    assert err(resp, 5)["type"] == "unsupportedSort"
    page = ok(resp, 6)
    assert len(page["ids"]) == 2 and page["limit"] == 2 and page["total"] >= 6
    query = {"filter": {"domainId": dom["id"], "@type": "User"}, "sort": [{"property": "name", "isAscending": True}]}
    get = {"#ids": {"resultOf": "0", "name": "x:Account/query", "path": "/ids"}, "properties": ["name"]}
    names = ok(server.jmap([["x:Account/query", query, "0"], ["x:Account/get", get, "1"]]), 1)["list"]
    ordered = [n["name"] for n in names]
    assert ordered == sorted(ordered)


@emulator_only
def test_stats_by_type(server, dom):
    ok(server.jmap([["x:Account/set", {"create": {"u": {"@type": "User", "name": unique("st"), "domainId": dom["id"]}}}, "0"]]))
    stats = server.stats()
    assert stats["objectsByType"]["x:Account"]["created"] >= 1
    assert stats["methods"]["x:Account/set"] >= 1 and stats["http"]["/jmap"] >= 1
    assert server.raw("GET", "/emulator/stats", auth=False)[0] == 401
    server.reset_stats()
    assert server.stats()["objects"] == {}
