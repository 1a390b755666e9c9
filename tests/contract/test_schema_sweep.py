"""Whole-schema sweeps (issue 8): every object type the server's own schema lists, singletons and collections (every
variant), is read, written back unchanged (accepted, zero changes) and updated one property of each kind it has
(boolean, integer, duration, expression, enum, list, nested object - partial), then read back equal. The schema comes
from the server (`GET /api/schema`), so the same sweep runs against a real Stalwart with STALWART_URL. Types the
server manages itself are not skipped: each has an asserted expectation (EXPECTED below) and is counted."""
import gzip
import json
import time
import urllib.request

import pytest

RECOVERY_ACCOUNT = "d333333"
# Types whose contract is something other than a round trip, with the behaviour asserted instead.
EXPECTED = {
    "x:Bootstrap": "forbidden outside bootstrap mode",
    "x:ClusterNode": "read-only: /set is forbidden",
    "x:Action": "write-only: created, never readable",
    "x:Task": "only client task types may be created; tasks leave the queue when run",
}
# Singletons the sweep writes back unchanged but does not mutate: writing x:DataStore rewrites this node's config.json.
NO_MUTATION = {"x:DataStore": "rewrites config.json (covered by test_lifecycle)"}
KINDS = ("boolean", "integer", "duration", "expression", "enum", "list", "nested")
SOCKET = "127.0.0.1:1"


def ok(resp, index=0):
    name, args, dummy = resp["methodResponses"][index]
    assert name != "error", (name, args)
    return args


class Schema:
    def __init__(self, data):
        self.objects, self.schemas, self.fields = data["objects"], data["schemas"], data["fields"]
        self.enums = {name: [v["name"] for v in values] for name, values in data["enums"].items()}

    def types(self, kind):
        return sorted(t for t, info in self.objects.items() if t.startswith("x:") and info.get("type") == kind)

    def variants(self, name):
        sch = self.schemas.get(name)
        if sch is None:
            return [(None, name if name in self.fields else None)]
        if sch["type"] == "single":
            return [(None, sch["schemaName"])]
        return [(v["name"], v.get("schemaName")) for v in sch["variants"]]

    def multi(self, name):
        return self.schemas.get(name, {}).get("type") == "multiple"

    def props(self, name, value):
        variant = value.get("@type") if isinstance(value, dict) and self.multi(name) else None
        field_schema = dict(self.variants(name)).get(variant)
        info = self.fields.get(field_schema) or {}
        return info.get("properties", {}), info.get("defaults", {})

    def strip_server_set(self, name, value):
        """A /get result as a client writes it back: without id and server-set properties, at every level."""
        if not isinstance(value, dict):
            return value
        props, dummy = self.props(name, value)
        out = {}
        for key, item in value.items():
            spec = props.get(key)
            if key == "id" or (spec and spec.get("update") == "serverSet"):
                continue
            ptype = (spec or {}).get("type", {})
            if ptype.get("type") == "object":
                item = self.strip_server_set(ptype["objectName"], item)
            elif ptype.get("type") == "objectList" and isinstance(item, dict):
                item = {k: self.strip_server_set(ptype["objectName"], v) for k, v in item.items()}
            out[key] = item
        return out


@pytest.fixture(scope="module")
def schema(server):
    req = urllib.request.Request(server.url + "/api/schema", headers={"Authorization": server.auth_header()})
    with urllib.request.urlopen(req, timeout=60) as resp:
        raw = resp.read()
    return Schema(json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw))


