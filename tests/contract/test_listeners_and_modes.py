"""The release-shaped binary: listeners bound from x:NetworkListener objects (HTTP management, protocol greetings,
implicit TLS from the certificate objects), recovery mode on STALWART_RECOVERY_MODE_PORT only, bootstrap that restarts
into normal mode, and --version per Stalwart line. Emulator-only: these start and restart their own processes."""
import os
import socket
import ssl
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import emulator_only
from tests.stalwart_emulator.harness import ENTRY, EmulatorProcess, free_port
from tests.tlsutil import make_ca_and_cert

pytestmark = emulator_only
# name, protocol, implicit TLS, what the first line starts with, the polite goodbye, what it answers
PROTOCOLS = [
    ("smtp", "smtp", False, b"220 ", b"QUIT\r\n", b"221 "),
    ("submissions", "smtp", True, b"220 ", b"QUIT\r\n", b"221 "),
    ("imaps", "imap", True, b"* OK ", b"a1 LOGOUT\r\n", b"* BYE"),
    ("pop3", "pop3", False, b"+OK ", b"QUIT\r\n", b"+OK "),
    ("sieve", "manageSieve", False, b'"IMPLEMENTATION"', b"LOGOUT\r\n", b"OK "),
]


def ok(resp, index=0):
    name, args, dummy = resp["methodResponses"][index]
    assert name != "error", args
    return args


