"""x:<Type>/get, /set, /query semantics and SetErrors (contract sections 2 and 6.2-6.5)."""
import base64
import uuid

import pytest


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def one(resp, index=0):
    name, args, dummy = resp["methodResponses"][index]
    assert name != "error", args
    return args


@pytest.fixture(scope="module")
def domain(server):
    name = unique("contract") + ".example.com"
    created = one(server.jmap([["x:Domain/set", {"create": {"d": {"name": name.upper()}}}, "0"]]))["created"]
    return {"id": created["d"]["id"], "name": name}


def test_domain_name_is_normalised_and_unique(server, domain):
    got = one(server.jmap([["x:Domain/get", {"ids": [domain["id"]], "properties": ["name"]}, "0"]]))["list"][0]
    assert got["name"] == domain["name"]
    err = one(server.jmap([["x:Domain/set", {"create": {"dup": {"name": domain["name"]}}}, "0"]]))["notCreated"]["dup"]
    assert err["type"] == "primaryKeyViolation"
    assert err["objectId"] == {"object": "Domain", "id": domain["id"]}


def test_invalid_domain_name(server):
    err = one(server.jmap([["x:Domain/set", {"create": {"bad": {"name": "no spaces allowed.example.com"}}}, "0"]]))
    assert err["notCreated"]["bad"]["type"] == "invalidPatch"


def test_unknown_and_server_set_properties_are_invalid_patch(server):
    resp = one(server.jmap([["x:Domain/set", {"create": {
        "a": {"name": unique("a") + ".example.com", "noSuchProperty": 1},
        "b": {"name": unique("b") + ".example.com", "createdAt": "2026-01-01T00:00:00Z"}}}, "0"]]))
    assert resp["notCreated"]["a"]["type"] == "invalidPatch" and resp["notCreated"]["a"]["properties"] == ["noSuchProperty"]
    assert resp["notCreated"]["b"]["type"] == "invalidPatch"


def test_required_property_missing(server):
    err = one(server.jmap([["x:Domain/set", {"create": {"x": {"description": "no name"}}}, "0"]]))["notCreated"]["x"]
    assert err["type"] == "validationFailed"
    assert {"type": "Required", "property": "name"} in err["validationErrors"]


def test_accounts_reference_creation_ids_and_mask_secrets(server, domain):
    resp = server.jmap([
        ["x:Account/set", {"create": {
            "grp": {"@type": "Group", "name": "Team", "domainId": domain["id"]},
            "usr": {"@type": "User", "name": "Alice.Example", "domainId": domain["id"], "memberGroupIds": {"#grp": True},
                    "credentials": {"0": {"@type": "Password", "secret": "Corr3ct-Horse-Battery!"}}}}}, "0"],
        ["x:Account/query", {"filter": {"name": "alice.example", "domainId": domain["id"]}}, "q"],
        ["x:Account/get", {"#ids": {"resultOf": "q", "name": "x:Account/query", "path": "/ids"}}, "1"],
    ])
    created = one(resp)["created"]
    user = one(resp, 2)["list"]
    assert user, resp
    user = user[0] if isinstance(user, list) else user
    assert user["name"] == "alice.example"
    assert user["emailAddress"] == "alice.example@" + domain["name"]
    assert user["memberGroupIds"] == {created["grp"]["id"]: True}
    assert user["credentials"]["0"]["secret"] == "****"
    assert isinstance(user["credentials"], dict) and list(user["credentials"]) == ["0"]


def test_duplicate_email_across_groups_and_users(server, domain):
    err = one(server.jmap([["x:Account/set", {"create": {"u": {"@type": "User", "name": "team", "domainId": domain["id"]}}}, "0"]]))
    assert err["notCreated"]["u"]["type"] == "primaryKeyViolation"


def test_invalid_foreign_key(server):
    err = one(server.jmap([["x:Account/set", {"create": {"u": {"@type": "User", "name": "ghost", "domainId": "zzzz"}}}, "0"]]))
    assert err["notCreated"]["u"]["type"] == "invalidForeignKey"
    assert err["notCreated"]["u"]["objectId"] == {"object": "Domain", "id": "zzzz"}