class Generator:
    """Minimal valid values for required properties, from the schema's types and formats."""

    def __init__(self, schema, refs):
        self.schema, self.refs, self.n = schema, refs, 0
        self.run = "%x" % (int(time.time() * 1000) % 0xFFFFF)

    def unique(self, prefix="s", limit=None):
        self.n += 1
        text = "%s%s%x" % (prefix, self.run, self.n)
        return text[-limit:] if limit else text

    def value(self, obj_type, prop, ptype):
        kind, fmt = ptype["type"], ptype.get("format")
        if (obj_type, prop) == ("x:Domain", "name"):
            return self.unique() + ".example.com"
        if kind == "string":
            return {"emailAddress": "%s@example.com" % self.unique(), "uri": "https://%s.example.com/" % self.unique(),
                    "ipAddress": "192.0.2.1", "ipNetwork": "192.0.2.0/24", "socketAddress": SOCKET,
                    "secret": "Sweep-Secret-%s!" % self.unique()}.get(fmt) or self.unique(limit=ptype.get("maxLength", ptype.get("max")))
        if kind == "number":
            return max(1, ptype.get("min", 1))
        if kind == "enum":
            return self.schema.enums[ptype["enumName"]][0]
        if kind == "blobId":
            return self.unique("blob")
        if kind == "utcDateTime":
            return "2031-01-01T00:00:00Z"
        if kind == "objectId":
            return self.refs[ptype["objectName"].split("/")[0]]
        if kind == "set":
            return {self.value(obj_type, prop, ptype["class"]): True}
        if kind == "object" and ptype["objectName"] == "x:Expression":
            return {"match": {}, "else": "true"}
        if kind == "object" and ptype["objectName"] == "x:Rate":
            return {"count": 10, "period": 60000}  # the schema's own Rate defaults (0, 0) are below its minimums
        if kind == "object":
            return self.minimal(ptype["objectName"], None)
        if kind == "objectList":
            return {"0": self.minimal(ptype["objectName"], None)}
        raise AssertionError("no generator for %s.%s %r" % (obj_type, prop, ptype))

    def minimal(self, name, variant):
        """An object with only its required properties (non-nullable, no default, not server-set)."""
        body = {"@type": variant or self.schema.variants(name)[0][0]} if self.schema.multi(name) else {}
        props, defaults = self.schema.props(name, body)
        for prop, spec in props.items():
            ptype = spec["type"]
            if spec.get("update") == "serverSet" or prop in defaults or ptype.get("nullable"):
                continue
            if ptype["type"] in ("boolean", "map") or (ptype["type"] in ("set", "objectList") and not ptype.get("minItems")):
                continue
            body[prop] = self.value(name, prop, ptype)
        if name == "x:DkimSignature":
            body["privateKey"] = {"@type": "Text", "secret": private_key_pem(body["@type"])}
        return body


def private_key_pem(algorithm):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    key = ed25519.Ed25519PrivateKey.generate() if "Ed25519" in algorithm else rsa.generate_private_key(65537, 2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def classify(ptype):
    kind, fmt = ptype["type"], ptype.get("format")
    if kind == "boolean":
        return "boolean"
    if kind == "number" and fmt == "duration":
        return "duration"
    if kind == "number" and fmt in ("integer", "unsignedInteger", "size"):
        return "integer"
    if kind == "enum":
        return "enum"
    if kind == "objectList":
        return "list"
    if kind == "object":
        return "expression" if ptype["objectName"] == "x:Expression" else "nested"
    return None


def changed_value(schema, gen, obj_type, prop, ptype, current):
    """(patch value, expected value read back) for one property, or None when no different valid value exists."""
    kind = classify(ptype)
    if kind == "boolean":
        return (not current,) * 2
    if kind in ("integer", "duration"):
        step = 1000 if kind == "duration" else 1
        new = (current if isinstance(current, int) else ptype.get("min", 0)) + step
        if "max" in ptype and new > ptype["max"]:
            new = max(ptype.get("min", 0), (current or 0) - step)
        return None if new == current else (new, new)
    if kind == "enum":
        others = [v for v in schema.enums[ptype["enumName"]] if v != current]
        return (others[0],) * 2 if others else None
    if kind == "expression":
        if not isinstance(current, dict) or current.get("else") is None:
            return None
        new = {"match": dict(current.get("match") or {}), "else": current["else"]}
        new["match"][str(len(new["match"]))] = {"if": "false", "then": current["else"]}
        return new, new
    if kind == "list":
        current = current or {}
        if current and len(current) > ptype.get("minItems", 0):
            keep = {str(i): current[k] for i, k in enumerate(sorted(current, key=int)[:-1])}
            return keep, keep
        entry = gen.minimal(ptype["objectName"], None)
        return {"0": entry}, None  # read back compared on the generated keys only
    if kind == "nested":
        if schema.multi(ptype["objectName"]) or not isinstance(current, dict):
            return None
        props, dummy = schema.props(ptype["objectName"], current)
        for sub, spec in sorted(props.items()):
            if spec.get("update") != "mutable" or sub not in current:
                continue
            inner = classify(spec["type"])
            if inner in ("boolean", "integer", "duration", "enum"):
                found = changed_value(schema, gen, obj_type, sub, spec["type"], current[sub])
                if found:
                    return {sub: found[0]}, dict(current, **{sub: found[1]})
        return None
    return None


def plan_updates(schema, gen, obj_type, current):
    """{kind: (property, patch value, expected)} - the first mutable property of each kind that can change."""
    props, dummy = schema.props(obj_type, current)
    out = {}
    for prop, spec in sorted(props.items()):
        kind = classify(spec["type"])
        if kind is None or kind in out or spec.get("update") != "mutable" or prop not in current:
            continue
        found = changed_value(schema, gen, obj_type, prop, spec["type"], current[prop])
        if found:
            out[kind] = (prop, found[0], found[1])
    return out


def subset_equal(expected, actual):
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and subset_equal(v, actual[k]) for k, v in expected.items())
    return expected == actual or (isinstance(expected, str) and actual == "****")  # secrets read back masked


