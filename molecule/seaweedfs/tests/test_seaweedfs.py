"""Verify the SeaweedFS role on a real systemd container, and S3 over TLS from a client container with boto3."""
import json
import os
import re

import pytest
import testinfra

RELEASE = os.environ.get("MOLECULE_DEBIAN", "12")
CLIENT = testinfra.get_host(f"podman://tm-seaweedfs-client-d{RELEASE}")
SERVER_NAME = f"tm-seaweedfs-s3-d{RELEASE}"
ENDPOINT = f"https://{SERVER_NAME}:8333"
ARTIFACT = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "."), ".cache", "artifacts",
                        "seaweedfs-4.48-linux-amd64.tar.gz")

# Runs on the client: one S3 operation, prints a JSON verdict. Exceptions become {"error": code}.
S3_PROBE = r'''
import json, sys, boto3, botocore
from botocore.config import Config
endpoint, access, secret, op, bucket = sys.argv[1:6]
verify = sys.argv[6] if len(sys.argv) > 6 else "/etc/ssl/certs/ca-certificates.crt"
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                  region_name="us-east-1", verify=False if verify == "none" else verify,
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=5))
try:
    if op == "putget":
        s3.put_object(Bucket=bucket, Key="probe.txt", Body=b"talentmesh")
        body = s3.get_object(Bucket=bucket, Key="probe.txt")["Body"].read().decode()
        s3.put_object_tagging(Bucket=bucket, Key="probe.txt", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        print(json.dumps({"ok": True, "body": body, "keys": keys}))
    elif op == "list":
        print(json.dumps({"ok": True, "keys": [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]}))
    elif op == "put":
        s3.put_object(Bucket=bucket, Key="probe.txt", Body=b"x")
        print(json.dumps({"ok": True}))
    elif op == "buckets":
        print(json.dumps({"ok": True, "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"]]}))
except botocore.exceptions.ClientError as exc:
    print(json.dumps({"ok": False, "error": exc.response["Error"]["Code"]}))
except Exception as exc:  # TLS and connection errors
    print(json.dumps({"ok": False, "error": type(exc).__name__, "detail": str(exc)[:200]}))
'''


def s3(op, bucket, access, secret, endpoint=ENDPOINT, verify=None):
    args = [endpoint, access, secret, op, bucket] + ([verify] if verify else [])
    result = CLIENT.run("python3 -c %s %s" % (_quote(S3_PROBE), " ".join(_quote(a) for a in args)))
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _quote(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


STALWART = ("lab-stalwart", "lab-stalwart-secret-0123456789")
BACKUP = ("lab-backup", "lab-backup-secret-0123456789")
ADMIN = ("lab-admin", "lab-admin-secret-0123456789")


def test_service_running_as_unprivileged_user(host):
    svc = host.service("seaweedfs")
    assert svc.is_running and svc.is_enabled
    user = host.run("systemctl show -p User --value seaweedfs").stdout.strip()
    assert user == "seaweedfs"
    assert host.user("seaweedfs").shell == "/usr/sbin/nologin"
    assert host.file("/var/lib/seaweedfs").mode == 0o750


def test_binary_from_verified_artifact(host):
    link = host.file("/usr/local/bin/weed")
    assert link.is_symlink and link.linked_to == "/opt/seaweedfs/4.48/weed"
    assert "4.48" in host.run("/usr/local/bin/weed version").stdout
    cached = host.file("/var/cache/seaweedfs/seaweedfs-4.48-linux-amd64.tar.gz")
    with open(ARTIFACT + ".sha256", encoding="ascii") as handle:
        assert cached.sha256sum == handle.read().split()[0]


@pytest.mark.parametrize("path,mode,owner", [
    ("/etc/seaweedfs/s3.json", 0o600, "seaweedfs"),
    ("/etc/seaweedfs/security.toml", 0o600, "seaweedfs"),
    ("/etc/seaweedfs/grpc/grpc.key", 0o600, "seaweedfs"),
    ("/etc/seaweedfs/tls/s3.key", 0o600, "seaweedfs"),
    ("/etc/seaweedfs/tls/s3.crt", 0o644, "root"),
])
def test_secret_files(host, path, mode, owner):
    f = host.file(path)
    assert f.mode == mode and f.user == owner


def test_identities_are_scoped(host):
    ids = {i["name"]: i for i in json.loads(host.file("/etc/seaweedfs/s3.json").content_string)["identities"]}
    assert "Admin" in ids["admin"]["actions"]
    assert sorted(ids["stalwart"]["actions"]) == sorted(
        f"{a}:stalwart-blobs" for a in ("Read", "Write", "List", "Tagging"))
    assert all(a.endswith(":backups") for a in ids["backup"]["actions"])


def test_internal_ports_on_loopback_only(host):
    listeners = host.run("ss -Hlnt").stdout
    for port in (9333, 8080, 8888, 19333, 18080, 18888):
        bound = re.findall(r"\s(\S+):%d\s" % port, listeners)
        assert bound and set(bound) <= {"127.0.0.1"}, (port, bound)
    # S3 (HTTPS) on the host address (and loopback), never on the wildcard address.
    s3_bound = set(re.findall(r"\s(\S+):8333\s", listeners))
    assert s3_bound - {"127.0.0.1"} and not s3_bound & {"0.0.0.0", "*", "[::]"}, s3_bound


def test_firewall_dropin_lists_only_the_client(host):
    assert not host.file("/etc/nftables.d/50-seaweedfs.nft").exists
    rule = host.file("/etc/nftables.d/seaweedfs.nft").content_string
    client_ip = CLIENT.interface("eth0").addresses[0]
    assert re.search(r"ip saddr \{ %s \} tcp dport 8333 accept" % re.escape(client_ip), rule)
    assert "seaweedfs-s3" in host.run("nft list chain inet talentmesh input").stdout


def test_systemd_hardening_score(host):
    out = host.run("systemd-analyze security --no-pager seaweedfs.service").stdout
    score = float(re.search(r"Overall exposure level for seaweedfs.service: ([0-9.]+)", out).group(1))
    # Keep the figure for the scenario report (.cache/molecule/seaweedfs-security-d<release>.txt).
    report = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "."), ".cache", "molecule",
                          f"seaweedfs-security-d{RELEASE}.txt")
    os.makedirs(os.path.dirname(report), exist_ok=True)
    with open(report, "w", encoding="utf-8") as handle:
        handle.write(out)
    assert score <= 2.5, out