def test_weak_plaintext_password_is_refused(server, domain):
    err = one(server.jmap([["x:Account/set", {"create": {"u": {
        "@type": "User", "name": "weak", "domainId": domain["id"],
        "credentials": {"0": {"@type": "Password", "secret": "short"}}}}}, "0"]]))["notCreated"]["u"]
    assert err["type"] == "invalidProperties" and err["properties"] == ["secret"]


def test_domain_in_use_cannot_be_destroyed(server, domain):
    err = one(server.jmap([["x:Domain/set", {"destroy": [domain["id"]]}, "0"]]))["notDestroyed"][domain["id"]]
    assert err["type"] == "objectIsLinked"
    assert any(link["object"] == "Account" for link in err["linkedObjects"])


def test_update_with_json_pointer_and_unchanged_update(server, domain):
    resp = one(server.jmap([["x:Account/query", {"filter": {"name": "alice.example", "domainId": domain["id"]}}, "0"]]))
    (user_id,) = resp["ids"]
    upd = one(server.jmap([["x:Account/set", {"update": {user_id: {"description": "Alice", "quotas/maxDiskQuota": 1048576}}}, "0"]]))
    assert user_id in upd["updated"]
    got = one(server.jmap([["x:Account/get", {"ids": [user_id], "properties": ["description", "quotas", "credentials"]}, "0"]]))["list"][0]
    assert got["description"] == "Alice" and got["quotas"]["maxDiskQuota"] == 1048576
    # writing the masked secret back keeps the old password
    keep = one(server.jmap([["x:Account/set", {"update": {user_id: {"credentials/0/secret": "****"}}}, "0"]]))
    assert user_id in keep["updated"]


def test_account_type_cannot_change(server, domain):
    (group_id,) = one(server.jmap([["x:Account/query", {"filter": {"name": "team", "domainId": domain["id"]}}, "0"]]))["ids"]
    err = one(server.jmap([["x:Account/set", {"update": {group_id: {"@type": "User"}}}, "0"]]))["notUpdated"][group_id]
    assert err["type"] == "invalidProperties"


def test_update_and_destroy_same_id_is_will_destroy(server, domain):
    created = one(server.jmap([["x:Account/set", {"create": {"t": {"@type": "User", "name": "temp", "domainId": domain["id"]}}}, "0"]]))
    tid = created["created"]["t"]["id"]
    resp = one(server.jmap([["x:Account/set", {"update": {tid: {"description": "x"}}, "destroy": [tid]}, "0"]]))
    assert resp["notUpdated"][tid]["type"] == "willDestroy"
    assert resp["destroyed"] == [tid]
    assert one(server.jmap([["x:Account/set", {"destroy": [tid]}, "0"]]))["notDestroyed"][tid]["type"] == "notFound"


def test_query_paging_with_anchor_and_filters(server):
    names = sorted(unique("page") + ".example.org" for dummy in range(7))
    one(server.jmap([["x:Domain/set", {"create": {"n%d" % i: {"name": n} for i, n in enumerate(names)}}, "0"]]))
    everything = one(server.jmap([["x:Domain/query", {"calculateTotal": True}, "0"]]))
    assert everything["total"] >= 7 and everything["queryState"] == "n"
    first = one(server.jmap([["x:Domain/query", {"limit": 3, "sort": [{"property": "id", "isAscending": True}]}, "0"]]))
    assert len(first["ids"]) == 3 and first["limit"] == 3
    nxt = one(server.jmap([["x:Domain/query", {"anchor": first["ids"][-1], "anchorOffset": 1, "limit": 3,
                                               "sort": [{"property": "id", "isAscending": True}]}, "0"]]))
    assert not set(first["ids"]) & set(nxt["ids"])
    exact = one(server.jmap([["x:Domain/query", {"filter": {"name": names[0]}}, "0"]]))
    assert len(exact["ids"]) == 1
    resp = server.jmap([["x:Domain/query", {"filter": {"operator": "OR", "conditions": [{"name": "a"}]}}, "0"],
                        ["x:Domain/query", {"filter": {"isEnabled": True}}, "1"],
                        ["x:Domain/query", {"anchor": "doesnotexist"}, "2"]])["methodResponses"]
    assert [r[1]["type"] for r in resp] == ["unsupportedFilter", "unsupportedFilter", "anchorNotFound"]


