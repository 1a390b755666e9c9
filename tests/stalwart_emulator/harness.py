"""Start and drive an emulator process (used by the contract tests, the module tests and the benchmark)."""
import base64
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ENTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stalwart")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmulatorProcess:
    """An emulator on a free loopback port with a recovery admin; `datastore` None starts it in bootstrap mode."""

    def __init__(self, workdir, datastore="sqlite", env=None, https=None, config=None, port=None, password=None):
        """`config`: reuse that config.json (a restart of the same node). `port`: the HTTP port the node will serve
        without STALWART_EMULATOR_HTTP (bound from its listener objects or STALWART_RECOVERY_MODE_PORT)."""
        os.makedirs(workdir, exist_ok=True)
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.user = "admin"
        self.password = password or secrets.token_urlsafe(18)
        self.config = config or os.path.join(workdir, "config-%d.json" % self.port)
        if datastore == "sqlite":
            datastore = {"@type": "RocksDb", "path": os.path.join(workdir, "data-%d" % self.port)}
        if datastore is not None and config is None:
            with open(self.config, "w", encoding="utf-8") as handle:
                json.dump(datastore, handle)
        full_env = dict(os.environ, STALWART_RECOVERY_ADMIN="%s:%s" % (self.user, self.password))
        if port is None:
            full_env["STALWART_EMULATOR_HTTP"] = "127.0.0.1:%d" % self.port
        full_env.update(env or {})
        if https:
            self.https_port = free_port()
            self.https_url = "https://localhost:%d" % self.https_port
            full_env.update(STALWART_EMULATOR_HTTPS="127.0.0.1:%d" % self.https_port,
                            STALWART_EMULATOR_TLS_CERT=https[0], STALWART_EMULATOR_TLS_KEY=https[1])
        self.log_path = os.path.join(workdir, "emulator-%d.log" % self.port)
        self.log = open(self.log_path, "w", encoding="utf-8")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen([sys.executable, ENTRY, "--config", self.config], env=full_env,  # pylint: disable=consider-using-with
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_live()

    def wait_live(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("emulator exited (%s): %s" % (self.proc.returncode, open(self.log_path, encoding="utf-8").read()[-2000:]))
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url + "/healthz/live", timeout=1):
                    return
            time.sleep(0.05)
        raise RuntimeError("emulator did not start; see %s" % self.log_path)

    def auth_header(self, user=None, password=None):
        token = base64.b64encode(("%s:%s" % (user or self.user, password or self.password)).encode()).decode()
        return "Basic " + token

    def raw(self, method, path, body=None, headers=None, auth=True):
        """(status, headers, parsed body) without raising on HTTP errors."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"}
        if auth:
            hdrs["Authorization"] = self.auth_header()
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, resp.headers, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw
            return err.code, err.headers, parsed

    def jmap(self, calls, created_ids=None):
        body = {"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"], "methodCalls": calls}
        if created_ids is not None:
            body["createdIds"] = created_ids
        status, dummy, resp = self.raw("POST", "/jmap", body)
        assert status == 200, resp
        return resp

    def reset_stats(self):
        self.raw("POST", "/emulator/stats/reset", b"{}")

    def stats(self):
        return self.raw("GET", "/emulator/stats")[2]

    def writes(self):
        return sum(n for name, n in self.stats()["methods"].items() if name.endswith("/set"))

    def limits(self):
        core = self.raw("GET", "/jmap/session")[2]["capabilities"]["urn:ietf:params:jmap:core"]
        return core["maxCallsInRequest"], core["maxObjectsInGet"], core["maxObjectsInSet"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()
