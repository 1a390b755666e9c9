"""Bootstrap mode (no config.json): only the x:Bootstrap singleton is reachable. Completing it validates and opens
the data store, writes config.json, creates the default domain and (internal directory) an `admin@<domain>` account
and returns its generated password once. The real server then restarts into normal mode; the emulator switches
in-process (documented difference)."""
import secrets
import string

from . import ids
from .methods import Context
from .registry import MethodError, SetError, normalise_domain

PASSWORD_ALPHABET = string.ascii_letters + string.digits


def generated_password():
    """16 characters with every class present, so it satisfies the default password policy."""
    while True:
        value = "".join(secrets.choice(PASSWORD_ALPHABET) for dummy in range(15)) + secrets.choice("!#%+-=_")
        if any(c.islower() for c in value) and any(c.isupper() for c in value) and any(c.isdigit() for c in value):
            return value


class Bootstrap:
    def __init__(self, emulator):
        self.emu = emulator
        self.reg = emulator.registry

    def current(self):
        body = self.reg.default_object("x:Bootstrap")
        body["serverHostname"] = self.emu.hostname
        body["defaultDomain"] = self.emu.hostname.partition(".")[2] or self.emu.hostname
        return body

    def call(self, name, args, ctx):
        obj_type, dummy, op = name.rpartition("/")
        if obj_type != "x:Bootstrap":
            raise MethodError("forbidden", "The server is in bootstrap mode. Only the 'Bootstrap' object type can be "
                                           "accessed until the initial setup is completed.")
        if op == "get":
            wanted = args.get("ids")
            if wanted is not None and ids.SINGLETON not in wanted:
                return {"accountId": ctx.account_id, "list": [], "notFound": list(wanted)}
            body = dict(self.current(), id=ids.SINGLETON)
            self.reg.mask("x:Bootstrap", body)
            props = args.get("properties")
            if props is not None:
                body = {k: v for k, v in body.items() if k in props or k == "id"}
            return {"accountId": ctx.account_id, "list": [body],
                    "notFound": [i for i in (wanted or []) if i != ids.SINGLETON]}
        if op != "set":
            raise MethodError("unknownMethod", "Unknown method %s" % name)
        out = {"accountId": ctx.account_id, "created": None, "notCreated": None, "updated": None, "notUpdated": None,
               "destroyed": None, "notDestroyed": None}
        for obj_id in args.get("destroy") or []:
            out.setdefault("notDestroyed", None)
            out["notDestroyed"] = dict(out["notDestroyed"] or {}, **{obj_id: {
                "type": "singleton", "description": "Singletons cannot be created or destroyed."}})
        for cid, body in (args.get("create") or {}).items():
            try:
                out["created"] = dict(out["created"] or {}, **{cid: dict(self.complete(body, ctx), id=ids.SINGLETON)})
            except SetError as err:
                out["notCreated"] = dict(out["notCreated"] or {}, **{cid: err.body})
        for obj_id, patch in (args.get("update") or {}).items():
            try:
                if obj_id != ids.SINGLETON:
                    raise SetError("notFound")
                out["updated"] = dict(out["updated"] or {}, **{obj_id: self.complete(patch, ctx) or None})
            except SetError as err:
                out["notUpdated"] = dict(out["notUpdated"] or {}, **{obj_id: err.body})
        return out

    def complete(self, patch, ctx):
        if not self.emu.bootstrap:
            raise SetError("forbidden", "The initial setup has already been completed.")
        if not isinstance(patch, dict):
            raise SetError("invalidPatch", "Invalid patch")
        merged = self.current()
        merged.update(patch)
        value = self.reg.coerce_object("x:Bootstrap", merged, "", ctx, existing=self.current(), top=True)
        if not value.get("serverHostname"):
            raise SetError("validationFailed", validationErrors=[{"type": "Required", "property": "serverHostname"}])
        domain_name = normalise_domain(value.get("defaultDomain") or "", "defaultDomain")
        datastore = value["dataStore"]
        if datastore.get("@type") not in ("RocksDb", "Sqlite", "PostgreSql"):
            raise SetError("invalidProperties", "The emulator supports RocksDb, Sqlite and PostgreSql data stores.",
                           properties=["dataStore"])
        try:
            self.emu.open(datastore, write_config=True)
        except Exception as err:  # a store that cannot be opened is reported like the real validation
            raise SetError("invalidProperties", "Failed to open data store: %s" % err, properties=["dataStore"]) from None
        try:
            return self._provision(value, domain_name, ctx)
        except SetError:
            self.emu.abort_bootstrap()
            raise

    def _provision(self, value, domain_name, ctx):
        admin = {}
        with self.emu.store.transaction() as tx:
            run = Context({}, ctx.account_id, self.emu.stats)
            for singleton in ("blobStore", "searchStore", "inMemoryStore"):
                tx.put("x:" + singleton[0].upper() + singleton[1:], ids.SINGLETON, value[singleton])
            if value.get("tracer"):
                self.emu.methods.create(tx, "x:Tracer", "tracer", value["tracer"], run)
            if value.get("dnsServer", {}).get("@type") not in (None, "Manual"):
                self.emu.methods.create(tx, "x:DnsServer", "dns", dict(value["dnsServer"], description=domain_name), run)
            dkim = {"@type": "Automatic"} if value.get("generateDkimKeys") else {"@type": "Manual"}
            domain_id = self.emu.methods.create(tx, "x:Domain", "domain", {"name": domain_name, "dkimManagement": dkim}, run)["id"]
            settings = self.reg.singleton(tx, "x:SystemSettings")
            settings.update(defaultHostname=value["serverHostname"].strip().lower(), defaultDomainId=domain_id)
            tx.put("x:SystemSettings", ids.SINGLETON, settings)
            if value["directory"].get("@type") == "Internal":
                password = generated_password()
                self.emu.methods.create(tx, "x:Account", "admin", {
                    "@type": "User", "name": "admin", "domainId": domain_id, "roles": {"@type": "Admin"},
                    "description": "System administrator",
                    "credentials": {"0": {"@type": "Password", "secret": password}}}, run)
                admin = {"username": "admin@" + domain_name, "secret": password}
            else:
                directory = dict(value["directory"], description="Directory for %s" % domain_name)
                directory_id = self.emu.methods.create(tx, "x:Directory", "directory", directory, run)["id"]
                auth = self.reg.singleton(tx, "x:Authentication")
                auth["directoryId"] = directory_id
                tx.put("x:Authentication", ids.SINGLETON, auth)
        self.emu.finish_bootstrap()
        return admin
