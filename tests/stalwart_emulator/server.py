"""HTTP front: session, /jmap, health, schema, auth, and the emulator-only stats endpoints."""
import base64
import collections
import hashlib
import http.server
import json
import os
import socket
import ssl
import sys
import threading
import time
import traceback

from . import VERSION, ids, listeners, passwords
from .methods import MAX_GET, MAX_SET, SELF_SERVICE, Context, Methods
from .bootstrap import Bootstrap, generated_password
from .registry import MethodError, Registry
from .schema import Catalog
from .store import open_store

CORE = "urn:ietf:params:jmap:core"
MGMT = "urn:stalwart:jmap"
MAX_CALLS = 16
MAX_SIZE = 10_000_000
RECOVERY_ACCOUNT = ids.encode(2 ** 32 - 1)
DEFAULT_LISTENERS = [
    ("smtp", "smtp", "[::]:25", False), ("submissions", "smtp", "[::]:465", True), ("imaps", "imap", "[::]:993", True),
    ("pop3s", "pop3", "[::]:995", True), ("sieve", "manageSieve", "[::]:4190", False), ("https", "http", "[::]:443", True),
    ("http", "http", "[::]:8080", False),
]
# result references may only point at these responses
REFERABLE = {"get", "changes", "query", "queryChanges"}
# capabilities a request may name in `using` (any other is a notRequest error)
CAPABILITIES = {CORE, MGMT} | {"urn:ietf:params:jmap:" + c for c in (
    "mail", "submission", "vacationresponse", "contacts", "calendars", "sieve", "blob", "quota", "websocket",
    "principals", "principals:owner", "calendars:parse", "contacts:parse", "mdn")}
DEFAULT_ROLES = ["User", "Group", "Tenant Administrator", "System Administrator"]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.http = collections.Counter()
            self.methods = collections.Counter()
            self.objects = collections.Counter()
            self.by_type = collections.defaultdict(collections.Counter)

    def count_http(self, path):
        with self.lock:
            self.http[path] += 1

    def count_method(self, name):
        with self.lock:
            self.methods[name] += 1

    def count_object(self, what, obj_type=None):
        with self.lock:
            self.objects[what] += 1
            if obj_type:
                self.by_type[obj_type][what] += 1

    def snapshot(self):
        with self.lock:
            return {"http": dict(self.http), "methods": dict(self.methods), "objects": dict(self.objects),
                    "objectsByType": {t: dict(c) for t, c in self.by_type.items()},
                    "jmapCalls": sum(self.methods.values()), "httpRequests": sum(self.http.values())}


class Problem(Exception):
    def __init__(self, status, body, headers=()):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, list(headers)


def unauthorized():
    return Problem(401, {"type": "about:blank", "status": 401, "title": "Unauthorized",
                         "detail": "You have to authenticate first."},
                   [("WWW-Authenticate", 'Bearer realm="Stalwart Server", resource_metadata="/.well-known/oauth-protected-resource"'),
                    ("WWW-Authenticate", 'Basic realm="Stalwart Server"')])


def request_error(kind, detail, **extra):
    body = {"type": "urn:ietf:params:jmap:error:" + kind, "status": 400, "detail": detail}
    body.update(extra)
    return Problem(400, body)


