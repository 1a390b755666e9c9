"""Serve a directory over HTTP in the background for tests (artifact downloads from test containers).

    serve.py start --dir DIR --pidfile FILE [--log LOG] [--bind ADDR] [--port PORT]   # prints the base URL
    serve.py stop --pidfile FILE

`start` detaches a server bound to ADDR (default 127.0.0.1) on PORT (default 0: a free port) and writes FILE as JSON
{"pid", "bind", "port", "url", "dir"}; an already running server for FILE is reused. `stop` ends that server and removes
FILE. Requests are logged to LOG (default FILE.log). --state is an alias of --pidfile.
"""
import argparse
import functools
import http.server
import json
import os
import signal
import sys
import time


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _read(state):
    try:
        with open(state, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def start(args):
    current = _read(args.state)
    if current and _alive(current["pid"]) and current["dir"] == os.path.abspath(args.dir):
        print(current["url"])
        return 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=os.path.abspath(args.dir))
    server = http.server.ThreadingHTTPServer((args.bind, args.port), handler)
    port = server.server_address[1]
    info = {"pid": 0, "bind": args.bind, "port": port, "url": f"http://{args.bind}:{port}/",
            "dir": os.path.abspath(args.dir)}
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: detach and serve
        os.close(read_fd)
        os.setsid()
        log = open(args.log or args.state + ".log", "a", encoding="utf-8")  # pylint: disable=consider-using-with
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        os.write(write_fd, b"ok")
        os.close(write_fd)
        try:
            server.serve_forever()
        finally:
            os._exit(0)  # pylint: disable=protected-access
    os.close(write_fd)
    os.read(read_fd, 2)
    server.server_close()
    info["pid"] = pid
    with open(args.state, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    print(info["url"])
    return 0


def stop(args):
    current = _read(args.state)
    if current and _alive(current["pid"]):
        os.kill(current["pid"], signal.SIGTERM)
        for _attempt in range(50):
            if not _alive(current["pid"]):
                break
            time.sleep(0.1)
    if os.path.exists(args.state):
        os.remove(args.state)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--pidfile", "--state", dest="state", required=True, help="JSON state file (pid, port, url)")
    parser.add_argument("--log", default="", help="request log (default: the pidfile with .log appended)")
    parser.add_argument("--dir", default=".", help="directory to serve")
    parser.add_argument("--bind", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=0, help="port (0 = any free port)")
    args = parser.parse_args()
    return start(args) if args.action == "start" else stop(args)


if __name__ == "__main__":
    sys.exit(main())
