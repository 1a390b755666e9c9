# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan engine: reconcile `stalwart-cli apply` operations (upsert, reconcile, create, update, destroy) with exact
change detection. Reads every touched type once, diffs only declared properties, sends only the changes in
batched /set calls."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart import (
    MASK, StalwartError, mask, method_error, set_failures,
)

OPS = ("upsert", "reconcile", "create", "update", "destroy")
# Natural keys when a plan gives no matchOn (the schema's label property, or the true unique key).
DEFAULT_MATCH = {
    "x:Domain": ["name"], "x:Account": ["name", "domainId"], "x:MailingList": ["name", "domainId"],
    "x:DkimSignature": ["domainId", "selector"], "x:Role": ["description"], "x:Tenant": ["name"],
    "x:NetworkListener": ["name"], "x:ClusterRole": ["name"], "x:AcmeProvider": ["directory"],
    "x:DnsServer": ["description"], "x:Directory": ["description"], "x:OAuthClient": ["clientId"],
    "x:ApiKey": ["description"], "x:SpamRule": ["name"], "x:SpamTag": ["tag"], "x:MtaRoute": ["name"],
    "x:AllowedIp": ["address"], "x:BlockedIp": ["address"],
}
# Values the server lower-cases on write: compare them case-insensitively.
CASELESS = frozenset(["name", "aliases", "catchAllAddress", "emailAddress", "recipients"])


def type_name(name):
    name = str(name)
    return name if name.startswith("x:") else "x:" + name


def parse_ndjson(text):
    ops = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            ops.append(json.loads(line))
        except ValueError as err:
            raise StalwartError("plan line %d is not JSON: %s" % (number, err))
    return ops


def validate_ops(ops):
    for n, op in enumerate(ops, 1):
        if not isinstance(op, dict) or op.get("@type") not in OPS:
            raise StalwartError("plan operation %d: @type must be one of %s" % (n, ", ".join(OPS)))
        if not op.get("object"):
            raise StalwartError("plan operation %d (%s): 'object' is required" % (n, op["@type"]))
        if op["@type"] in ("upsert", "create") and not op.get("value"):
            raise StalwartError("plan operation %d (%s %s): 'value' must map client ids to objects" % (n, op["@type"], op["object"]))
        if op["@type"] in ("upsert", "reconcile", "create") and not isinstance(op.get("value", {}), dict):
            raise StalwartError("plan operation %d: 'value' must be a mapping" % n)
    return ops


def norm(prop, value):
    if prop in CASELESS:
        if isinstance(value, str):
            return value.strip().lower()
        if isinstance(value, dict) and all(v is True for v in value.values()):
            return dict((k.lower(), True) for k in value)
    return value


def differs(prop, desired, current):
    """True when the declared value is not what the server holds. Nested objects compare only declared keys;
    sets and lists compare whole; masked secrets never compare."""
    desired, current = norm(prop, desired), norm(prop, current)
    if MASK in (desired, current):
        return False  # secrets are write-only: the server always answers ****
    if isinstance(desired, dict) and isinstance(current, dict):
        if desired and all(v is True for v in desired.values()):
            return set(desired) != set(k for k, v in current.items() if v)
        if desired and all(k.isdigit() for k in desired):
            if set(desired) != set(current):
                return True
            return any(differs(prop, desired[k], current[k]) for k in desired)
        if not desired:
            return bool(current)
        return any(differs(k, v, current.get(k)) for k, v in desired.items())
    if isinstance(desired, (int, float)) and isinstance(current, (int, float)) and not isinstance(desired, bool):
        return desired != current
    return desired != current