class Emulator:
    def __init__(self, config_path):
        self.config_path = config_path
        self.catalog = Catalog()
        self.hostname = (os.environ.get("STALWART_HOSTNAME") or socket_hostname()).lower()
        self.recovery_mode = os.environ.get("STALWART_RECOVERY_MODE", "").strip().lower() in ("1", "true", "yes")
        self.registry = Registry(self.catalog, self.hostname, recovery_mode=self.recovery_mode)
        self.methods = Methods(self.registry, local_config=(self.read_config, self.write_config))
        self.stats = Stats()
        self.recovery = parse_recovery(os.environ.get("STALWART_RECOVERY_ADMIN"))
        self.auth_cache = {}
        self.auth_lock = threading.Lock()
        self.store = None
        self.bootstrapper = Bootstrap(self)
        self.bootstrap_lock = threading.Lock()
        if os.path.exists(config_path):
            self.open(self.read_config())
        elif not self.recovery:
            # like the real server: with no pinned recovery admin, bootstrap mode prints a random admin password
            self.recovery = ("admin", generated_password())
            print("Bootstrap mode: sign in as 'admin' with password %s" % self.recovery[1], flush=True)

    @property
    def bootstrap(self):
        return self.store is None

    @property
    def mode(self):
        return "bootstrap" if self.bootstrap else ("recovery" if self.recovery_mode else "normal")

    # config.json is the x:DataStore singleton of this node
    def read_config(self):
        with open(self.config_path, encoding="utf-8") as handle:
            try:
                value = json.load(handle)
            except ValueError as err:
                raise SystemExit("Failed to parse %s: %s" % (self.config_path, err)) from None
        if not isinstance(value, dict) or "@type" not in value:
            raise SystemExit("Failed to parse %s: expected one DataStore object with an @type" % self.config_path)
        return value

    def write_config(self, datastore):
        directory = os.path.dirname(os.path.abspath(self.config_path))
        os.makedirs(directory, exist_ok=True)
        tmp = "%s.tmp-%d" % (self.config_path, os.getpid())
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(datastore, handle, separators=(",", ":"))
        os.chmod(tmp, 0o640)
        os.replace(tmp, self.config_path)

    def open(self, datastore, write_config=False):
        store = open_store(datastore)
        with store.transaction() as tx:
            self.seed(tx)
            if not self.recovery_mode:
                self.registry.run_pending_tasks(tx)
        if write_config:
            self.write_config(datastore)
        self.store = store

    def finish_bootstrap(self):
        self.auth_cache.clear()
        if os.environ.get("STALWART_EMULATOR_HTTP"):
            # test listener from the environment: nothing to rebind, so switch in-process (documented difference)
            print("Bootstrap completed: config.json written to %s; now in %s mode" % (self.config_path, self.mode), flush=True)
            return
        print("Bootstrap completed: config.json written to %s; restarting into normal mode" % self.config_path, flush=True)
        threading.Timer(0.5, restart).start()  # after the response has been sent

    def abort_bootstrap(self):
        self.store = None
        if os.path.exists(self.config_path):
            os.remove(self.config_path)

    def seed(self, tx):
        """What the real server creates on first start."""
        if not tx.all("x:Role"):
            role_ids = []
            for description in DEFAULT_ROLES:
                role_id = ids.encode(tx.next_id("x:Role"))
                tx.put("x:Role", role_id, dict(self.registry.default_object("x:Role"), description=description))
                role_ids.append(role_id)
            auth = self.registry.default_object("x:Authentication")
            for key, role_id in zip(("defaultUserRoleIds", "defaultGroupRoleIds", "defaultTenantRoleIds", "defaultAdminRoleIds"), role_ids):
                if key in self.catalog.properties("x:Authentication"):
                    auth[key] = {role_id: True}
            tx.put("x:Authentication", ids.SINGLETON, auth)
        if not tx.all("x:NetworkListener"):
            for name, protocol, bind, implicit in DEFAULT_LISTENERS:
                body = self.registry.default_object("x:NetworkListener")
                body.update(name=name, protocol=protocol, bind={bind: True}, tlsImplicit=implicit)
                tx.put("x:NetworkListener", ids.snowflake(), body)
        if tx.get("x:SystemSettings", ids.SINGLETON) is None:
            settings = self.registry.default_object("x:SystemSettings")
            settings["defaultHostname"] = self.hostname
            tx.put("x:SystemSettings", ids.SINGLETON, settings)
        if self.recovery_mode:
            return  # recovery mode joins no cluster: no node lease
        lease = {"nodeId": 1, "hostname": self.hostname, "lastRenewal": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "status": "active"}
        nodes = tx.all("x:ClusterNode")
        mine = next((i for i, n in nodes.items() if n.get("hostname") == self.hostname), None)
        if mine is None:
            lease["nodeId"] = len(nodes) + 1
            tx.put("x:ClusterNode", ids.snowflake(), lease)

    # ------------------------------------------------------------------------------------------------ auth
    def authenticate(self, header):
        if not header:
            raise unauthorized()
        cached = self.auth_cache.get(header)
        if cached:
            return cached
        scheme, dummy, value = header.partition(" ")
        scheme = scheme.lower()
        principal = None
        if scheme == "basic":
            try:
                user, dummy, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise unauthorized() from None
            user = user.strip().lower()
            if self.recovery and user == self.recovery[0].lower() and password == self.recovery[1]:
                principal = {"account": RECOVERY_ACCOUNT, "name": self.recovery[0], "admin": True}
            elif not self.bootstrap:
                principal = self.login(user, password)
        elif scheme == "bearer" and value.strip().startswith("API_") and not self.bootstrap:
            principal = self.api_key(value.strip())
        if principal is None:
            raise unauthorized()
        self.auth_cache[header] = principal
        return principal

    def login(self, user, password):
        with self.store.transaction() as tx:
            if "@" not in user:
                settings = self.registry.singleton(tx, "x:SystemSettings")
                dom = tx.get("x:Domain", settings.get("defaultDomainId"))
                if dom is None:
                    return None
                user = "%s@%s" % (user, dom["name"])
            local, dummy, domain = user.partition("@")
            dom_id = next((i for i, d in tx.all("x:Domain").items() if d["name"] == domain), None)
            holder = self.registry.email_index(tx).get((local, dom_id))
            if not holder or holder[0] != "x:Account":
                return None
            account = tx.get("x:Account", holder[1])
            for cred in (account.get("credentials") or {}).values():
                if cred.get("@type") == "Password" and passwords.verify(password, cred["secret"]):
                    return {"account": holder[1], "name": user, "admin": self.is_admin(tx, account)}
        return None

    def api_key(self, token):
        digest = "sha256:" + hashlib.sha256(token.encode()).hexdigest()
        with self.store.transaction() as tx:
            for acc_id, account in tx.all("x:Account").items():
                for cred in (account.get("credentials") or {}).values():
                    if cred.get("@type") == "ApiKey" and cred.get("secret") == digest:
                        dom = tx.get("x:Domain", account.get("domainId")) or {"name": ""}
                        return {"account": acc_id, "name": "%s@%s" % (account["name"], dom["name"]),
                                "admin": self.is_admin(tx, account)}
        return None

    @staticmethod
    def is_admin(tx, account):
        roles = account.get("roles") or {}
        if roles.get("@type") == "Admin":
            return True
        if roles.get("@type") == "Custom":
            return any(tx.get("x:Role", r, ) and tx.get("x:Role", r).get("description") == "System Administrator"
                       for r in roles.get("roleIds", {}))
        return False

    # ------------------------------------------------------------------------------------------------ JMAP
    def session(self, principal):
        base = "https://%s" % self.hostname
        core = {"maxSizeUpload": 50000000, "maxConcurrentUpload": 4, "maxSizeRequest": MAX_SIZE,
                "maxConcurrentRequests": 4, "maxCallsInRequest": MAX_CALLS, "maxObjectsInGet": MAX_GET,
                "maxObjectsInSet": MAX_SET, "collationAlgorithms": ["i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap"]}
        out = {"capabilities": {CORE: core, "urn:ietf:params:jmap:mail": {}, "urn:ietf:params:jmap:submission": {}},
               "accounts": {}, "primaryAccounts": {}, "username": "", "apiUrl": base + "/jmap/",
               "downloadUrl": base + "/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
               "uploadUrl": base + "/jmap/upload/{accountId}/",
               "eventSourceUrl": base + "/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}",
               "state": "%08x" % (hash(self.hostname) & 0xFFFFFFFF), "x-stalwart-emulator": VERSION}
        if principal:
            acc = principal["account"]
            # every authenticated session lists the caller's account for management; what it may do is decided
            # per call (the default User role manages only its own credentials, settings and keys)
            caps = {CORE: {}, "urn:ietf:params:jmap:mail": {}, MGMT: {}}
            out["primaryAccounts"][MGMT] = acc
            out["accounts"][acc] = {"name": principal["name"], "isPersonal": True, "isReadOnly": False,
                                    "accountCapabilities": caps}
            out["primaryAccounts"]["urn:ietf:params:jmap:mail"] = acc
            out["username"] = principal["name"]
        return out

    def jmap(self, principal, raw, content_type):
        if content_type and content_type.split(";")[0].strip().lower() != "application/json":
            raise request_error("notJSON", "Content-Type must be application/json")
        if len(raw) > MAX_SIZE:
            raise request_error("limit", "Request too large", limit="maxSizeRequest")
        try:
            request = json.loads(raw)
        except ValueError:
            raise request_error("notRequest", "Request body does not parse as a JMAP request") from None
        if not isinstance(request, dict) or not isinstance(request.get("using"), list) \
                or not isinstance(request.get("methodCalls"), list):
            raise request_error("notRequest", "Request must have 'using' and 'methodCalls'")
        unknown = [c for c in request["using"] if c not in CAPABILITIES]
        if unknown:
            raise request_error("notRequest", "Unknown capability %s" % unknown[0])
        calls = request["methodCalls"]
        if len(calls) > MAX_CALLS:
            raise request_error("limit", "Too many method calls", limit="maxCallsInRequest")
        sent_created = request.get("createdIds")
        ctx = Context(dict(sent_created or {}), principal["account"], self.stats, admin=principal["admin"])
        responses = []
        for call in calls:
            if not (isinstance(call, list) and len(call) == 3 and isinstance(call[0], str) and isinstance(call[1], dict)):
                raise request_error("notRequest", "Each method call is [name, arguments, callId]")
            name, args, call_id = call
            self.stats.count_method(name)
            created_before = dict(ctx.created)
            try:
                args = resolve_references(args, responses)
                account = args.get("accountId")
                if account not in (None, principal["account"]) and not principal["admin"]:
                    raise MethodError("accountNotFound")
                if self.bootstrap:
                    with self.bootstrap_lock:
                        if self.bootstrap:
                            responses.append([name, self.bootstrapper.call(name, args, ctx), call_id])
                            continue
                if not principal["admin"] and name.rpartition("/")[0] not in SELF_SERVICE:
                    raise MethodError("forbidden", "You do not have permission to perform this action.")
                if account:
                    ctx.account_id = account
                    ctx.explicit_account = True
                with self.store.transaction() as tx:
                    result = self.methods.call(tx, name, args, ctx)
                if name.startswith("x:Account/") and name.endswith("/set"):
                    self.auth_cache.clear()
                responses.append([name, result, call_id])
            except MethodError as err:
                ctx.created = created_before  # the method's writes were rolled back with its transaction
                responses.append(["error", err.body, call_id])
            except Exception:  # a bug in the emulator must not look like a server answer
                traceback.print_exc(file=sys.stderr)
                responses.append(["error", {"type": "serverFail", "description": "emulator error"}, call_id])
            ctx.account_id = principal["account"]
            ctx.explicit_account = False
        out = {"methodResponses": responses, "sessionState": "%08x" % (hash(self.hostname) & 0xFFFFFFFF)}
        if sent_created is not None:
            out["createdIds"] = ctx.created
        return out