def batched(server, calls):
    """Run calls 16 to a request (the session's maxCallsInRequest); return their responses in order."""
    limit = server.limits()[0]
    out = []
    for i in range(0, len(calls), limit):
        out.extend(server.jmap(calls[i:i + limit], created_ids={})["methodResponses"])
    return out


def get_args(obj_type, ids, account):
    args = {"ids": ids}
    if account:
        args["accountId"] = account
    return args


def roundtrip(server, schema, gen, targets, report):
    """targets: [(obj_type, id, accountId or None)]. Write back, compare, update each kind, compare; return failures."""
    failures = []
    got = batched(server, [["%s/get" % t, get_args(t, [i], a), str(n)] for n, (t, i, a) in enumerate(targets)])
    before = {}
    for (obj_type, obj_id, account), resp in zip(targets, got):
        if resp[0] == "error" or not resp[1]["list"]:
            failures.append("%s %s: /get %s" % (obj_type, obj_id, resp[1]))
            continue
        before[(obj_type, obj_id)] = resp[1]["list"][0]
    keys = list(before)
    writes = [["%s/set" % t, dict(get_args(t, None, a), update={i: schema.strip_server_set(t, before[(t, i)])}), str(n)]
              for n, (t, i, a) in enumerate(targets) if (t, i) in before]
    for (obj_type, obj_id), resp in zip(keys, batched(server, writes)):
        if resp[0] == "error" or obj_id not in (resp[1].get("updated") or {}):
            failures.append("%s: unchanged write-back refused: %s" % (obj_type, json.dumps(resp[1])[:400]))
    account_of = {(t, i): a for t, i, a in targets}
    after = batched(server, [["%s/get" % t, get_args(t, [i], account_of[(t, i)]), str(n)] for n, (t, i) in enumerate(keys)])
    for key, resp in zip(keys, after):
        if resp[0] == "error" or resp[1]["list"] != [before[key]]:
            failures.append("%s: write-back changed the object: %s" % (key[0], json.dumps(resp[1])[:400]))
    # one property of each kind
    plans = {key: plan_updates(schema, gen, key[0], before[key]) for key in keys if key[0] not in NO_MUTATION}
    calls, index = [], []
    for key, kinds in plans.items():
        for kind, (prop, patch, expected) in kinds.items():
            calls.append(["%s/set" % key[0], dict(get_args(key[0], None, account_of[key]), update={key[1]: {prop: patch}}), "u"])
            index.append((key, kind, prop, expected))
    for (key, kind, prop, expected), resp in zip(index, batched(server, calls)):
        report[kind] = report.get(kind, 0) + 1
        if resp[0] == "error" or key[1] not in (resp[1].get("updated") or {}):
            failures.append("%s.%s (%s): update refused: %s" % (key[0], prop, kind, json.dumps(resp[1])[:300]))
    reads = batched(server, [["%s/get" % k[0], get_args(k[0], [k[1]], account_of[k]), "r"] for k, kind, prop, e in index])
    for (key, kind, prop, expected), resp in zip(index, reads):
        value = resp[1]["list"][0].get(prop) if resp[0] != "error" and resp[1]["list"] else "<missing>"
        if expected is not None and value != expected:
            failures.append("%s.%s (%s): read back %s, expected %s"
                            % (key[0], prop, kind, json.dumps(value)[:200], json.dumps(expected)[:200]))
        elif expected is None and not (isinstance(value, dict) and len(value) == 1 and subset_equal(
                schema.strip_server_set(schema_of_list(schema, key[0], prop, before[key]), calls_patch(calls, index, key, prop)), value["0"])):
            failures.append("%s.%s (%s): list read back %s" % (key[0], prop, kind, json.dumps(value)[:200]))
    return failures, before


def schema_of_list(schema, obj_type, prop, body):
    props, dummy = schema.props(obj_type, body)
    return props[prop]["type"]["objectName"]


def calls_patch(calls, index, key, prop):
    for call, (k, kind, p, e) in zip(calls, index):
        if k == key and p == prop:
            return call[1]["update"][key[1]][prop]["0"]
    raise AssertionError("no call for %s.%s" % (key, prop))


