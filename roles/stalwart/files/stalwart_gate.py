"""Readiness gates of one Stalwart node, run on the node by the role (rolling restarts and first start).

Passes when, within --timeout seconds, all of these hold at once:
  * GET /healthz/ready on the management listener answers 200;
  * an authenticated JMAP session (Bearer API key read from --token-file, a root-only file: never argv or environment) lists the management account;
  * every --listener PORT:TLS:EXPECT answers with its protocol's greeting (implicit TLS verified against --ca),
    and every --http PORT answers /healthz/live with 200 over TLS.
Prints one JSON line with the last result of each gate; exit 0 when all passed, 1 otherwise.
"""
import argparse
import json
import socket
import ssl
import sys
import time
import urllib.request

QUIT = {"220 ": b"QUIT\r\n", "* OK": b"a LOGOUT\r\n", "+OK": b"QUIT\r\n", "OK ": b"LOGOUT\r\n"}


def context(ca):
    ctx = ssl.create_default_context(cafile=ca or None)
    return ctx


def http_get(url, ctx, token=None, timeout=5):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token} if token else {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def greeting(host, port, tls, expect, ctx, server_name, timeout=5):
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = ctx.wrap_socket(raw, server_hostname=server_name) if tls else raw
        try:
            reader = sock.makefile("rb")
            deadline = time.time() + timeout
            while time.time() < deadline:
                line = reader.readline(4096).decode("utf-8", "replace")
                if not line:
                    return "closed before the greeting"
                if line.startswith(expect):
                    sock.sendall(QUIT.get(expect, b"QUIT\r\n"))
                    return None
            return "no greeting starting with %r" % expect
        finally:
            sock.close()


def check(args, ctx):
    results = {}
    base = "https://%s:%d" % (args.host, args.mgmt_port)
    try:
        status, dummy = http_get(base + "/healthz/ready", ctx)
        results["ready"] = None if status == 200 else "status %d" % status
        status, body = http_get(base + "/jmap/session", ctx, token=args.token)
        if status != 200:
            results["session"] = "status %d" % status
        else:
            session = json.loads(body)
            results["session"] = None if "urn:stalwart:jmap" in session.get("primaryAccounts", {}) else "no management account"
    except (OSError, ValueError, ssl.SSLError) as err:
        results.setdefault("ready", str(err))
        results.setdefault("session", str(err))
    for spec in args.listener:
        port, tls, expect = spec.split(":", 2)
        try:
            results["listener %s" % port] = greeting(args.host, int(port), tls == "tls", expect, ctx, args.host)
        except (OSError, ssl.SSLError) as err:
            results["listener %s" % port] = str(err)
    for port in args.http:
        try:
            status, dummy = http_get("https://%s:%s/healthz/live" % (args.host, port), ctx)
            results["http %s" % port] = None if status == 200 else "status %d" % status
        except (OSError, ssl.SSLError) as err:
            results["http %s" % port] = str(err)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--mgmt-port", type=int, required=True)
    parser.add_argument("--ca", default="")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--listener", action="append", default=[])
    parser.add_argument("--http", action="append", default=[])
    args = parser.parse_args()
    with open(args.token_file, encoding="utf-8") as handle:
        args.token = handle.read().strip()
    ctx = context(args.ca)
    deadline = time.time() + args.timeout
    while True:
        results = check(args, ctx)
        failed = {k: v for k, v in results.items() if v}
        if not failed or time.time() >= deadline:
            break
        time.sleep(1)
    print(json.dumps({"passed": not failed, "failed": failed, "gates": sorted(results)}))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
