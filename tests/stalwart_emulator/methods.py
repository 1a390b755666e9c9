"""JMAP method dispatch for the x: management types (RFC 8620 envelopes, Stalwart's semantics)."""
import copy
import hashlib
import re
import secrets

from . import ids, passwords
from .registry import MethodError, SetError, now, short

MAX_GET = 500
MAX_SET = 500
MAX_QUERY = 5000
WORD = re.compile(r"[A-Za-z0-9]{2,}")
# text conditions matched word by word (whole words, every word required); other text filters are exact keywords
WORD_FIELDS = {"text", "description", "subjectAlternativeNames"}
COMPARATORS = ("IsGreaterThanOrEqual", "IsGreaterThan", "IsLessThanOrEqual", "IsLessThan")


CLIENT_TASKS = {"DkimManagement", "DnsManagement", "AcmeRenewal", "AccountMaintenance", "TenantMaintenance",
                "StoreMaintenance", "SpamFilterMaintenance", "IndexDocument", "UnindexDocument", "IndexTrace"}
RESTORE = re.compile(r"^restore-(\d+)$")
# account-scoped singletons: views of the caller's own x:Account
ACCOUNT_SINGLETONS = {"x:AccountPassword", "x:AccountSettings"}
# what the default User role may manage (its own objects only)
SELF_SERVICE = {"x:ApiKey", "x:AppPassword", "x:AccountPassword", "x:AccountSettings", "x:MaskedEmail", "x:PublicKey"}
# types filtered to one account (OBJ_FILTER_ACCOUNT) through their accountId property
ACCOUNT_OWNED = {"x:MaskedEmail", "x:PublicKey"}


class Context:
    """Per-request state: creation ids (request-level createdIds plus those created now) and the caller."""

    def __init__(self, created, account_id, stats, admin=True):
        self.created = created
        self.account_id = account_id
        self.stats = stats
        self.admin = admin
        self.explicit_account = False

    def resolve(self, value):
        """An id as sent by the client: "#cid" creation references become the created id (unknown ones stay)."""
        if isinstance(value, str) and value.startswith("#"):
            return self.created.get(value[1:], value)
        return value

    def ref(self, value, object_name, path):
        """A creation reference that names no created object fails the whole method (invalidResultReference)."""
        if value.startswith("#"):
            resolved = self.created.get(value[1:])
            if resolved is None:
                raise MethodError("invalidResultReference", "Creation id %s (in %s, a %s reference) is not known"
                                  % (value, path, short(object_name.split("/")[0])))
            return resolved
        return value


def text_of(value):
    """Indexable text of a property: strings as-is, set members and list entries' names joined."""
    if isinstance(value, dict):
        return " ".join(k if v is True else text_of(v.get("name") if isinstance(v, dict) else v) for k, v in value.items())
    return "" if value is None else str(value)


def words(text):
    return {w.lower() for w in WORD.findall(text or "")}