@pytest.fixture(scope="module")
def fixtures(server, schema):
    """One Tenant, Domain, Account (User) and other referenced parents the minimal objects point at."""
    gen = Generator(schema, {})
    resp = server.jmap([["x:Domain/set", {"create": {"d": dict(gen.minimal("x:Domain", None), dkimManagement={"@type": "Manual"})}}, "0"]])
    gen.refs["x:Domain"] = ok(resp)["created"]["d"]["id"]
    resp = server.jmap([["x:Account/set", {"create": {"u": gen.minimal("x:Account", "User")}}, "0"]])
    gen.refs["x:Account"] = ok(resp)["created"]["u"]["id"]
    for parent in ("x:Tenant", "x:MtaVirtualQueue", "x:Trace"):
        resp = server.jmap([["%s/set" % parent, {"create": {"p": gen.minimal(parent, None)}}, "0"]])
        created = ok(resp).get("created")
        assert created, "%s: minimal create refused: %s" % (parent, resp)
        gen.refs[parent] = created["p"]["id"]
    return gen


def test_every_singleton_round_trips_and_updates_each_kind(server, schema, fixtures):
    singletons = schema.types("singleton")
    own = server.raw("GET", "/jmap/session")[2]["primaryAccounts"]["urn:stalwart:jmap"]
    account = fixtures.refs["x:Account"] if own == RECOVERY_ACCOUNT else None
    targets = [(t, "singleton", account if t.startswith("x:Account") else None) for t in singletons if t not in EXPECTED]
    report = {}
    originals = {}
    try:
        failures, originals = roundtrip(server, schema, fixtures, targets, report)
    finally:  # leave a real server as it was
        restore = [["%s/set" % t, dict(get_args(t, None, a), update={"singleton": schema.strip_server_set(t, originals[(t, "singleton")])}), "r"]
                   for t, dummy, a in targets if (t, "singleton") in originals and t not in NO_MUTATION]
        batched(server, restore)
    boot = server.jmap([["x:Bootstrap/get", {"ids": None}, "0"]])["methodResponses"][0]
    assert boot[0] == "error" and boot[1]["type"] == "forbidden"
    print("\nsingleton sweep: %d singletons (%d round-tripped, %d by expectation: %s), updates per kind: %s; not mutated: %s"
          % (len(singletons), len(targets), len(singletons) - len(targets), ", ".join(t for t in EXPECTED if t in singletons),
             report, NO_MUTATION))
    assert len(targets) + 1 == len(singletons)
    assert not failures, "\n".join(failures)


def test_every_collection_variant_creates_round_trips_and_updates_each_kind(server, schema, fixtures):
    collections = schema.types("object")
    gen = fixtures
    creates = []
    for obj_type in collections:
        if obj_type in ("x:ClusterNode", "x:Task"):
            continue
        for variant, dummy in schema.variants(obj_type):
            creates.append((obj_type, variant, gen.minimal(obj_type, variant)))
    own = server.raw("GET", "/jmap/session")[2]["primaryAccounts"]["urn:stalwart:jmap"]
    account = fixtures.refs["x:Account"] if own == RECOVERY_ACCOUNT else None
    scoped = {"x:ApiKey", "x:AppPassword"}
    calls = [["%s/set" % t, dict(get_args(t, None, account if t in scoped else None), create={"c": body}), str(n)]
             for n, (t, v, body) in enumerate(creates)]
    failures, targets, actions = [], [], 0
    for (obj_type, variant, body), resp in zip(creates, batched(server, calls)):
        created = (resp[1].get("created") or {}).get("c") if resp[0] != "error" else None
        if not created:
            failures.append("%s/%s: minimal create refused: %s (body %s)"
                            % (obj_type, variant, json.dumps(resp[1])[:300], json.dumps(body)[:200]))
        elif obj_type == "x:Action":
            actions += 1
        else:
            targets.append((obj_type, created["id"], account if obj_type in scoped else None))
    # expectations instead of round trips
    act = server.jmap([["x:Action/get", {"ids": None}, "0"]])["methodResponses"][0][1]
    assert act["list"] == []
    node = server.jmap([["x:ClusterNode/set", {"create": {"n": {}}}, "0"]])["methodResponses"][0]
    assert node[0] == "error" and node[1]["type"] == "forbidden"
    task = ok(server.jmap([["x:Task/set", {"create": {
        "client": {"@type": "DkimManagement", "domainId": gen.refs["x:Domain"]},
        "internal": dict(gen.minimal("x:Task", "MergeThreads"))}}, "0"]]))
    assert "client" in task["created"] and task["notCreated"]["internal"]["type"] == "forbidden"
    report = {}
    more, dummy = roundtrip(server, schema, gen, targets, report)
    failures.extend(more)
    n_types = len({t for t, v, b in creates})
    print("\ncollection sweep: %d collection types, %d variants created (%d actions), %d round-tripped, updates per kind: %s;"
          " by expectation: x:ClusterNode, x:Task, x:Action" % (n_types + 2, len(creates), actions, len(targets), report))
    assert n_types + 2 == len(collections)
    assert not failures, "\n".join(failures[:60])