def test_buckets_exist():
    result = s3("buckets", "-", *ADMIN)
    assert result["ok"], result
    assert {"stalwart-blobs", "backups"} <= set(result["buckets"])


def test_stalwart_put_get_over_tls():
    result = s3("putget", "stalwart-blobs", *STALWART)
    assert result == {"ok": True, "body": "talentmesh", "keys": ["probe.txt"]}


def test_wrong_secret_refused():
    result = s3("list", "stalwart-blobs", STALWART[0], "not-the-secret")
    assert not result["ok"] and result["error"] in {"SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId"}


def test_stalwart_key_refused_on_backup_bucket():
    assert s3("list", "backups", *STALWART) == {"ok": False, "error": "AccessDenied"}
    assert s3("put", "backups", *STALWART) == {"ok": False, "error": "AccessDenied"}


def test_backup_key_limited_to_backup_bucket():
    assert s3("put", "backups", *BACKUP) == {"ok": True}
    assert s3("list", "stalwart-blobs", *BACKUP) == {"ok": False, "error": "AccessDenied"}


def test_plain_http_not_served():
    result = s3("list", "stalwart-blobs", *STALWART, endpoint=f"http://{SERVER_NAME}:8333")
    assert not result["ok"], result


def test_untrusted_certificate_rejected():
    # Without the lab CA the client must refuse the server certificate.
    result = s3("list", "stalwart-blobs", *STALWART, verify="/usr/lib/python3/dist-packages/certifi/cacert.pem")
    assert not result["ok"] and result["error"] in {"SSLError", "FileNotFoundError"}, result


# --- No local bypass: a local non-root user gets nothing from the loopback services -----------------------------
LOCAL_PROBE = r"""
import json, sys, urllib.request, urllib.error
out = {}
for name, url in [("filer_list", "http://127.0.0.1:8888/buckets/stalwart-blobs/?pretty=y"),
                  ("filer_read", "http://127.0.0.1:8888/buckets/stalwart-blobs/probe.txt"),
                  ("filer_write", "http://127.0.0.1:8888/buckets/stalwart-blobs/intruder.txt")]:
    req = urllib.request.Request(url, data=b"x" if name == "filer_write" else None,
                                 method="POST" if name == "filer_write" else "GET")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            out[name] = [resp.status, resp.read(200).decode(errors="replace")]
    except urllib.error.HTTPError as exc:
        out[name] = [exc.code, ""]
    except Exception as exc:
        out[name] = [-1, type(exc).__name__]
print(json.dumps(out))
"""


def test_local_user_cannot_use_the_filer(host):
    assert s3("putget", "stalwart-blobs", *STALWART)["ok"]
    result = host.run("runuser -u nobody -- python3 -c %s" % _quote(LOCAL_PROBE))
    assert result.rc == 0, result.stderr
    verdict = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (status, body) in verdict.items():
        assert status in (401, 403), (name, status, body)
        assert "talentmesh" not in body and "probe.txt" not in body, (name, body)


def test_local_user_cannot_use_grpc(host):
    # `weed shell` as a local user: the gRPC servers want a client certificate from the host-local CA.
    result = host.run("cd /tmp && echo 's3.bucket.list' | runuser -u nobody -- timeout 20 /usr/local/bin/weed shell "
                      "-master=127.0.0.1:9333 -filer=127.0.0.1:8888")
    assert "stalwart-blobs" not in result.stdout, result.stdout


def test_no_secret_in_process_arguments(host):
    args = host.check_output("ps -eo args")
    for secret in (STALWART[1], BACKUP[1], ADMIN[1]):
        assert secret not in args
