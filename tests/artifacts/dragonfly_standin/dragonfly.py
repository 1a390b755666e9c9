"""TEST STAND-IN for the Dragonfly binary: NOT Dragonfly.

Presents Dragonfly's command line (--flagfile and the flags talentmesh.mail's dragonfly role renders) and runs
Debian's real redis-server (Redis 7) underneath, translating the flags it honours: bind, port, requirepass, dir,
dbfilename, maxmemory, tls/tls_cert_file/tls_key_file/tls_ca_cert_file. --snapshot_cron has no Redis equivalent and
is accepted and reported in the log. Packaged by tests/artifacts/build_dragonfly.sh as a release-shaped tarball so the
role's real download + checksum + unit path runs in Molecule.
"""
import os
import re
import sys

VERSION = "v1.34.2-talentmesh-standin"
UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def parse(argv):
    flags = {}
    pending = list(argv)
    while pending:
        arg = pending.pop(0)
        if not arg.startswith("--"):
            continue
        name, sep, value = arg[2:].partition("=")
        if not sep:
            value = "true"
        if name == "flagfile":
            with open(value, encoding="utf-8") as handle:
                pending = [line.strip() for line in handle if line.strip().startswith("--")] + pending
            continue
        flags[name] = value
    return flags


def size(text):
    match = re.match(r"^([0-9.]+)\s*([kmgt]?)i?b?$", text.strip().lower())
    if not match:
        raise SystemExit("dragonfly stand-in: invalid --maxmemory %r" % text)
    return int(float(match.group(1)) * UNITS[match.group(2)])


def main():
    flags = parse(sys.argv[1:])
    if "version" in flags:
        print("dragonfly %s (stand-in over redis-server; not Dragonfly)" % VERSION)
        return 0
    lines = ["bind %s" % flags.get("bind", "127.0.0.1"), "protected-mode yes", "daemonize no",
             "dir %s" % flags.get("dir", os.getcwd()),
             "dbfilename %s.rdb" % flags.get("dbfilename", "dump"), "save \"\"", "appendonly no"]
    port = flags.get("port", "6379")
    if flags.get("tls", "false").lower() in ("true", "1", "yes"):
        lines += ["port 0", "tls-port %s" % port, "tls-cert-file %s" % flags["tls_cert_file"],
                  "tls-key-file %s" % flags["tls_key_file"], "tls-auth-clients no"]
        if flags.get("tls_ca_cert_file"):
            lines.append("tls-ca-cert-file %s" % flags["tls_ca_cert_file"])
    else:
        lines.append("port %s" % port)
    if flags.get("requirepass"):
        lines.append("requirepass %s" % flags["requirepass"])
    if flags.get("maxmemory") and flags["maxmemory"] != "0":
        lines.append("maxmemory %d" % size(flags["maxmemory"]))
    runtime = os.environ.get("RUNTIME_DIRECTORY", flags.get("dir", "/tmp")).split(":")[0]
    conf = os.path.join(runtime, "standin-redis.conf")
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    if flags.get("snapshot_cron"):
        print("dragonfly stand-in: --snapshot_cron=%s accepted (no Redis equivalent)" % flags["snapshot_cron"], flush=True)
    os.execv("/usr/bin/redis-server", ["redis-server", conf])
    return 1


if __name__ == "__main__":
    sys.exit(main())