def resolve_references(args, responses):
    out = {}
    for key, value in args.items():
        if key.startswith("#"):
            if not isinstance(value, dict) or not {"resultOf", "name", "path"} <= set(value):
                raise MethodError("invalidResultReference", "Malformed result reference")
            source = next((r for r in responses if r[2] == value["resultOf"] and r[0] == value["name"]), None)
            if source is None:
                raise MethodError("invalidResultReference", "No response for %s" % value["resultOf"])
            if source[0].rpartition("/")[2] not in REFERABLE:
                raise MethodError("invalidResultReference", "Results of %s cannot be referenced" % source[0])
            out[key[1:]] = evaluate_pointer(source[1], value["path"])
        else:
            out[key] = value
    return out


def evaluate_pointer(doc, path):
    parts = [p for p in path.split("/") if p != ""]
    nodes = [doc]
    flatten = False
    for part in parts:
        nxt = []
        for node in nodes:
            if part == "*":
                if not isinstance(node, list):
                    raise MethodError("invalidResultReference", "Path %s does not select a list" % path)
                nxt.extend(node)
                flatten = True
            elif isinstance(node, dict) and part in node:
                nxt.append(node[part])
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                nxt.append(node[int(part)])
            else:
                raise MethodError("invalidResultReference", "Path %s not found" % path)
        nodes = nxt
    if flatten:
        out = []
        for node in nodes:
            out.extend(node if isinstance(node, list) else [node])
        return out
    return nodes[0]