def freeze(value):
    """A hashable form of a JSON value, equal exactly when the values are equal (match keys)."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("[",) + tuple(freeze(v) for v in value)
    return value


def declared_properties(ops):
    """{type: properties to read} when every upsert/reconcile of the type names its properties; None for a type
    some operation reads whole (e.g. pruning compares only ids, but stays safe with whole objects)."""
    out = {}
    for op in ops:
        if op.get("@type") not in ("upsert", "reconcile"):
            continue
        props = out.setdefault(type_name(op["object"]), set(["@type"]))
        props.update(op.get("matchOn") if isinstance(op.get("matchOn"), list) else DEFAULT_MATCH.get(type_name(op["object"]), []))
        for body in (op.get("value") or {}).values():
            props.update(k for k in body if "/" not in k)
    return dict((t, sorted(p)) for t, p in out.items())


class Planner(object):
    """Runs a plan. `refs` maps client ids to real ids; writes are queued and sent in batches."""

    def __init__(self, client, check_mode=False, update_password="on_create", prune=None, want_diff=False):
        self.client = client
        self.check_mode = check_mode
        self.update_password = update_password
        self.prune = set(type_name(t) for t in (prune or []))
        self.want_diff = want_diff
        self.refs = {}
        self.cache = {}
        self.touched = {}
        self.summary = {}
        self.diff = {"before": {}, "after": {}}
        self.calls = []
        self.queue = []
        self.read_properties = {}

    # ------------------------------------------------------------------------------------------- helpers
    def existing(self, obj_type):
        if obj_type not in self.cache:
            props = self.read_properties.get(obj_type)
            self.cache[obj_type] = dict((o["id"], o) for o in self.client.get_all(obj_type, properties=props))
        return self.cache[obj_type]

    def count(self, obj_type, what, n=1):
        entry = self.summary.setdefault(obj_type[2:], {"created": 0, "updated": 0, "destroyed": 0, "unchanged": 0})
        entry[what] += n

    def resolve(self, value):
        """Replace #cid references whose real id is known; leave the others for the server to resolve."""
        return self._resolve(value, [])

    def _resolve(self, value, pending):
        """resolve(), noting in `pending` every #cid reference still unknown (so a body without any is resolved
        once, not again when it is sent)."""
        if isinstance(value, str):
            if value.startswith("#"):
                if value[1:] in self.refs:
                    return self.refs[value[1:]]
                pending.append(value)
            return value
        if isinstance(value, dict):
            return dict((self._resolve(k, pending) if k.startswith("#") else k, self._resolve(v, pending))
                        for k, v in value.items())
        if isinstance(value, list):
            return [self._resolve(v, pending) for v in value]
        return value

    def match_keys(self, op, obj_type):
        match = op.get("matchOn") or DEFAULT_MATCH.get(obj_type)
        if match == "*" or not match:
            raise StalwartError("%s %s: give matchOn (no natural key is known for this type)" % (op["@type"], op["object"]))
        return list(match)

    @staticmethod
    def key_of(body, keys):
        return tuple(freeze(norm(k, body.get(k))) for k in keys)

    # ------------------------------------------------------------------------------------------- run
    def prefetch(self, types):
        """Read every type the plan upserts in shared requests (one round trip for an empty server)."""
        missing = [t for t in types if t not in self.cache]
        if len(missing) > 1:
            found = self.client.get_all_many([(t, None, self.read_properties.get(t)) for t in missing])
            for obj_type, objects in found.items():
                self.cache[obj_type] = dict((o["id"], o) for o in objects)

    def run(self, ops):
        validate_ops(ops)
        self.read_properties = declared_properties(ops)
        if not any(op["@type"] == "destroy" for op in ops):
            self.prefetch(sorted(self.read_properties))
        for op in reversed(ops):
            if op["@type"] == "destroy":
                self.op_destroy(op)
        self.flush()
        for op in ops:
            handler = {"upsert": self.op_upsert, "reconcile": self.op_upsert, "create": self.op_create,
                       "update": self.op_update}.get(op["@type"])
            if handler:
                handler(op)
        self.flush()
        for op in reversed(ops):
            if op["@type"] == "reconcile":
                self.destroy_unmatched(type_name(op["object"]), op.get("scope"))
        declared = set(type_name(op["object"]) for op in ops if op["@type"] in ("upsert", "reconcile"))
        for obj_type in sorted(self.prune):
            if obj_type not in declared:
                raise StalwartError("prune names %s, which no upsert in the plan declares; refusing to delete every "
                                    "object of that type" % obj_type[2:])
            self.destroy_unmatched(obj_type, None)
        self.flush()
        return self.result()

    def result(self):
        changed = any(v["created"] or v["updated"] or v["destroyed"] for v in self.summary.values())
        out = {"changed": changed, "summary": self.summary, "ids": self.refs, "calls": self.calls,
               "http_requests": self.client.http_requests}
        if self.want_diff:
            out["diff"] = self.diff
        return out

    # ------------------------------------------------------------------------------------------- ops
    def op_upsert(self, op):
        obj_type = type_name(op["object"])
        keys = self.match_keys(op, obj_type)
        current = self.existing(obj_type)
        index = {}
        for obj_id, obj in current.items():
            index.setdefault(self.key_of(obj, keys), []).append(obj_id)
        touched = self.touched.setdefault(obj_type, set())
        creates = {}
        for cid, body in (op.get("value") or {}).items():
            pending = []
            desired = self._resolve(body, pending)
            found = index.get(self.key_of(desired, keys), [])
            if len(found) > 1:
                raise StalwartError("%s %s matches %d existing objects on %s; make matchOn unique"
                                    % (obj_type[2:], cid, len(found), ", ".join(keys)))
            if found:
                obj_id = found[0]
                self.refs[cid] = obj_id
                touched.add(obj_id)
                patch = self.patch_for(desired, current[obj_id])
                if patch:
                    self.enqueue(obj_type, "update", obj_id, patch, cid)
                    self.record_diff(obj_type, cid, current[obj_id], patch)
                else:
                    self.count(obj_type, "unchanged")
            else:
                creates[cid] = (body, desired if not pending else None)
        for cid, (body, resolved) in creates.items():
            self.enqueue(obj_type, "create", cid, body, cid, resolved)
            self.record_diff(obj_type, cid, None, body)

    def patch_for(self, desired, current):
        patch = {}
        for prop, value in desired.items():
            if prop in ("id",):
                continue
            if prop == "credentials" and self.update_password != "always":
                continue
            if prop == "@type":
                if value != current.get("@type"):
                    return dict(desired)
                continue
            if differs(prop, value, current.get(prop)):
                patch[prop] = value
        return patch

    def op_create(self, op):
        obj_type = type_name(op["object"])
        for cid, body in op["value"].items():
            self.enqueue(obj_type, "create", cid, body, cid)
            self.record_diff(obj_type, cid, None, body)

    def op_update(self, op):
        obj_type = type_name(op["object"])
        target = op.get("id")
        if isinstance(target, str) and target.startswith("#"):
            if target[1:] not in self.refs:
                if self.check_mode:
                    self.enqueue(obj_type, "update", target, op.get("value") or {}, target)
                    return
                raise StalwartError("update %s: reference %s is not known" % (obj_type[2:], target))
            target = self.refs[target[1:]]
        singleton = target in (None, "singleton")
        target = "singleton" if singleton else target
        found = self.client.get(obj_type, [target])
        if not found:
            raise StalwartError("update %s: object %s does not exist" % (obj_type[2:], target))
        current = found[0]
        desired = self.resolve(op.get("value") or {})
        patch = {}
        for key, value in desired.items():
            node = current
            for part in key.split("/"):
                node = node.get(part) if isinstance(node, dict) else None
            if key == "credentials" and self.update_password != "always":
                continue
            if differs(key.split("/")[-1], value, node):
                patch[key] = value
        if patch:
            self.enqueue(obj_type, "update", target, patch, target)
            self.record_diff(obj_type, target, current, patch)
        else:
            self.count(obj_type, "unchanged")

    def op_destroy(self, op):
        obj_type = type_name(op["object"])
        flt = self.resolve(op.get("value") or {})
        for obj_id in self.client.query(obj_type, flt):
            self.enqueue(obj_type, "destroy", obj_id, None, obj_id)
            self.diff["before"]["%s %s" % (obj_type[2:], obj_id)] = "present"
            self.diff["after"]["%s %s" % (obj_type[2:], obj_id)] = "absent"

    def destroy_unmatched(self, obj_type, scope):
        touched = self.touched.get(obj_type, set())
        flt = scope if isinstance(scope, dict) and "@type" not in scope else None
        candidates = self.existing(obj_type) if flt is None else dict((i, None) for i in self.client.query(obj_type, flt))
        for obj_id in sorted(candidates):
            if obj_id not in touched:
                self.enqueue(obj_type, "destroy", obj_id, None, obj_id)
                self.diff["before"]["%s %s" % (obj_type[2:], obj_id)] = "present"
                self.diff["after"]["%s %s" % (obj_type[2:], obj_id)] = "absent"

    def record_diff(self, obj_type, label, before, patch):
        if not self.want_diff:
            return
        name = "%s %s" % (obj_type[2:], label)
        if before is None:
            self.diff["before"][name] = None
            self.diff["after"][name] = mask(patch)
        else:
            self.diff["before"][name] = mask(dict((k, before.get(k.split("/")[0])) for k in patch))
            self.diff["after"][name] = mask(patch)

    # ------------------------------------------------------------------------------------------- writes
    def enqueue(self, obj_type, kind, key, body, label, resolved=None):
        """Queue one write; `resolved` is the body already free of #cid references (sent as is)."""
        self.queue.append((obj_type, kind, key, body, label, resolved))

    def flush(self):
        """Send the queued writes: consecutive writes of one type and kind share /set calls (maxObjectsInSet each),
        and up to maxCallsInRequest calls share one HTTP request. #cid references inside one request are resolved
        by the server; across requests they are replaced with the real ids before sending."""
        if not self.queue:
            return
        groups = []
        for obj_type, kind, key, body, label, resolved in self.queue:
            item = (key, body, label, resolved)
            if groups and groups[-1][0] == obj_type and groups[-1][1] == kind and len(groups[-1][2]) < self.client.max_set:
                groups[-1][2].append(item)
            else:
                groups.append((obj_type, kind, [item]))
        self.queue = []
        for obj_type, kind, items in groups:
            self.count(obj_type, {"create": "created", "update": "updated", "destroy": "destroyed"}[kind], len(items))
        if self.check_mode:
            for obj_type, kind, items in groups:
                self.calls.append({"method": obj_type + "/set", kind: [i[2] for i in items]})
            return
        for start in range(0, len(groups), self.client.max_calls):
            batch = groups[start:start + self.client.max_calls]
            calls = []
            for n, (obj_type, kind, items) in enumerate(batch):
                if kind == "destroy":
                    args = {"destroy": [key for key, body, label, resolved in items]}
                else:
                    args = {kind: dict((key, resolved if resolved is not None else self.resolve(body))
                                       for key, body, label, resolved in items)}
                calls.append([obj_type + "/set", args, "s%d" % n])
                self.calls.append({"method": obj_type + "/set", kind: [i[2] for i in items]})
            responses, dummy = self.client.request(calls)
            failures = []
            for (obj_type, kind, items), resp in zip(batch, responses):
                if resp[0] == "error":
                    failures.append(method_error(obj_type + "/set", resp[1]).message)
                    continue
                for cid, created in (resp[1].get("created") or {}).items():
                    self.refs[cid] = created["id"]
                    self.touched.setdefault(obj_type, set()).add(created["id"])
                failures.extend(set_failures(obj_type[2:], resp[1]))
            if failures:
                raise StalwartError("%d change(s) failed: %s" % (len(failures), "; ".join(failures[:10])),
                                    {"failures": failures})
            self.cache.clear()


