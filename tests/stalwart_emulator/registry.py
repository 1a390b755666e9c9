"""Registry semantics: x:<Type>/get, /set and /query over the schema catalogue, with the rules the contract lists."""
import copy
import datetime
import re
import secrets
import sys

from . import dkim, dns, ids, passwords, validate

SECRET_MASK = "****"
MASKED_ALSO = {"otpAuth"}  # a TOTP URI is a secret too: "****" when set (and absent when unset, see present())
RESERVED_TLDS = {"test", "localhost", "local", "internal", "lan", "home", "corp", "intranet", "private", "localdomain"}
# Public-suffix approximation: generic TLDs plus every two-letter country code (documented difference).
GENERIC_TLDS = {"com", "org", "net", "edu", "gov", "mil", "int", "info", "biz", "name", "pro", "io", "dev", "app", "ai",
                "cloud", "email", "mail", "tech", "online", "site", "xyz", "eu", "asia", "mobi", "coop", "aero", "museum"}
LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
EXPRESSION = "x:Expression"
REQUIRED_KINDS = ("string", "objectId", "number", "enum", "utcDateTime", "blobId")
MISSING_TYPE = "Missing or invalid '@type' property in object"
DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)?\s*$")
DURATION_MS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000, "w": 604800000, None: 1}
SELECTOR_VARIABLES = re.compile(r"^(version|algorithm|hash|epoch|date-[^{}]+)$")


class SetError(Exception):
    def __init__(self, kind, description=None, **extra):
        super().__init__(kind)
        self.body = {"type": kind}
        if description:
            self.body["description"] = description
        self.body.update(extra)


class MethodError(Exception):
    def __init__(self, kind, description=None):
        super().__init__(kind)
        self.body = {"type": kind}
        if description:
            self.body["description"] = description


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def short(obj_type):
    return obj_type[2:] if obj_type.startswith("x:") else obj_type


def parse_duration(text):
    """"1m", "5s", "15d", "100ms" (the schema's presentation of a duration) in milliseconds."""
    found = DURATION.match(text)
    if not found:
        raise ValueError("not a duration: %r" % text)
    return int(found.group(1)) * DURATION_MS[found.group(2)]


def check_selector_template(template):
    """A DKIM selectorTemplate: every {variable} closed and known, and a non-empty result."""
    rest, out = template, ""
    while rest:
        start = rest.find("{")
        close = rest.find("}")
        if start < 0:
            if close >= 0:
                return "Unbalanced braces in selector template"
            out += rest
            break
        end = rest.find("}", start)
        if end < 0 or (0 <= close < start):
            return "Unclosed brace in selector template"
        name = rest[start + 1:end]
        if not SELECTOR_VARIABLES.match(name):
            return "Unknown variable {%s} in selector template" % name
        out += rest[:start] + "x"
        rest = rest[end + 1:]
    if not out.strip():
        return "Selector template produces an empty selector"
    return None


def normalise_domain(name, prop="name"):
    text = name.strip().lower().rstrip(".")
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise SetError("invalidPatch", "Invalid domain name", properties=[prop])
    labels = text.split(".")
    tld = labels[-1] if labels else ""
    ok = len(labels) >= 2 and all(LABEL.match(label) for label in labels)
    ok = ok and (tld in RESERVED_TLDS or tld in GENERIC_TLDS or (len(tld) == 2 and tld.isalpha()) or tld.startswith("xn--"))
    if not ok and not (len(labels) == 1 and tld in RESERVED_TLDS):
        raise SetError("invalidPatch", "Invalid domain name", properties=[prop])
    return text


def normalise_local(name, prop="name"):
    text = re.sub(r"\s+", "", name).lower()
    if not text or not LOCAL_PART.match(text):
        raise SetError("invalidPatch", "Invalid email local part", properties=[prop])
    return text


def normalise_email(addr, prop):
    if addr.count("@") != 1:
        raise SetError("invalidPatch", "Invalid email address", properties=[prop])
    local, domain = addr.split("@")
    return "%s@%s" % (normalise_local(local, prop), normalise_domain(domain, prop))