def parse_recovery(value):
    if not value or ":" not in value:
        return None
    user, dummy, password = value.partition(":")
    user, password = user.strip(), password.strip()
    return (user, password) if user and password else None


def socket_hostname():
    name = socket.gethostname().lower()
    return "localhost" if name.replace(".", "").isdigit() else name


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "Stalwart"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if os.environ.get("STALWART_EMULATOR_ACCESS_LOG"):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    @property
    def emu(self):
        return self.server.emulator

    def _send(self, status, body=None, ctype="application/json", headers=(), raw=None):
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _problem(self, err):
        self._send(err.status, err.body, "application/problem+json", err.headers)

    def _principal(self, required=True):
        header = self.headers.get("Authorization")
        if not header and not required:
            return None
        return self.emu.authenticate(header)

    def do_GET(self):
        path = self.path.split("?")[0]
        self.emu.stats.count_http(path if not path.startswith("/api/schema/") else "/api/schema/*")
        try:
            if path == "/healthz/live":
                return self._send(200, {"type": "about:blank", "status": 200, "title": "OK"}, "application/problem+json")
            if path == "/healthz/ready":
                status = 503 if self.emu.bootstrap else 200
                return self._send(status, {"type": "about:blank", "status": status,
                                           "title": "OK" if status == 200 else "Service Unavailable"}, "application/problem+json")
            if path == "/.well-known/jmap":
                return self._send(307, None, headers=[("Location", "/jmap/session")])
            if path == "/jmap/session":
                return self._send(200, self.emu.session(self._principal(required=False)))
            if path == "/api/schema":
                self._principal()
                digest = hashlib.sha256(self.emu.catalog.raw_gz).hexdigest()
                return self._send(307, None, headers=[("Location", "/api/schema/" + digest)])
            if path.startswith("/api/schema/"):
                self._principal()
                return self._send(200, raw=self.emu.catalog.raw_gz, headers=[("Content-Encoding", "gzip"),
                                                                             ("Cache-Control", "public, max-age=31536000, immutable")])
            if path == "/emulator/stats":
                self._admin()
                return self._send(200, self.emu.stats.snapshot())
            return self._send(404, {"type": "about:blank", "status": 404, "title": "Not Found"}, "application/problem+json")
        except Problem as err:
            return self._problem(err)

    def _admin(self):
        principal = self._principal()
        if not principal["admin"]:
            raise Problem(403, {"type": "about:blank", "status": 403, "title": "Forbidden"})
        return principal

    def do_POST(self):
        path = self.path.split("?")[0]
        self.emu.stats.count_http(path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            if path in ("/jmap", "/jmap/"):
                principal = self._principal()
                return self._send(200, self.emu.jmap(principal, raw, self.headers.get("Content-Type")))
            if path == "/emulator/stats/reset":
                self._admin()
                self.emu.stats.reset()
                return self._send(200, {"reset": True})
            return self._send(404, {"type": "about:blank", "status": 404, "title": "Not Found"}, "application/problem+json")
        except Problem as err:
            return self._problem(err)


class Server(listeners.Bound, http.server.HTTPServer):
    pass


def split_addr(text):
    host, dummy, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def management_only(emulator):
    """Bootstrap and recovery mode: only HTTP on STALWART_RECOVERY_MODE_PORT (8080), every interface."""
    port = int(os.environ.get("STALWART_RECOVERY_MODE_PORT") or 8080)
    try:
        srv = Server(("::", port), Handler, family=socket.AF_INET6)
    except OSError:
        srv = Server(("0.0.0.0", port), Handler)
    srv.emulator = emulator
    return [("recovery-http", "http", "[::]:%d" % port, srv)]


def from_environment(emulator):
    """STALWART_EMULATOR_HTTP (tests): one HTTP listener on that address, plus the optional HTTPS one."""
    http_srv = Server(split_addr(os.environ["STALWART_EMULATOR_HTTP"]), Handler)
    http_srv.emulator = emulator
    out = [("emulator-http", "http", os.environ["STALWART_EMULATOR_HTTP"], http_srv)]
    if os.environ.get("STALWART_EMULATOR_HTTPS"):
        https_srv = Server(split_addr(os.environ["STALWART_EMULATOR_HTTPS"]), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(os.environ["STALWART_EMULATOR_TLS_CERT"], os.environ["STALWART_EMULATOR_TLS_KEY"])
        https_srv.socket = ctx.wrap_socket(https_srv.socket, server_side=True)
        https_srv.emulator = emulator
        out.append(("emulator-https", "http", os.environ["STALWART_EMULATOR_HTTPS"], https_srv))
    return out


def start_listeners(emulator):
    """What this node binds: in bootstrap and recovery mode only the management HTTP port; in normal mode every
    x:NetworkListener (read once at start; changes need a restart, as with the real server). STALWART_EMULATOR_HTTP
    replaces the listener objects with one test listener unless STALWART_EMULATOR_LISTENERS=1 adds them back."""
    if os.environ.get("STALWART_EMULATOR_HTTP"):
        servers = from_environment(emulator)
        if emulator.mode != "normal" or os.environ.get("STALWART_EMULATOR_LISTENERS") != "1":
            return servers
    elif emulator.mode != "normal":
        return management_only(emulator)
    else:
        servers = []
    with emulator.store.transaction() as tx:
        objects = dict(tx.all("x:NetworkListener"))
        certificates = dict(tx.all("x:Certificate"))
        settings = emulator.registry.singleton(tx, "x:SystemSettings")
    default_cert, hostname = settings.get("defaultCertificateId"), settings.get("defaultHostname") or emulator.hostname
    try:
        return servers + listeners.bind_listeners(objects, certificates, default_cert, hostname, Handler, emulator)
    except OSError as err:
        raise SystemExit("cannot bind a listener: %s" % err) from None


def restart():
    """Replace this process with a fresh start of the same command (what the real server does after bootstrap)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable] + sys.argv)


def serve(config_path):
    emulator = Emulator(config_path)
    bound = start_listeners(emulator)
    print("stalwart %s (emulating the Stalwart %s line): %s mode, listening on %s" % (
        VERSION, emulator.catalog.line, emulator.mode, ", ".join("%s %s %s" % (name, proto, addr) for name, proto, addr, srv in bound)),
        flush=True)
    try:
        listeners.run_all([srv for name, proto, addr, srv in bound])
    except KeyboardInterrupt:
        pass
