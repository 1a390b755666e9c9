"""Verify the minio role with a REAL S3 client (boto3, Debian's python3-boto3) on a second host.

The server is the STAND-IN artifact (MinIO's command line over SeaweedFS's S3 gateway) and buckets, policies and users
were made through the mc STAND-IN (mc's commands over `weed shell`): NOT MinIO and NOT mc. What is real here: the
role's download/checksum/install path, the unit and its sandbox, TLS, the S3 protocol and signatures, per-key bucket
scoping as enforced by the stand-in's backend, and the firewall.
"""
import json
import os
import subprocess
import sys
import tempfile

import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from hostcheck import exposure  # noqa: E402  pylint: disable=wrong-import-position

RELEASE = os.environ.get("MOLECULE_DEBIAN", "12")
CLIENT_NAME = "tm-minio-client-d%s" % RELEASE
CLIENT = testinfra.get_host("podman://" + CLIENT_NAME)
KEYS = {
    "root": ("lab-root", "lab-root-password ' \\ $HOME `id` $(id) 0123456789"),
    "stalwart": ("lab-stalwart", "lab-stalwart-secret-0123456789"),
    "backup": ("lab-backup", "lab-backup-secret-0123456789"),
}
SCRIPT = r'''
import sys, boto3, botocore
from botocore.config import Config
import json
scheme, ip, access, secret, op, bucket = json.load(open(sys.argv[1]))
s3 = boto3.client("s3", endpoint_url="%s://%s:9000" % (scheme, ip), aws_access_key_id=access,
                  aws_secret_access_key=secret, region_name="us-east-1", verify="/tmp/minio-ca.crt",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                connect_timeout=3, read_timeout=5))
try:
    if op == "putget":
        s3.put_object(Bucket=bucket, Key="probe.txt", Body=b"talentmesh probe")
        body = s3.get_object(Bucket=bucket, Key="probe.txt")["Body"].read()
        print("OK" if body == b"talentmesh probe" else "MISMATCH")
    elif op == "put":
        s3.put_object(Bucket=bucket, Key="probe.txt", Body=b"x")
        print("OK")
    elif op == "list":
        print("OK " + " ".join(sorted(b["Name"] for b in s3.list_buckets()["Buckets"])))
except botocore.exceptions.ClientError as exc:
    print("DENIED " + exc.response["Error"]["Code"])
except Exception as exc:
    print("ERROR %s %s" % (type(exc).__name__, exc))
'''


def _server_ip(host):
    return host.check_output("hostname -I").split()[0]


def _copy_to_client(name, content):
    """podman cp a file to the client: its content (keys) never appears in a command line."""
    with tempfile.NamedTemporaryFile("w", delete=False) as handle:
        handle.write(content)
    try:
        subprocess.run(["podman", "cp", handle.name, "%s:/tmp/%s" % (CLIENT_NAME, name)], check=True)
    finally:
        os.unlink(handle.name)


def _s3(host, who, op, bucket="-", secret=None, scheme="https"):
    _copy_to_client("minio-ca.crt", host.file("/etc/minio/certs/CAs/ca.crt").content_string)
    _copy_to_client("s3probe.py", SCRIPT)
    access, real_secret = KEYS[who]
    _copy_to_client("s3args.json", json.dumps([scheme, _server_ip(host), access, secret or real_secret, op, bucket]))
    out = CLIENT.check_output("python3 /tmp/s3probe.py /tmp/s3args.json; rm -f /tmp/s3args.json")
    return out.strip()


def test_standin_is_labelled(host):
    assert "STAND-IN" in host.check_output("/usr/local/bin/minio --version")
    assert "STAND-IN" in host.check_output("/usr/local/bin/mc --version")


def test_service_runs_unprivileged(host):
    svc = host.service("minio")
    assert svc.is_running and svc.is_enabled
    assert host.check_output("systemctl show -p User --value minio") == "minio-user"


def test_secrets_are_private(host):
    env = host.file("/etc/default/minio")
    assert env.mode == 0o600 and env.user == "root"
    # systemd's EnvironmentFile rules: double quotes, with \\ " $ ` escaped.
    assert 'MINIO_ROOT_PASSWORD="lab-root-password \' \\\\ \\$HOME \\`id\\` \\$(id) 0123456789"' in env.content_string
    key = host.file("/etc/minio/certs/private.key")
    assert key.mode == 0o600 and key.user == "minio-user"
    mc_config = host.file("/etc/minio/mc/config.json")
    assert mc_config.mode == 0o600 and mc_config.user == "root"
    args = host.check_output("ps -eo args")
    for secret in [pair[1] for pair in KEYS.values()]:
        assert secret not in args


def test_service_got_the_password_unchanged(host):
    """The unit's environment holds exactly the vault value (quoting survived systemd)."""
    pid = host.check_output("systemctl show -p MainPID --value minio")
    environ = host.check_output("tr '\\0' '\\n' < /proc/%s/environ" % pid)
    assert "MINIO_ROOT_PASSWORD=" + KEYS["root"][1] in environ.splitlines()


def test_no_secret_on_mc_command_lines(host):
    """Every mc run the role made is in the stand-in's argv log: user add took the secret on stdin."""
    lines = [json.loads(line) for line in host.file("/var/log/mc-standin-argv.log").content_string.splitlines()]
    adds = [argv for argv in lines if argv[3:6] == ["admin", "user", "add"]]
    assert adds and all(len(argv) == 8 for argv in adds), adds
    text = json.dumps(lines)
    for secret in [pair[1] for pair in KEYS.values()]:
        assert json.dumps(secret)[1:-1] not in text


def test_fingerprints_recorded(host):
    for policy in ("talentmesh-stalwart", "talentmesh-backup"):
        record = host.file("/etc/minio/policies/%s.key.sha256" % policy)
        assert record.mode == 0o600 and record.user == "root"


def test_stalwart_key_put_get_over_tls(host):
    assert _s3(host, "stalwart", "putget", "stalwart-blobs") == "OK"


def test_backup_key_put_get_over_tls(host):
    assert _s3(host, "backup", "putget", "backups") == "OK"


def test_keys_are_limited_to_their_bucket(host):
    assert _s3(host, "stalwart", "put", "backups").startswith("DENIED")
    assert _s3(host, "backup", "put", "stalwart-blobs").startswith("DENIED")


def test_wrong_key_is_refused(host):
    assert _s3(host, "stalwart", "putget", "stalwart-blobs", secret="wrong-secret-0123456789").startswith("DENIED")


def test_root_sees_both_buckets(host):
    out = _s3(host, "root", "list")
    assert out.startswith("OK") and "stalwart-blobs" in out and "backups" in out


def test_plain_http_is_not_served(host):
    assert not _s3(host, "stalwart", "putget", "stalwart-blobs", scheme="http").startswith("OK")


def test_firewall_dropin(host):
    rules = host.check_output("nft list table inet talentmesh")
    assert 'comment "minio"' in rules and "9000" in rules
    assert host.file("/etc/nftables.d/minio.nft").exists and not host.file("/etc/nftables.d/50-minio.nft").exists


def test_systemd_sandbox_score(host):
    score, out = exposure(host, "minio.service")
    assert score <= 2.5, out
