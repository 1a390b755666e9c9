"""TEST STAND-IN for the MinIO server binary: NOT MinIO.

Presents the part of MinIO's command line the talentmesh.mail minio role uses --
`minio server [--address HOST:PORT] [--certs-dir DIR] VOLUME`, the environment MINIO_ROOT_USER, MINIO_ROOT_PASSWORD,
MINIO_VOLUMES and MINIO_OPTS, and `minio --version` -- and runs SeaweedFS's S3 gateway (a static `weed` binary, see
WEED below) underneath:

* the S3 API listens on --address, over TLS when DIR holds MinIO's `public.crt` + `private.key`;
* the root credentials become the one static admin identity (no anonymous access);
* the first volume path holds SeaweedFS's data; master, volume server and filer listen on loopback only
  (ports STANDIN_PORTS, used by the `mc` stand-in through `weed shell`).

MinIO's admin API, console, erasure coding, KMS, IAM policy engine and metrics are NOT provided. Packaged by
tests/artifacts/build_minio.sh as a release-shaped single-file `minio` so the role's real download + checksum +
unit path runs in Molecule.
"""
import json
import os
import shlex
import sys

VERSION = "RELEASE.2025-09-07T16-13-09Z"
WEED = os.environ.get("MINIO_STANDIN_WEED", "/usr/local/lib/minio-standin/weed")
STANDIN_PORTS = {"master": 19340, "volume": 19341, "filer": 19342}


def fail(message):
    sys.stderr.write("minio stand-in: %s\n" % message)
    return 1


def parse_server(args):
    opts = {"address": ":9000", "certs-dir": os.path.expanduser("~/.minio/certs"), "volumes": []}
    pending = list(args)
    while pending:
        arg = pending.pop(0)
        if arg.startswith("--"):
            name, sep, value = arg[2:].partition("=")
            if not sep:
                if name in ("quiet", "json", "anonymous"):
                    continue
                if not pending:
                    raise ValueError("flag --%s needs a value" % name)
                value = pending.pop(0)
            opts[name] = value
        else:
            opts["volumes"].append(arg)
    return opts


def main():
    argv = sys.argv[1:]
    if not argv or argv[0] in ("--version", "-v", "version"):
        print("minio version %s (talentmesh.mail TEST STAND-IN over SeaweedFS S3; not MinIO)" % VERSION)
        return 0
    if argv[0] != "server":
        return fail("only `minio server` and `minio --version` are provided")
    args = argv[1:] + shlex.split(os.environ.get("MINIO_OPTS", "")) + shlex.split(os.environ.get("MINIO_VOLUMES", ""))
    try:
        opts = parse_server(args)
    except ValueError as exc:
        return fail(str(exc))
    user = os.environ.get("MINIO_ROOT_USER", "")
    password = os.environ.get("MINIO_ROOT_PASSWORD", "")
    if len(user) < 3 or len(password) < 8:
        return fail("MINIO_ROOT_USER (>= 3 characters) and MINIO_ROOT_PASSWORD (>= 8 characters) are required")
    if not opts["volumes"]:
        return fail("no volume given (MINIO_VOLUMES or a path argument)")
    data = opts["volumes"][0]
    host, dummy, port = opts["address"].rpartition(":")
    runtime = os.environ.get("RUNTIME_DIRECTORY", data).split(":")[0]
    identities = os.path.join(runtime, "standin-root-identity.json")
    fd = os.open(identities, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write('{"identities":[{"name":"minio-root","credentials":[{"accessKey":%s,"secretKey":%s}],'
                     '"actions":["Admin","Read","Write","List","Tagging"]}]}\n'
                     % (json.dumps(user), json.dumps(password)))
    command = [
        WEED, "server", "-dir=%s" % data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.port=%d" % STANDIN_PORTS["master"], "-master.telemetry=false", "-master.volumeSizeLimitMB=1024",
        "-volume.port=%d" % STANDIN_PORTS["volume"], "-volume.max=0", "-volume.preStopSeconds=1",
        "-filer", "-filer.port=%d" % STANDIN_PORTS["filer"],
        "-s3", "-s3.ip.bind=%s" % (host or "0.0.0.0"), "-s3.port=%s" % port, "-s3.config=%s" % identities,
        "-s3.iam=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]
    cert = os.path.join(opts["certs-dir"], "public.crt")
    key = os.path.join(opts["certs-dir"], "private.key")
    if os.path.exists(cert) and os.path.exists(key):
        command += ["-s3.cert.file=%s" % cert, "-s3.key.file=%s" % key]
    else:
        print("minio stand-in: no public.crt/private.key in %s, serving plain HTTP" % opts["certs-dir"], flush=True)
    print("minio stand-in: %s (TEST STAND-IN, not MinIO) serving S3 on %s" % (VERSION, opts["address"]), flush=True)
    os.execv(WEED, command)
    return 1


if __name__ == "__main__":
    sys.exit(main())