def test_singletons(server):
    got = one(server.jmap([["x:MtaSts/get", {"ids": None}, "0"]]))["list"][0]
    assert got["id"] == "singleton"
    upd = one(server.jmap([["x:MtaSts/set", {"update": {"singleton": {"mode": "enforce"}}}, "0"]]))
    assert "singleton" in upd["updated"]
    assert one(server.jmap([["x:MtaSts/get", {"ids": ["singleton"]}, "0"]]))["list"][0]["mode"] == "enforce"
    err = one(server.jmap([["x:MtaSts/set", {"destroy": ["singleton"]}, "0"]]))["notDestroyed"]["singleton"]
    assert err["type"] == "singleton"
    assert one(server.jmap([["x:MtaSts/set", {"update": {"other": {"mode": "testing"}}}, "0"]]))["notUpdated"]["other"]["type"] == "notFound"


def test_created_ids_carry_across_requests(server):
    name = unique("cid") + ".example.net"
    first = server.jmap([["x:Domain/set", {"create": {"dom": {"name": name}}}, "0"]], created_ids={})
    assert "dom" in first["createdIds"]
    second = server.jmap([["x:Account/set", {"create": {"u": {"@type": "User", "name": "carol", "domainId": "#dom"}}}, "0"]],
                         created_ids=first["createdIds"])
    assert "u" in one(second)["created"]
    assert "createdIds" in second
    assert "createdIds" not in server.jmap([["x:Domain/query", {}, "0"]])


def test_get_limits(server):
    max_get = server.limits()[1]
    resp = server.jmap([["x:Domain/get", {"ids": ["a"] * (max_get + 1)}, "0"]])["methodResponses"][0]
    assert resp[0] == "error" and resp[1]["type"] == "requestTooLarge"


def test_default_objects_exist(server):
    listeners = one(server.jmap([["x:NetworkListener/get", {"ids": None, "properties": ["name", "bind"]}, "0"]]))["list"]
    names = {item["name"] for item in listeners}
    assert {"smtp", "submissions", "imaps", "https", "http"} <= names
    assert all(isinstance(item["bind"], dict) for item in listeners)
    roles = one(server.jmap([["x:Role/query", {}, "0"]]))["ids"]
    assert len(roles) >= 4


def test_dkim_signatures_and_zone_file(server):
    name = unique("dkim") + ".example.com"
    dom_id = one(server.jmap([["x:Domain/set", {"create": {"d": {"name": name}}}, "0"]]))["created"]["d"]["id"]
    sigs = one(server.jmap([["x:DkimSignature/query", {"filter": {"domainId": dom_id}}, "0"]]))["ids"]
    if not sigs:
        pytest.skip("the server creates DKIM keys asynchronously (contract open question 4)")
    got = one(server.jmap([["x:DkimSignature/get", {"ids": sigs}, "0"]]))["list"]
    zone = one(server.jmap([["x:Domain/get", {"ids": [dom_id], "properties": ["dnsZoneFile"]}, "0"]]))["list"][0]["dnsZoneFile"]
    assert {s["@type"] for s in got} == {"Dkim1RsaSha256", "Dkim1Ed25519Sha256"}
    assert all(s["privateKey"]["secret"] == "****" for s in got)
    # publicKey is the bare base64 DKIM p= value: DER SubjectPublicKeyInfo (RSA), the raw 32-byte key (Ed25519)
    keys = {s["@type"]: base64.b64decode(s["publicKey"], validate=True) for s in got}
    assert len(keys["Dkim1Ed25519Sha256"]) == 32 and keys["Dkim1RsaSha256"][:1] == b"\x30"
    assert all("p=" + s["publicKey"] in zone.replace('" "', "") for s in got)
    assert " MX " in zone and "v=spf1" in zone and "_dmarc." + name in zone
    assert all(s["selector"] + "._domainkey." + name in zone for s in got)
    task = one(server.jmap([["x:Task/set", {"create": {"t": {"@type": "DkimManagement", "domainId": dom_id}}}, "0"]]))
    assert "t" in task["created"]