def domain_id(client, name):
    """Server id of a domain given by name; StalwartError naming the domain when it does not exist."""
    found = client.query("x:Domain", {"name": name.strip().lower()})
    if not found:
        raise StalwartError("domain %s does not exist on the server: create it first (talentmesh.mail.stalwart_domain)" % name)
    return found[0]


def ensure_one(client, obj_type, key, properties, state, check_mode, update_password="on_create", want_diff=False,
               singleton=False):
    """Make one object present (upsert by its natural key) or absent; the engine behind stalwart_object and the
    convenience modules. Returns a module result."""
    obj_type = type_name(obj_type)
    key = dict(key or {})
    if "domain" in key:
        key["domainId"] = domain_id(client, key.pop("domain"))
    planner = Planner(client, check_mode=check_mode, update_password=update_password, want_diff=want_diff)
    if singleton:
        if state == "absent":
            raise StalwartError("%s is a singleton: it cannot be absent" % obj_type[2:])
        result = planner.run([{"@type": "update", "object": obj_type, "id": "singleton", "value": properties}])
        result["id"] = "singleton"
        return result
    if not key:
        raise StalwartError("give key: the natural key that identifies the %s (for example its name)" % obj_type[2:])
    flt_keys = [k for k in key if k != "@type"]
    if state == "absent":
        matches = [o for o in planner.existing(obj_type).values()
                   if all(not differs(k, key[k], o.get(k)) for k in flt_keys)]
        for obj in matches:
            planner.enqueue(obj_type, "destroy", obj["id"], None, obj["id"])
            planner.record_diff(obj_type, obj["id"], obj, dict((k, obj.get(k)) for k in flt_keys))
            if want_diff:
                planner.diff["after"]["%s %s" % (obj_type[2:], obj["id"])] = None
        planner.flush()
        result = planner.result()
        result["id"] = matches[0]["id"] if matches else None
        return result
    body = dict(properties or {})
    body.update(key)
    result = planner.run([{"@type": "upsert", "object": obj_type, "matchOn": flt_keys, "value": {"object": body}}])
    result["id"] = result["ids"].get("object")
    return result