class Registry:
    """Stateless over a Tx: every method takes the transaction it works in."""

    def __init__(self, catalog, hostname="localhost", recovery_mode=False):
        self.cat = catalog
        self.hostname = hostname
        self.recovery_mode = recovery_mode
        self._defaults = {}

    # ------------------------------------------------------------------------------------------------ defaults
    def default_object(self, schema_name, variant=None):
        key = (schema_name, variant)
        if key not in self._defaults:
            self._defaults[key] = self._default_object(schema_name, variant)
        return copy.deepcopy(self._defaults[key])

    def _default_object(self, schema_name, variant=None):
        """A new object of a schema (variant) as the server holds it: the schema's defaults in their wire form,
        non-nullable booleans false, sets, lists and maps empty, nullable properties null, required nested objects
        filled with their own defaults."""
        variants = self.cat.variants(schema_name)
        names = [name for name, dummy in variants]
        if variant is None:
            variant = names[0]
        field_schema = dict(variants).get(variant)
        out = {"@type": variant} if self.cat.is_multi(schema_name) else {}
        defaults = self.cat.defaults(field_schema)
        for prop, spec in self.cat.properties(field_schema).items():
            ptype = spec["type"]
            if prop in defaults:
                out[prop] = self.wire(ptype, defaults[prop])
            elif ptype["type"] in ("set", "objectList", "map"):
                out[prop] = {}
            elif ptype.get("nullable"):
                out[prop] = None
            elif ptype["type"] == "boolean":
                out[prop] = False
            elif ptype["type"] == "object" and spec.get("update") != "serverSet":
                out[prop] = self.default_object(ptype["objectName"])
        return out

    def wire(self, ptype, value):
        """The schema's `defaults` are presentation (expressions as {"default": ...} or with an array `match`,
        durations as "1m", lists as arrays); the wire form is what /get returns and /set accepts."""
        if value is None:
            return None
        kind = ptype["type"]
        if kind == "number" and ptype.get("format") == "duration" and isinstance(value, str):
            return parse_duration(value)
        if kind == "object" and isinstance(value, dict):
            if ptype["objectName"] == EXPRESSION:
                return self.wire_expression(value)
            variant = value.get("@type") if self.cat.is_multi(ptype["objectName"]) else None
            out = self.default_object(ptype["objectName"], variant)
            props = self.cat.properties(self.cat.field_schema_for(ptype["objectName"], variant))
            for key, item in value.items():
                if key != "@type" and key in props:
                    out[key] = self.wire(props[key]["type"], item)
            return out
        if kind == "objectList":
            items = value if isinstance(value, list) else [value[k] for k in sorted(value, key=int)]
            return {str(i): self.wire({"type": "object", "objectName": ptype["objectName"]}, item) for i, item in enumerate(items)}
        if kind == "set" and isinstance(value, list):
            return {member: True for member in value}
        return value

    @staticmethod
    def wire_expression(value):
        if "default" in value and "else" not in value:
            return {"match": {}, "else": value["default"]}
        match = value.get("match") or {}
        items = match if isinstance(match, list) else [match[k] for k in sorted(match, key=int)]
        return {"match": {str(i): {"if": m.get("if"), "then": m.get("then")} for i, m in enumerate(items)},
                "else": value.get("else")}

    # ------------------------------------------------------------------------------------------------ coercion
    def coerce(self, ptype, value, path, ctx, stored=None):
        kind = ptype["type"]
        if value is None:
            if ptype.get("nullable"):
                return None
            raise SetError("validationFailed", validationErrors=[{"type": "Required", "property": path}])
        if kind == "string":
            if not isinstance(value, str):
                raise SetError("invalidPatch", "Invalid value", properties=[path])
            if value == "" and ptype.get("nullable"):
                raise SetError("validationFailed", validationErrors=[{"type": "Required", "property": path}])
            if ptype.get("format") == "emailAddress":
                return normalise_email(value, path)
            return value
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SetError("invalidPatch", "Invalid value", properties=[path])
            if ptype.get("format") in ("unsignedInteger", "size", "duration") and value < 0:
                raise SetError("validationFailed", validationErrors=[{"type": "MinValue", "property": path, "required": 0}])
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise SetError("invalidPatch", "Invalid value", properties=[path])
            return value
        if kind == "enum":
            allowed = self.cat.enums.get(ptype.get("enumName"))
            if not isinstance(value, str) or (allowed and value not in allowed):
                raise SetError("invalidPatch", "Invalid value %r" % value, properties=[path])
            return value
        if kind in ("objectId", "blobId", "utcDateTime"):
            if not isinstance(value, str):
                raise SetError("invalidPatch", "Invalid value", properties=[path])
            if kind == "objectId":
                return ctx.ref(value, ptype["objectName"], path)
            return value
        if kind == "set":
            if not isinstance(value, dict):
                raise SetError("invalidPatch", "Sets are objects mapping members to true", properties=[path])
            out = {}
            for member, flag in value.items():
                if flag is not True:
                    raise SetError("invalidPatch", "Invalid set member value", properties=["%s/%s" % (path, member)])
                member = self.coerce(ptype["class"], member, "%s/%s" % (path, member), ctx)
                out[member] = True
            return out
        if kind == "objectList":
            if not isinstance(value, dict) or any(not k.isdigit() for k in value):
                raise SetError("invalidPatch", "Lists are objects keyed by position", properties=[path])
            items = [value[k] for k in sorted(value, key=int)]
            return {str(i): self.coerce_object(ptype["objectName"], item, "%s/%d" % (path, i), ctx)
                    for i, item in enumerate(items)}
        if kind == "map":
            if not isinstance(value, dict):
                raise SetError("invalidPatch", "Invalid value", properties=[path])
            return value
        if kind == "object":
            name = ptype["objectName"]
            if isinstance(stored, dict) and not self.cat.is_multi(name):
                return self.coerce_object(name, value, path, ctx, existing=stored, merge=True)
            return self.coerce_object(name, value, path, ctx)
        return value

    def coerce_object(self, schema_name, value, path, ctx, existing=None, top=False, merge=False):
        """Coerce an object value. `top` with `existing`: an update of a stored object (unsent properties kept);
        `merge`: a partial value for a plain nested object, patched onto the stored one. Tagged unions (multi-variant
        objects) need their @type whenever they are set and are replaced whole."""
        if not isinstance(value, dict):
            raise SetError("invalidPatch", "Invalid value", properties=[path or "@type"])
        multi = self.cat.is_multi(schema_name)
        variants = dict(self.cat.variants(schema_name))
        variant = value.get("@type") if multi else None
        if multi and variant is None and top and existing is not None:
            variant = existing.get("@type")
        if multi and variant not in variants:
            raise SetError("invalidPatch", MISSING_TYPE, properties=[(path + "/@type").lstrip("/")])
        field_schema = variants.get(variant)
        props = self.cat.properties(field_schema)
        keep = existing is not None and (merge or (top and existing.get("@type") == variant))
        base = copy.deepcopy(existing) if keep else self.default_object(schema_name, variant)
        lenient = not path and self.cat.kind(schema_name) == "singleton"
        for key, item in value.items():
            if key == "@type":
                continue
            sub = (path + "/" + key).lstrip("/")
            spec = props.get(key)
            if spec is None:
                raise SetError("invalidPatch", "Invalid property", properties=[sub])
            if spec.get("update") == "serverSet":
                if top and keep:
                    continue  # the stored value, carried by the merge of an update (patch keys are checked first)
                raise SetError("invalidPatch", "Cannot modify server set property", properties=[sub])
            stored = existing.get(key) if keep else None
            if top and keep and spec.get("update") == "immutable" and stored != item:
                raise SetError("invalidPatch", "Cannot modify read-only property", properties=[sub])
            if item is None and lenient and stored is None and spec["type"]["type"] == "objectId":
                continue  # a singleton reference never set (e.g. defaultDomainId before any domain exists)
            base[key] = self.coerce(spec["type"], item, sub, ctx, stored)
        missing = self.missing_required(schema_name, base, path, lenient, given=value)
        if missing:
            raise SetError("validationFailed", validationErrors=[{"type": "Required", "property": missing}])
        if not path:
            if existing is not None:
                self.restore_masked(schema_name, base, existing)
            errors = validate.check_object(self.cat, schema_name, base)
            if errors:
                raise SetError("validationFailed", validationErrors=errors)
        return base

    def missing_required(self, schema_name, value, path, lenient=False, given=None):
        """The first required property (non-nullable, no default) left unset, also inside nested objects that were
        filled from defaults rather than sent."""
        field_schema = self.field_schema_of(schema_name, dict(self.cat.variants(schema_name)), value)
        defaults = self.cat.defaults(field_schema)
        for prop, spec in self.cat.properties(field_schema).items():
            ptype = spec["type"]
            if spec.get("update") == "serverSet" or prop in defaults or ptype.get("nullable"):
                continue
            sub = (path + "/" + prop).lstrip("/")
            item = value.get(prop)
            if ptype["type"] in REQUIRED_KINDS and item is None:
                if not (lenient and ptype["type"] == "objectId"):
                    return sub
            elif ptype["type"] == "object" and isinstance(item, dict) and (given is None or prop not in given):
                inner = self.missing_required(ptype["objectName"], item, sub)
                if inner:
                    return inner
        return None

    def restore_masked(self, schema_name, value, old):
        """Writing the mask "****" back into a secret keeps the stored secret (same path, same variant)."""
        if not isinstance(value, dict) or not isinstance(old, dict) or value.get("@type") != old.get("@type"):
            return
        variants = dict(self.cat.variants(schema_name))
        field_schema = self.field_schema_of(schema_name, variants, value)
        for prop, spec in self.cat.properties(field_schema).items():
            ptype, item = spec["type"], value.get(prop)
            if ptype["type"] == "string" and (ptype.get("format") in ("secret", "secretText") or prop in MASKED_ALSO):
                if item == SECRET_MASK and old.get(prop) is not None:
                    value[prop] = old[prop]
            elif ptype["type"] == "object":
                self.restore_masked(ptype["objectName"], item, old.get(prop))
            elif ptype["type"] == "objectList" and isinstance(item, dict) and isinstance(old.get(prop), dict):
                for pos, entry in item.items():
                    self.restore_masked(ptype["objectName"], entry, old[prop].get(pos))

    # ------------------------------------------------------------------------------------------------ references
    def walk_refs(self, schema_name, value):
        """Yield (objectName, id) for every objectId inside an object of schema_name."""
        if not isinstance(value, dict):
            return
        variants = dict(self.cat.variants(schema_name))
        field_schema = self.field_schema_of(schema_name, variants, value)
        for prop, spec in self.cat.properties(field_schema).items():
            if prop in value and value[prop] is not None:
                yield from self._refs_in(spec["type"], value[prop])

    def _refs_in(self, ptype, value):
        kind = ptype["type"]
        if kind == "objectId" and isinstance(value, str):
            yield ptype["objectName"], value
        elif kind == "set" and isinstance(value, dict) and ptype["class"]["type"] == "objectId":
            for member in value:
                yield ptype["class"]["objectName"], member
        elif kind == "objectList" and isinstance(value, dict):
            for item in value.values():
                yield from self.walk_refs(ptype["objectName"], item)
        elif kind == "object":
            yield from self.walk_refs(ptype["objectName"], value)

    def field_schema_of(self, schema_name, variants, value):
        if self.cat.is_multi(schema_name):
            return variants.get(value.get("@type"))
        return list(variants.values())[0] if variants else None

    def check_foreign_keys(self, tx, obj_type, body):
        for target, ref in self.walk_refs(obj_type, body):
            base, variant = self.cat.target_type(target)
            if self.cat.kind(base) == "singleton":
                continue
            found = tx.get(base, ref)
            if found is None or (variant and found.get("@type") != variant):
                raise SetError("invalidForeignKey", objectId={"object": short(base), "id": ref})

    def linked(self, tx, obj_type, obj_id):
        links = []
        for other in tx.types():
            for other_id, body in tx.all(other).items():
                if (other, other_id) == (obj_type, obj_id):
                    continue
                for target, ref in self.walk_refs(other, body):
                    if ref == obj_id and self.cat.target_type(target)[0] == obj_type:
                        links.append({"object": short(other), "id": other_id})
                        break
        return links

    # ------------------------------------------------------------------------------------------------ type rules
    def domain_names(self, tx, skip=None):
        taken = {}
        for dom_id, dom in tx.all("x:Domain").items():
            if dom_id == skip:
                continue
            taken[dom["name"]] = dom_id
            for alias in dom.get("aliases", {}):
                taken[alias] = dom_id
        return taken

    def email_index(self, tx):
        index = getattr(tx, "email_index", None)
        if index is None:
            index = {}
            for obj_type in ("x:Account", "x:MailingList"):
                for obj_id, body in tx.all(obj_type).items():
                    for key in self.emails_of(body):
                        index[key] = (obj_type, obj_id)
            tx.email_index = index
        return index

    @staticmethod
    def emails_of(body):
        keys = [(body.get("name"), body.get("domainId"))]
        for alias in (body.get("aliases") or {}).values():
            keys.append((alias.get("name"), alias.get("domainId")))
        return keys

    def apply_rules(self, tx, obj_type, obj_id, body, old):
        if obj_type == "x:Domain":
            body["name"] = normalise_domain(body["name"])
            body["aliases"] = {normalise_domain(a, "aliases"): True for a in body.get("aliases", {})}
            taken = self.domain_names(tx, skip=obj_id)
            for name, prop in [(body["name"], "name")] + [(a, "aliases") for a in body["aliases"]]:
                if name in taken:
                    raise SetError("primaryKeyViolation", properties=[prop], objectId={"object": "Domain", "id": taken[name]})
            dkim_settings = body.get("dkimManagement") or {}
            if dkim_settings.get("@type") == "Automatic":
                problem = check_selector_template(dkim_settings.get("selectorTemplate") or "")
                if problem:
                    raise SetError("invalidProperties", problem, properties=["selectorTemplate"])
        elif obj_type in ("x:Account", "x:MailingList"):
            body["name"] = normalise_local(body["name"])
            for alias in (body.get("aliases") or {}).values():
                alias["name"] = normalise_local(alias["name"], "aliases")
            if old is not None and obj_type == "x:Account" and old.get("@type") != body.get("@type"):
                raise SetError("invalidProperties", "Cannot change the type of an existing account.", properties=["@type"])
            index = self.email_index(tx)
            mine = self.emails_of(body)
            if len(set(mine)) != len(mine):
                raise SetError("primaryKeyViolation", properties=["email"], objectId={"object": short(obj_type), "id": obj_id})
            for key in mine:
                holder = index.get(key)
                if holder and holder != (obj_type, obj_id):
                    raise SetError("primaryKeyViolation", properties=["email"], objectId={"object": short(holder[0]), "id": holder[1]})
            if obj_type == "x:Account" and body.get("@type") == "User":
                self.apply_credentials(tx, body, old)
        elif obj_type in self.cat.unique:
            keys = self.cat.unique[obj_type]
            mine = tuple(body.get(k) for k in keys)
            for other_id, other in tx.all(obj_type).items():
                if other_id != obj_id and tuple(other.get(k) for k in keys) == mine:
                    raise SetError("primaryKeyViolation", properties=list(keys), objectId={"object": short(obj_type), "id": other_id})
        elif obj_type == "x:DkimSignature":
            try:
                dkim.public_key_of(body["privateKey"], body["@type"])
            except ValueError as err:
                raise SetError("invalidProperties", "Failed to validate DKIM signature: %s" % err, properties=["privateKey"])

    def apply_credentials(self, tx, body, old):
        creds = body.get("credentials") or {}
        old_creds = (old or {}).get("credentials") or {}
        if sum(1 for c in creds.values() if c.get("@type") == "Password") > 1:
            raise SetError("invalidProperties", "Only one password credential is allowed.", properties=["credentials"])
        policy = self.singleton(tx, "x:Authentication")
        for pos, cred in creds.items():
            kind = cred.get("@type")
            if kind != "Password":
                previous = old_creds.get(pos)
                if previous is None or previous.get("@type") != kind:
                    raise SetError("invalidProperties", "Secondary credentials cannot be set directly.", properties=["credentials"])
                creds[pos] = previous
                continue
            secret = cred.get("secret")
            if secret == SECRET_MASK:
                previous = next((c for c in old_creds.values() if c.get("@type") == "Password"), None)
                if previous is None:
                    raise SetError("invalidProperties", "Password required.", properties=["secret"])
                cred["secret"] = previous["secret"]
            elif not passwords.is_hash(secret) and not self._is_own_hash(old_creds, secret):
                problem = passwords.policy_error(secret, policy)
                if problem:
                    raise SetError("invalidProperties", problem, properties=["secret"])
                cred["secret"] = passwords.hash_password(secret)
        # keep API keys / app passwords the account already had (they are not writable here)
        for pos, previous in old_creds.items():
            if previous.get("@type") in ("ApiKey", "AppPassword") and previous not in creds.values():
                creds[str(len(creds))] = previous

    @staticmethod
    def _is_own_hash(old_creds, secret):
        return any(c.get("secret") == secret for c in old_creds.values())

    # ------------------------------------------------------------------------------------------------ singletons
    def singleton(self, tx, obj_type):
        stored = tx.get(obj_type, ids.SINGLETON)
        if stored is not None:
            return stored
        key = ("initial", obj_type)
        if key not in self._defaults:
            value = self.default_object(obj_type)
            self.fill_initial(obj_type, value)
            self._defaults[key] = value
        return copy.deepcopy(self._defaults[key])

    def fill_initial(self, schema_name, value):
        """A settings singleton as a first start leaves it: required key material the server generates itself
        (e.g. the OIDC provider's keys) gets a random value, a required expression without a default is empty."""
        field_schema = self.field_schema_of(schema_name, dict(self.cat.variants(schema_name)), value)
        for prop, spec in self.cat.properties(field_schema).items():
            ptype, item = spec["type"], value.get(prop)
            if ptype["type"] == "string" and item is None and not ptype.get("nullable") and spec.get("update") != "serverSet":
                value[prop] = secrets.token_urlsafe(32) if ptype.get("format") in ("secret", "secretText") else ""
            elif ptype["type"] == "object" and isinstance(item, dict):
                self.fill_initial(ptype["objectName"], item)

    # ------------------------------------------------------------------------------------------------ /get
    def present(self, tx, obj_type, obj_id, body, properties):
        out = copy.deepcopy(body)
        out["id"] = obj_id
        if obj_type in ("x:Account", "x:MailingList"):
            dom = tx.get("x:Domain", body.get("domainId"))
            out["emailAddress"] = "%s@%s" % (body["name"], dom["name"]) if dom else None
        if obj_type == "x:Domain" and (properties is None or "dnsZoneFile" in properties):
            out["dnsZoneFile"] = dns.zone_file(self, tx, obj_id, body)
        if obj_type == "x:DkimSignature":
            out["publicKey"] = dkim.public_key_of(body["privateKey"], body["@type"])
        if obj_type in ("x:Account", "x:Tenant"):
            out["usedDiskQuota"] = body.get("usedDiskQuota") or 0
        if obj_type == "x:AcmeProvider":
            out["description"] = "%s (%s)" % (body.get("directory"), body.get("accountUri") or "unregistered")
        for prop, empty in self.shape(obj_type, body.get("@type")):
            if prop not in out:
                out[prop] = copy.copy(empty)
        self.mask(obj_type, out)
        for cred in (out.get("credentials") or {}).values() if obj_type == "x:Account" else ():
            if isinstance(cred, dict) and cred.get("otpAuth") is None:
                cred.pop("otpAuth", None)
        if properties is not None:
            out = {k: v for k, v in out.items() if k in properties or k in ("id", "@type")}
        return out

    def shape(self, obj_type, variant):
        """[(property, value when unset)] of a type's variant: null, or {} for sets, lists and maps."""
        key = ("shape", obj_type, variant)
        if key not in self._defaults:
            variants = dict(self.cat.variants(obj_type))
            field_schema = variants.get(variant) if self.cat.is_multi(obj_type) else next(iter(variants.values()), None)
            self._defaults[key] = [(prop, {} if spec["type"]["type"] in ("set", "objectList", "map") else None)
                                   for prop, spec in self.cat.properties(field_schema).items()]
        return self._defaults[key]

    def mask(self, schema_name, value):
        if not isinstance(value, dict):
            return
        variants = dict(self.cat.variants(schema_name))
        field_schema = self.field_schema_of(schema_name, variants, value)
        for prop, spec in self.cat.properties(field_schema).items():
            item = value.get(prop)
            if item is None:
                continue
            ptype = spec["type"]
            if ptype["type"] == "string" and (ptype.get("format") in ("secret", "secretText") or prop in MASKED_ALSO):
                value[prop] = SECRET_MASK
            elif ptype["type"] == "object":
                self.mask(ptype["objectName"], item)
            elif ptype["type"] == "objectList" and isinstance(item, dict):
                for entry in item.values():
                    self.mask(ptype["objectName"], entry)

    # ------------------------------------------------------------------------------------------------ side effects
    def after_create(self, tx, obj_type, obj_id, body, ctx):
        if obj_type == "x:Domain" and body.get("dkimManagement", {}).get("@type") == "Automatic":
            self.schedule_dkim(tx, obj_id, body)

    def schedule_dkim(self, tx, domain_id, domain):
        """Normal mode: run the DkimManagement task now (synchronously). Recovery mode runs no tasks: queue it."""
        if self.recovery_mode:
            task = self.default_object("x:Task", "DkimManagement")
            task["domainId"] = domain_id
            task["status"] = {"@type": "Pending", "due": now()}
            tx.put("x:Task", ids.snowflake(), task)
            return []
        return self.generate_dkim(tx, domain_id, domain)

    def run_pending_tasks(self, tx):
        """On a normal start, execute the DkimManagement tasks queued while in recovery mode."""
        for task_id, task in list(tx.all("x:Task").items()):
            if task.get("@type") == "DkimManagement":
                domain = tx.get("x:Domain", task.get("domainId"))
                if domain is not None:
                    self.generate_dkim(tx, task["domainId"], domain)
                tx.delete("x:Task", task_id)

    def generate_dkim(self, tx, domain_id, domain):
        if not dkim.AVAILABLE:
            sys.stderr.write("DkimManagement task for domain %s skipped: 'cryptography' is not installed\n" % domain_id)
            return []
        settings = domain.get("dkimManagement") or {}
        algorithms = settings.get("algorithms") or {"Dkim1Ed25519Sha256": True, "Dkim1RsaSha256": True}
        template = settings.get("selectorTemplate") or "v{version}-{algorithm}-{date-%Y%m%d}"
        existing = {s["selector"] for s in tx.all("x:DkimSignature").values() if s.get("domainId") == domain_id}
        for sig_id, sig in list(tx.all("x:DkimSignature").items()):
            if sig.get("domainId") == domain_id and sig.get("stage") == "active":
                sig = dict(sig, stage="retiring")
                tx.put("x:DkimSignature", sig_id, sig)
        created = []
        for algorithm in sorted(algorithms):
            selector = dkim.selector(template, algorithm)
            base, n = selector, 2
            while selector in existing:
                selector, n = "%s-%d" % (base, n), n + 1
            existing.add(selector)
            body = self.default_object("x:DkimSignature", algorithm)
            body.update(domainId=domain_id, selector=selector, privateKey=dkim.generate(algorithm), createdAt=now(), stage="active")
            sig_id = ids.snowflake()
            tx.put("x:DkimSignature", sig_id, body)
            created.append(sig_id)
        return created