def read_until(sock, marker, limit=4096):
    data = b""
    while marker not in data and len(data) < limit:
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def connect(port, tls_ctx=None):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return tls_ctx.wrap_socket(sock, server_hostname="localhost") if tls_ctx else sock


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A node whose listener objects are on free loopback ports, restarted so that it binds them."""
    work = tmp_path_factory.mktemp("listeners")
    tls = make_ca_and_cert(work)
    setup = EmulatorProcess(str(work))
    ports = {name: free_port() for name in ["http", "https"] + [p[0] for p in PROTOCOLS]}
    try:
        existing = ok(setup.jmap([["x:NetworkListener/get", {"ids": None, "properties": ["name"]}, "0"]]))["list"]
        with open(tls["cert"], encoding="utf-8") as cert, open(tls["key"], encoding="utf-8") as key:
            pem = {"certificate": {"@type": "Text", "value": cert.read()}, "privateKey": {"@type": "Text", "secret": key.read()}}
        listeners = {"http": {"name": "http", "protocol": "http", "bind": {"127.0.0.1:%d" % ports["http"]: True}},
                     "https": {"name": "https", "protocol": "http", "tlsImplicit": True,
                               "bind": {"127.0.0.1:%d" % ports["https"]: True}}}
        for name, protocol, implicit, dummy, dummy2, dummy3 in PROTOCOLS:
            listeners[name] = {"name": name, "protocol": protocol, "tlsImplicit": implicit,
                               "bind": {"127.0.0.1:%d" % ports[name]: True}}
        ok(setup.jmap([["x:NetworkListener/set", {"destroy": [item["id"] for item in existing]}, "0"],
                       ["x:NetworkListener/set", {"create": listeners}, "1"],
                       ["x:Certificate/set", {"create": {"c": pem}}, "2"]]), 1)
    finally:
        setup.stop()
    emu = EmulatorProcess(str(work), config=setup.config, port=ports["http"], password=setup.password)
    yield emu, ports, tls, setup.port
    emu.stop()


def test_http_listeners_serve_management_and_health(node):
    emu, ports, tls, old_port = node
    assert emu.raw("GET", "/healthz/ready", auth=False)[0] == 200
    assert ok(emu.jmap([["x:Domain/get", {"ids": None}, "0"]]))["list"] == []
    ctx = ssl.create_default_context(cafile=tls["ca"])
    with urllib.request.urlopen("https://localhost:%d/healthz/live" % ports["https"], context=ctx, timeout=5) as resp:
        assert resp.status == 200
    assert refused(old_port)  # the test listener of the first start is gone: only listener objects are bound


@pytest.mark.parametrize("name,protocol,implicit,greeting,bye,answer", PROTOCOLS)
def test_protocol_listeners_greet_and_close_politely(node, name, protocol, implicit, greeting, bye, answer):
    emu, ports, tls, dummy = node
    ctx = ssl.create_default_context(cafile=tls["ca"]) if implicit else None
    with connect(ports[name], ctx) as sock:
        first = read_until(sock, b"\r\n" if protocol != "manageSieve" else b"OK ")
        assert first.startswith(greeting), first
        if implicit:
            assert sock.version() in ("TLSv1.2", "TLSv1.3")
        sock.sendall(b"NOOP\r\n" if protocol != "imap" else b"a0 NOOP\r\n")
        assert read_until(sock, b"\r\n")  # refused politely, connection kept
        sock.sendall(bye)
        assert answer in read_until(sock, answer)
        assert sock.recv(1024) == b""  # then the server closes


def test_implicit_tls_listener_refuses_plaintext(node):
    dummy, ports, tls, dummy2 = node
    with connect(ports["imaps"]) as sock:
        sock.sendall(b"a1 LOGOUT\r\n")
        try:
            data = sock.recv(1024)
        except ConnectionResetError:
            data = b""
    assert not data.startswith(b"* OK")


def test_recovery_mode_serves_only_the_recovery_port(node, tmp_path):
    emu, ports, dummy, dummy2 = node
    emu.stop()
    recovery_port = free_port()
    rec = EmulatorProcess(str(tmp_path), config=emu.config, port=recovery_port, password=emu.password,
                          env={"STALWART_RECOVERY_MODE": "1", "STALWART_RECOVERY_MODE_PORT": str(recovery_port)})
    try:
        assert ok(rec.jmap([["x:NetworkListener/get", {"ids": None, "properties": ["name"]}, "0"]]))["list"]
        assert all(refused(port) for port in ports.values())
        nodes = ok(rec.jmap([["x:ClusterNode/get", {"ids": None}, "0"]]))["list"]
        assert len(nodes) == 1  # the lease of the normal start; recovery mode takes none
    finally:
        rec.stop()
    restarted = EmulatorProcess(str(tmp_path), config=emu.config, port=ports["http"], password=emu.password)
    node[0].proc, node[0].log = restarted.proc, restarted.log  # the module fixture stops it


def test_bootstrap_completion_restarts_into_normal_mode(tmp_path):
    """Bootstrap serves HTTP on STALWART_RECOVERY_MODE_PORT only; completing it re-executes the process, which then
    binds the seven default listeners (moved to free loopback ports with the emulator-only STALWART_EMULATOR_REBIND)."""
    port = free_port()
    defaults = {"[::]:%d" % p: free_port() for p in (25, 465, 993, 995, 4190, 443, 8080)}
    rebind = ",".join("%s=127.0.0.1:%d" % item for item in defaults.items())
    emu = EmulatorProcess(str(tmp_path), datastore=None, port=port,
                          env={"STALWART_RECOVERY_MODE_PORT": str(port), "STALWART_EMULATOR_REBIND": rebind})
    try:
        assert emu.raw("GET", "/healthz/ready", auth=False)[0] == 503
        assert all(refused(p) for p in defaults.values())
        pid = emu.proc.pid
        done = ok(emu.jmap([["x:Bootstrap/set", {"update": {"singleton": {
            "serverHostname": "mx1.restart.test", "defaultDomain": "restart.test",
            "dataStore": {"@type": "Sqlite", "path": str(tmp_path / "data")}}}}, "0"]]))
        admin = done["updated"]["singleton"]
        emu.url = "http://127.0.0.1:%d" % defaults["[::]:8080"]
        emu.wait_live()
        assert emu.proc.pid == pid  # the same process, re-executed
        assert emu.raw("GET", "/healthz/ready", auth=False)[0] == 200
        auth = {"Authorization": emu.auth_header(admin["username"], admin["secret"])}
        assert emu.raw("GET", "/jmap/session", headers=auth)[2]["username"] == admin["username"]
        with connect(defaults["[::]:25"]) as sock:
            assert read_until(sock, b"\r\n").startswith(b"220 mx1.restart.test ")
        assert refused(port)  # the bootstrap port is gone
        with open(emu.log_path, encoding="utf-8") as handle:
            assert "restarting into normal mode" in handle.read()
    finally:
        emu.stop()


def test_version_reports_the_emulated_line():
    out = subprocess.run([sys.executable, ENTRY, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("stalwart 0.16.18 ") and "line 0.16" in out
    proc = subprocess.run([sys.executable, ENTRY, "--version"], capture_output=True, text=True, check=False,
                          env=dict(os.environ, STALWART_EMULATOR_LINE="1.0"))
    assert proc.returncode != 0 and "no Stalwart 1.0 line" in proc.stderr