class Methods:
    def __init__(self, registry, local_config=None):
        self.reg = registry
        self.cat = registry.cat
        # node-local singletons that live in a file rather than in the shared store: {type: (load, save)}
        self.local = {"x:DataStore": local_config} if local_config else {}

    def load_singleton(self, tx, obj_type, ctx=None):
        if obj_type in self.local:
            stored = self.local[obj_type][0]()
            return self.reg.wire({"type": "object", "objectName": obj_type}, stored)
        if obj_type in ACCOUNT_SINGLETONS:
            return self._account_singleton(tx, obj_type, ctx)
        return self.reg.singleton(tx, obj_type)

    def save_singleton(self, tx, obj_type, value, ctx=None):
        if obj_type in self.local:
            self.local[obj_type][1](value)
        elif obj_type in ACCOUNT_SINGLETONS:
            self._save_account_singleton(tx, obj_type, value, ctx)
        else:
            tx.put(obj_type, ids.SINGLETON, value)

    # the caller's own settings and password, kept on its x:Account
    def _own_account(self, tx, ctx):
        account = tx.get("x:Account", ctx.account_id) if ctx else None
        if account is None:
            raise SetError("notFound", "The caller has no account.")
        return account

    def _account_singleton(self, tx, obj_type, ctx):
        account = self._own_account(tx, ctx)
        value = self.reg.default_object(obj_type)
        if obj_type == "x:AccountSettings":
            value.update({k: copy.deepcopy(account[k]) for k in value if k in account})
            return value
        password = next((c for c in (account.get("credentials") or {}).values() if c.get("@type") == "Password"), None)
        if password is not None:
            value["secret"] = password["secret"]
            value["otpAuth"] = dict(value.get("otpAuth") or {}, otpUrl=password.get("otpAuth"))
        return value

    def _save_account_singleton(self, tx, obj_type, value, ctx):
        account = copy.deepcopy(self._own_account(tx, ctx))
        if obj_type == "x:AccountSettings":
            account.update({k: v for k, v in value.items() if k != "@type"})
            tx.put("x:Account", ctx.account_id, account)
            return
        creds = account.setdefault("credentials", {})
        pos = next((p for p, c in creds.items() if c.get("@type") == "Password"), None)
        current = creds.get(pos) if pos is not None else None
        secret = value.get("secret")
        if secret is not None and (current is None or secret != current["secret"]):
            if current is not None and not (value.get("currentSecret") and passwords.verify(value["currentSecret"], current["secret"])):
                raise SetError("invalidProperties", "The current password is required and must match.", properties=["currentSecret"])
            if not passwords.is_hash(secret):
                problem = passwords.policy_error(secret, self.reg.singleton(tx, "x:Authentication"))
                if problem:
                    raise SetError("invalidProperties", problem, properties=["secret"])
                secret = passwords.hash_password(secret)
            current = dict(current or self.reg.default_object("x:Credential", "Password"), secret=secret)
            current.setdefault("credentialId", "0")
        if current is not None:
            current["otpAuth"] = (value.get("otpAuth") or {}).get("otpUrl")
            creds[pos if pos is not None else str(len(creds))] = current
        tx.put("x:Account", ctx.account_id, account)

    # ------------------------------------------------------------------------------------------------ dispatch
    def call(self, tx, name, args, ctx):
        if "/" not in name:
            raise MethodError("unknownMethod", "Unknown method %s" % name)
        obj_type, op = name.rsplit("/", 1)
        kind = self.cat.kind(obj_type)
        if kind is None or op not in ("get", "set", "query"):
            raise MethodError("unknownMethod", "Unknown method %s" % name)
        if op == "query" and kind == "singleton":
            raise MethodError("unknownMethod", "Singletons cannot be queried")
        if obj_type in ("x:Action",) and op == "query":
            raise MethodError("invalidArguments", "Actions cannot be queried")
        if obj_type == "x:Bootstrap":
            raise MethodError("forbidden", "The Bootstrap object is only available in bootstrap mode.")
        if obj_type == "x:ClusterNode" and op == "set":
            raise MethodError("forbidden", "Cluster nodes are managed by the servers themselves.")
        result = getattr(self, op)(tx, obj_type, kind, args, ctx)
        result = dict({"accountId": ctx.account_id}, **result)
        return result

    # ------------------------------------------------------------------------------------------------ /get
    def get(self, tx, obj_type, kind, args, ctx):
        wanted = args.get("ids")
        properties = args.get("properties")
        if properties is not None:
            properties = set(properties) | {"id"}
        if kind == "singleton":
            if wanted is None or ids.SINGLETON in wanted:
                try:
                    body = self.load_singleton(tx, obj_type, ctx)
                except SetError:
                    return {"list": [], "notFound": list(wanted or [ids.SINGLETON])}
                return {"list": [self.reg.present(tx, obj_type, ids.SINGLETON, body, properties)],
                        "notFound": [i for i in (wanted or []) if i != ids.SINGLETON]}
            return {"list": [], "notFound": list(wanted)}
        if obj_type == "x:Action":
            return {"list": [], "notFound": list(wanted or [])}
        objects = self._scoped(tx, obj_type, ctx)
        if wanted is None:
            wanted = sorted(objects, key=ids.sort_key)[:MAX_GET]
        elif len(wanted) > MAX_GET:
            raise MethodError("requestTooLarge", "Too many ids requested (max %d)" % MAX_GET)
        found, missing = [], []
        for obj_id in wanted:
            obj_id = ctx.created.get(obj_id[1:], obj_id) if obj_id.startswith("#") else obj_id
            body = objects.get(obj_id)
            if body is None:
                missing.append(obj_id)
            else:
                found.append(self.reg.present(tx, obj_type, obj_id, body, properties))
        return {"list": found, "notFound": missing}

    def _scoped(self, tx, obj_type, ctx):
        if obj_type in ("x:ApiKey", "x:AppPassword"):
            account = tx.get("x:Account", ctx.account_id) or {}
            kind = obj_type[2:]
            return {c["credentialId"]: dict({k: v for k, v in c.items() if k not in ("@type", "credentialId")}, secret="****")
                    for c in (account.get("credentials") or {}).values() if c.get("@type") == kind}
        if obj_type in ACCOUNT_OWNED and (not ctx.admin or ctx.explicit_account):
            return {i: o for i, o in tx.all(obj_type).items() if o.get("accountId") == ctx.account_id}
        return tx.all(obj_type)

    # ------------------------------------------------------------------------------------------------ /query
    def query(self, tx, obj_type, kind, args, ctx):
        allowed = self.cat.filters(obj_type)
        conditions = args.get("filter") or {}
        if conditions.get("operator"):
            if conditions["operator"] != "AND":
                raise MethodError("unsupportedFilter", "Only AND is supported in filters")
            merged = {}
            for cond in conditions.get("conditions", []):
                if cond.get("operator"):
                    raise MethodError("unsupportedFilter", "Only AND is supported in filters")
                merged.update(cond)
            conditions = merged
        checks = []
        for key, value in conditions.items():
            prop, op = key, "eq"
            for suffix in COMPARATORS:
                if key.endswith(suffix):
                    prop, op = key[: -len(suffix)], suffix
                    break
            if prop not in allowed:
                raise MethodError("unsupportedFilter", "Filter on property %s is not supported or invalid" % key)
            if isinstance(value, str) and value.startswith("#"):
                value = ctx.created.get(value[1:], value)
            checks.append((prop, op, value, allowed[prop]))
        objects = self._scoped(tx, obj_type, ctx)
        label = self.cat.label_property(obj_type) or "name"
        matched = [obj_id for obj_id, body in objects.items() if all(self._match(obj_type, body, c, label) for c in checks)]
        sort = (args.get("sort") or [{"property": "id", "isAscending": False}])[0]
        prop = sort.get("property", "id")
        if prop != "id" and (prop not in allowed or prop in WORD_FIELDS):
            raise MethodError("unsupportedSort", "Property %s is not supported for sorting" % prop)
        reverse = not sort.get("isAscending", True)
        if prop == "id":
            matched.sort(key=ids.sort_key, reverse=reverse)
        else:
            matched.sort(key=lambda i: (str(objects[i].get(prop) or ""), ids.sort_key(i)), reverse=reverse)
        total = len(matched)
        position = int(args.get("position") or 0)
        if args.get("anchor") is not None:
            if args["anchor"] not in matched:
                raise MethodError("anchorNotFound")
            position = max(0, matched.index(args["anchor"]) + int(args.get("anchorOffset") or 0))
        elif position < 0:
            position = max(0, total + position)
        limit = min(int(args.get("limit") or MAX_QUERY), MAX_QUERY)
        page = matched[position:position + limit]
        out = {"queryState": "n", "canCalculateChanges": True, "position": position, "ids": page}
        if args.get("calculateTotal"):
            out["total"] = total
        if total > limit:
            out["limit"] = limit
        return out

    def _match(self, obj_type, body, check, label):
        prop, op, value, ftype = check
        if prop == "text":
            have = words(" ".join(text_of(body.get(k)) for k in (label, "name", "description", "selector", "aliases")))
            return words(value) <= have
        current = body.get(prop)
        if op != "eq":
            if current is None:
                return False
            return {"IsGreaterThan": current > value, "IsGreaterThanOrEqual": current >= value,
                    "IsLessThan": current < value, "IsLessThanOrEqual": current <= value}[op]
        if isinstance(current, dict) and ftype == "objectId":
            return value in current
        if prop in WORD_FIELDS:
            return words(value) <= words(text_of(current))
        if isinstance(current, str) and isinstance(value, str):
            return current.lower() == value.lower()
        return current == value

    # ------------------------------------------------------------------------------------------------ /set
    def set(self, tx, obj_type, kind, args, ctx):
        create = args.get("create") or {}
        update = args.get("update") or {}
        destroy = [ctx.resolve(obj_id) for obj_id in args.get("destroy") or []]
        if len(create) + len(update) + len(destroy) > MAX_SET:
            raise MethodError("requestTooLarge", "Too many objects in one /set (max %d)" % MAX_SET)
        out = {"created": {}, "notCreated": {}, "updated": {}, "notUpdated": {}, "destroyed": [], "notDestroyed": {}}
        for cid, body in create.items():
            try:
                out["created"][cid] = self._create(tx, obj_type, kind, cid, body, ctx)
                ctx.stats.count_object("created", obj_type)
            except SetError as err:
                out["notCreated"][cid] = err.body
        for obj_id, patch in update.items():
            real = ctx.resolve(obj_id)
            try:
                if real in destroy:
                    raise SetError("willDestroy", "ID will be destroyed.")
                self._update(tx, obj_type, kind, real, patch, ctx)
                out["updated"][obj_id] = None
                ctx.stats.count_object("updated", obj_type)
            except SetError as err:
                out["notUpdated"][obj_id] = err.body
        for obj_id in destroy:
            try:
                self._destroy(tx, obj_type, kind, obj_id, ctx)
                out["destroyed"].append(obj_id)
                ctx.stats.count_object("destroyed", obj_type)
            except SetError as err:
                out["notDestroyed"][obj_id] = err.body
        return {k: v for k, v in out.items() if v}

    def create(self, tx, obj_type, cid, body, ctx):
        """Create one object with every rule applied (used by bootstrap); raises SetError."""
        result = self._create(tx, obj_type, self.cat.kind(obj_type), cid, body, ctx)
        ctx.stats.count_object("created", obj_type)
        return result

    def _create(self, tx, obj_type, kind, cid, body, ctx):
        if not isinstance(body, dict):
            raise SetError("invalidPatch", "Invalid object")
        if kind == "singleton":
            value = self.reg.coerce_object(obj_type, body, "", ctx)
            self.save_singleton(tx, obj_type, value, ctx)
            ctx.created[cid] = ids.SINGLETON
            return {"id": ids.SINGLETON}
        if obj_type == "x:Action":
            self.reg.coerce_object(obj_type, body, "", ctx)
            return {"id": ids.snowflake()}
        if obj_type in ("x:ApiKey", "x:AppPassword"):
            return self._create_credential(tx, obj_type, cid, body, ctx)
        if obj_type in ACCOUNT_OWNED:
            body = dict(body)
            body.setdefault("accountId", ctx.account_id)
            if not ctx.admin and ctx.resolve(body["accountId"]) != ctx.account_id:
                raise SetError("forbidden", "You can only manage your own %s objects." % short(obj_type))
        if obj_type == "x:Task" and body.get("@type") not in CLIENT_TASKS:
            raise SetError("forbidden", "Task type %s cannot be created by clients." % body.get("@type"))
        if obj_type == "x:Task" and isinstance(body.get("status", None), (dict, type(None))) and not body.get("status"):
            body = dict(body, status={"@type": "Pending", "due": now()})  # the task queue schedules it now
        value = self.reg.coerce_object(obj_type, body, "", ctx)
        if obj_type == "x:Task":
            return self._create_task(tx, cid, value, ctx)
        new_id = self._new_id(tx, obj_type, cid)
        self.reg.apply_rules(tx, obj_type, new_id, value, None)
        self.reg.check_foreign_keys(tx, obj_type, value)
        if "createdAt" in self._props(obj_type, value):
            value["createdAt"] = now()
        tx.put(obj_type, new_id, value)
        self._index(tx, obj_type, new_id, None, value)
        ctx.created[cid] = new_id
        self.reg.after_create(tx, obj_type, new_id, value, ctx)
        return {"id": new_id}

    def _new_id(self, tx, obj_type, cid):
        """Sequential ids for OBJ_SEQ_ID types (never reused), snowflakes otherwise; `restore-<n>` in recovery mode."""
        if obj_type not in self.reg_seq():
            return ids.snowflake()
        restore = RESTORE.match(cid) if obj_type == "x:Account" and self.reg.recovery_mode else None
        if restore:
            new_id = ids.encode(int(restore.group(1)))
            if tx.get(obj_type, new_id) is not None:
                raise SetError("primaryKeyViolation", "Account id %s is already in use." % new_id,
                               objectId={"object": "Account", "id": new_id})
            return new_id
        while True:
            new_id = ids.encode(tx.next_id(obj_type))
            if tx.get(obj_type, new_id) is None:
                return new_id

    @staticmethod
    def reg_seq():
        from .schema import SEQUENTIAL
        return SEQUENTIAL

    def _props(self, obj_type, value):
        field_schema = self.cat.field_schema_for(obj_type, value.get("@type")) if self.cat.is_multi(obj_type) \
            else dict(self.cat.variants(obj_type)).get(None)
        return self.cat.properties(field_schema)

    def _update(self, tx, obj_type, kind, obj_id, patch, ctx):
        if not isinstance(patch, dict):
            raise SetError("invalidPatch", "Invalid patch")
        if kind == "singleton":
            if obj_id != ids.SINGLETON:
                raise SetError("notFound")
            old = self.load_singleton(tx, obj_type, ctx)
        elif obj_type in ("x:ApiKey", "x:AppPassword"):
            return self._update_credential(tx, obj_type, obj_id, patch, ctx)
        else:
            old = self._scoped(tx, obj_type, ctx).get(obj_id)
            if old is None:
                raise SetError("notFound")
        props = self._props(obj_type, patch if "@type" in patch else old)
        for key in patch:
            spec = props.get(key.split("/")[0])
            if spec is not None and spec.get("update") == "serverSet":
                raise SetError("invalidPatch", "Cannot modify server set property", properties=[key])
        if "@type" in patch and patch["@type"] != old.get("@type"):
            if obj_type == "x:Account":
                raise SetError("invalidProperties", "Cannot change the type of an existing account.", properties=["@type"])
            merged, existing = dict(patch), None
        else:
            merged, existing = apply_patch(old, patch), old
        if obj_type == "x:Account" and isinstance(merged.get("credentials"), dict):
            # API keys and app passwords are kept by the registry, not rewritten through a patch
            own = [c for c in merged["credentials"].values() if not isinstance(c, dict) or c.get("@type") == "Password"]
            merged["credentials"] = {str(i): c for i, c in enumerate(own)}
        value = self.reg.coerce_object(obj_type, merged, "", ctx, existing=existing, top=True)
        if kind != "singleton":
            self.reg.apply_rules(tx, obj_type, obj_id, value, old)
        self.reg.check_foreign_keys(tx, obj_type, value)
        if kind == "singleton":
            self.save_singleton(tx, obj_type, value, ctx)
            return
        tx.put(obj_type, obj_id, value)
        self._index(tx, obj_type, obj_id, old, value)
        if obj_type == "x:Domain" and old.get("dkimManagement", {}).get("@type") != "Automatic" \
                and value.get("dkimManagement", {}).get("@type") == "Automatic":
            self.reg.schedule_dkim(tx, obj_id, value)

    def _destroy(self, tx, obj_type, kind, obj_id, ctx):
        if kind == "singleton":
            raise SetError("singleton", "Singletons cannot be created or destroyed.")
        if obj_type in ("x:ApiKey", "x:AppPassword"):
            return self._destroy_credential(tx, obj_type, obj_id, ctx)
        old = self._scoped(tx, obj_type, ctx).get(obj_id)
        if old is None:
            raise SetError("notFound")
        links = [link for link in self.reg.linked(tx, obj_type, obj_id)
                 if not (obj_type == "x:Account" and link["object"] in ("PublicKey", "MaskedEmail"))]
        if links:
            raise SetError("objectIsLinked", objectId={"object": short(obj_type), "id": obj_id}, linkedObjects=links)
        tx.delete(obj_type, obj_id)
        self._index(tx, obj_type, obj_id, old, None)

    def _index(self, tx, obj_type, obj_id, old, new):
        if obj_type not in ("x:Account", "x:MailingList"):
            return
        index = self.reg.email_index(tx)
        for key in self.reg.emails_of(old or {}):
            if index.get(key) == (obj_type, obj_id):
                index.pop(key)
        for key in self.reg.emails_of(new or {}):
            index[key] = (obj_type, obj_id)

    # ------------------------------------------------------------------------------------------------ tasks, keys
    def _create_task(self, tx, cid, value, ctx):
        """DkimManagement runs synchronously in normal mode (the task is then complete and leaves the queue);
        other client tasks, and every task in recovery mode, stay queued as x:Task objects."""
        self.reg.check_foreign_keys(tx, "x:Task", value)
        new_id = ids.snowflake()
        if value.get("@type") == "DkimManagement" and not self.reg.recovery_mode:
            self.reg.generate_dkim(tx, value["domainId"], tx.get("x:Domain", value["domainId"]))
        else:
            tx.put("x:Task", new_id, value)
        ctx.created[cid] = new_id
        return {"id": new_id}

    def _create_credential(self, tx, obj_type, cid, body, ctx):
        account = tx.get("x:Account", ctx.account_id)
        if account is None:
            raise SetError("notFound", "The caller has no account to hold credentials.")
        value = self.reg.coerce_object(obj_type, body, "", ctx)
        creds = copy.deepcopy(account.get("credentials") or {})
        kind = obj_type[2:]
        limit = self.reg.singleton(tx, "x:Authentication").get("maxApiKeys" if kind == "ApiKey" else "maxAppPasswords", 5)
        if sum(1 for c in creds.values() if c.get("@type") == kind) >= limit:
            raise SetError("overQuota", "You have exceeded your quota of %d %s." % (limit, "API keys" if kind == "ApiKey" else "app passwords"))
        used = {int(c.get("credentialId", 0)) for c in creds.values() if str(c.get("credentialId", "")).isdigit()}
        cred_id = str(max(used | {0}) + 1)
        plaintext = ("API_" if kind == "ApiKey" else "app") + secrets.token_urlsafe(24)
        value.update({"@type": kind, "credentialId": cred_id, "createdAt": now(),
                      "secret": "sha256:" + hashlib.sha256(plaintext.encode()).hexdigest()})
        creds[str(len(creds))] = value
        tx.put("x:Account", ctx.account_id, dict(account, credentials=creds))
        return {"id": cred_id, "secret": plaintext}

    def _update_credential(self, tx, obj_type, obj_id, patch, ctx):
        account = self._own_account(tx, ctx)
        view = self._scoped(tx, obj_type, ctx).get(obj_id)
        if view is None:
            raise SetError("notFound")
        props = self._props(obj_type, view)
        for key in patch:
            spec = props.get(key.split("/")[0])
            if spec is not None and spec.get("update") == "serverSet":
                raise SetError("invalidPatch", "Cannot modify server set property", properties=[key])
        value = self.reg.coerce_object(obj_type, apply_patch(view, patch), "", ctx, existing=view, top=True)
        creds = copy.deepcopy(account.get("credentials") or {})
        for pos, cred in creds.items():
            if cred.get("@type") == obj_type[2:] and cred.get("credentialId") == obj_id:
                creds[pos] = dict(cred, **{k: v for k, v in value.items() if k not in ("secret", "createdAt")})
        tx.put("x:Account", ctx.account_id, dict(account, credentials=creds))

    def _destroy_credential(self, tx, obj_type, obj_id, ctx):
        account = tx.get("x:Account", ctx.account_id)
        creds = list((account or {}).get("credentials", {}).values())
        keep = [c for c in creds if not (c.get("@type") == obj_type[2:] and c.get("credentialId") == obj_id)]
        if len(keep) == len(creds):
            raise SetError("notFound")
        tx.put("x:Account", ctx.account_id, dict(account, credentials={str(i): c for i, c in enumerate(keep)}))


def apply_patch(obj, patch):
    """A JMAP patch: top-level keys replace properties; '/'-joined JSON pointers edit inside them."""
    out = copy.deepcopy(obj)
    out.pop("id", None)
    for key, value in patch.items():
        if "/" not in key:
            out[key] = value
            continue
        parts = key.split("/")
        node = out
        for part in parts[:-1]:
            if not isinstance(node, dict) or node.get(part) is None:
                raise SetError("invalidPatch", "Invalid patch path", properties=[key])
            node = node[part]
        if not isinstance(node, dict):
            raise SetError("invalidPatch", "Invalid patch path", properties=[key])
        if value is None or value is False:
            node.pop(parts[-1], None)
            if all(k.isdigit() for k in node):
                items = [node[k] for k in sorted(node, key=int)]
                node.clear()
                node.update({str(i): item for i, item in enumerate(items)})
        else:
            node[parts[-1]] = value
    return out
