"""Forwarding HTTP proxy for apt inside the test containers.

Test networks are created `--internal`: containers reach only each other and the host. apt inside them uses this
proxy on the host (http://host.containers.internal:3142), which forwards GET/HEAD requests to the Debian mirror hosts
it is told about and nothing else. Package files under /pool/ are immutable, so they are cached on disk; repeated
Molecule runs install packages without downloading them again.

Usage: apt-proxy.py --port 3142 --cache DIR --allow-host deb.debian.org [--allow-client 10.231.0.0/16 ...]
"""
import argparse
import hashlib
import http.server
import ipaddress
import os
import shutil
import socketserver
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

CHUNK = 1 << 16


class Proxy(http.server.BaseHTTPRequestHandler):
    server_version = "talentmesh-apt-proxy"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # one line per request on stderr, like a web server's access log
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % args))

    def _refuse(self, code, why):
        body = (why + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _allowed(self, url):
        client = ipaddress.ip_address(self.client_address[0])
        if not any(client in net for net in self.server.allow_clients):
            return "client not allowed"
        if url.scheme != "http" or url.hostname not in self.server.allow_hosts:
            return "only http:// requests to %s are forwarded" % ", ".join(sorted(self.server.allow_hosts))
        return None

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        why = self._allowed(url)
        if why:
            return self._refuse(403, why)
        cacheable = "/pool/" in url.path and url.path.endswith((".deb", ".udeb"))
        cached = os.path.join(self.server.cache, hashlib.sha256(self.path.encode()).hexdigest()) if cacheable else None
        if cached and os.path.exists(cached):
            return self._send_file(cached)
        request = urllib.request.Request(self.path, method=self.command)
        for name in ("If-Modified-Since", "Range", "If-Range", "Cache-Control"):
            if self.headers.get(name):
                request.add_header(name, self.headers[name])
        try:
            upstream = urllib.request.urlopen(request, timeout=60)
        except urllib.error.HTTPError as err:
            upstream = err
        except (urllib.error.URLError, OSError) as err:
            return self._refuse(502, "upstream error: %s" % err)
        with upstream:
            status = upstream.status if hasattr(upstream, "status") else upstream.code
            self.send_response(status)
            length = upstream.headers.get("Content-Length")
            for name in ("Content-Type", "Content-Length", "Last-Modified", "ETag", "Content-Range", "Accept-Ranges"):
                if upstream.headers.get(name):
                    self.send_header(name, upstream.headers[name])
            if length is None:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD":
                return
            keep = cached and status == 200
            spool = tempfile.NamedTemporaryFile(dir=self.server.cache, delete=False) if keep else None
            try:
                while True:
                    chunk = upstream.read(CHUNK)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    if spool:
                        spool.write(chunk)
                if spool:
                    spool.close()
                    if length is None or os.path.getsize(spool.name) == int(length):
                        os.replace(spool.name, cached)
            finally:
                if spool and os.path.exists(spool.name):
                    os.unlink(spool.name)

    def _send_file(self, path):
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.debian.binary-package")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command != "HEAD":
            with open(path, "rb") as handle:
                shutil.copyfileobj(handle, self.wfile, CHUNK)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=3142)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--allow-host", action="append", required=True)
    parser.add_argument("--allow-client", action="append", default=["127.0.0.0/8", "10.231.0.0/16"])
    args = parser.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    server = Server((args.bind, args.port), Proxy)
    server.cache = args.cache
    server.allow_hosts = set(args.allow_host)
    server.allow_clients = [ipaddress.ip_network(c) for c in args.allow_client]
    server.serve_forever()


if __name__ == "__main__":
    main()
