"""Bad input to the postgresql role fails at the start, naming the variable, before any change; the Kubernetes tree
renders on localhost into a throwaway directory, passes the offline validator and re-renders byte-identically.

Runs ansible-playbook against localhost through the one harness (tests/roles/conftest.py); no containers. The
bare-metal cases run in check mode so that nothing past validation could touch the machine."""
import base64
import filecmp
import os
import re

import pytest
import yaml

from tests.roles.harness import case, mismatched_tls, run_role

SECRET = "s3cret-"
DATABASES = [
    {"name": "stalwart", "owner": "stalwart", "password": SECRET + "stalwart 'q' \\ $x `y` $(z)"},
    {"name": "roundcube", "owner": "roundcube", "password": SECRET + "roundcube"},
]
GOOD = {
    "postgresql_allowed_hosts": ["10.0.0.5", "2001:db8::/64"],
    "postgresql_databases": DATABASES,
    "postgresql_memory_mb": 1024,
}
BACKUP = {
    "postgresql_backup_enabled": True, "postgresql_backup_s3_endpoint": "s3.example.net",
    "postgresql_backup_s3_port": 8333, "postgresql_backup_s3_bucket": "backups",
    "postgresql_backup_s3_access_key": "AKIDEXAMPLE", "postgresql_backup_s3_secret_key": SECRET + "s3-key",
}
CERT, OTHER_KEY = mismatched_tls()
K8S = {"postgresql_target": "kubernetes", "mail_target": "kubernetes", "mail_k8s_mode": "render",
       "mail_k8s_registry": "registry.example.internal/mail"}


def run(tmp_path, extra, check=True, drop=()):
    variables = dict(GOOD, mail_tls_lab_ca_dir=str(tmp_path / "ca"), mail_render_dir=str(tmp_path / "render"),
                     mail_firewall_dropin_dir=str(tmp_path / "nft"))
    variables.update(extra)
    for name in drop:
        variables.pop(name)
    rc, out = run_role("postgresql", tmp_path, variables, check=check)
    assert SECRET not in out, "a secret leaked into the output"
    return rc, out


CASES = {
    # name: (defect class, variables, what the failure names)
    "missing password": (
        "required", {"postgresql_databases": [{"name": "stalwart", "owner": "stalwart"}]},
        ["postgresql_databases", "password"]),
    "empty password": (
        "required", {"postgresql_databases": [{"name": "stalwart", "owner": "stalwart", "password": ""}]},
        ["postgresql_databases", "password", "stalwart"]),
    "database name with a space": (
        "format", {"postgresql_databases": [{"name": "stal wart", "owner": "x", "password": SECRET}]},
        ["postgresql_databases", "stal wart"]),
    "invalid memory size": (
        "ranges", {"postgresql_shared_buffers": "512XB"}, ["postgresql_shared_buffers", "512XB"]),
    "invalid work_mem": (
        "format", {"postgresql_work_mem": "lots"}, ["postgresql_work_mem"]),
    "negative memory base": (
        "ranges", {"postgresql_memory_mb": -1}, ["postgresql_memory_mb"]),
    "port out of range": (
        "ranges", {"postgresql_port": 70000}, ["postgresql_port must be a port 1-65535"]),
    "empty allow-list": (
        "firewall", {"postgresql_allowed_hosts": []}, ["postgresql_allowed_hosts is empty"]),
    "host name in the allow-list": (
        "broken-config", {"postgresql_allowed_hosts": ["app.example.com"]},
        ["postgresql_allowed_hosts must list IPv4/IPv6 addresses or CIDRs", "app.example.com"]),
    "bad CIDR in the allow-list": (
        "firewall", {"postgresql_allowed_hosts": ["10.0.0.1/33"]}, ["postgresql_allowed_hosts must list"]),
    "host name among the replicas": (
        "firewall", {"postgresql_replication_allowed_hosts": ["db2.example.com"], "postgresql_replication_password": SECRET + "repl"},
        ["postgresql_replication_allowed_hosts must list"]),
    "replica without replication password": (
        "required", {"postgresql_replication_role": "replica", "postgresql_primary_host": "db1", "postgresql_replication_slot": "r1"},
        ["postgresql_replication_password"]),
    "newline in the replication password": (
        "injection", {"postgresql_replication_role": "replica", "postgresql_primary_host": "db1",
                      "postgresql_replication_slot": "r1", "postgresql_replication_password": SECRET + "a\nlocalhost:*:*:*:x"},
        ["postgresql_replication_password", "control character"]),
    "backup without S3 secret": (
        "required", dict(BACKUP, postgresql_backup_s3_secret_key=""), ["postgresql_backup_s3_secret_key"]),
    "newline in the S3 secret": (
        "injection", dict(BACKUP, postgresql_backup_s3_secret_key=SECRET + "x\nrepo1-path=/elsewhere"),
        ["postgresql_backup_s3_secret_key", "control characters"]),
    "bad backup schedule": (
        "format", dict(BACKUP, postgresql_backup_full_schedule="Sun *-*-* 01:30:00"),
        ["postgresql_backup_full_schedule", "cron"]),
    "tab in a setting": (
        "injection", {"postgresql_settings": {"application_name": "a\tb"}},
        ["postgresql_settings", "application_name"]),
    "bad setting name": (
        "injection", {"postgresql_settings": {"bad name": "1"}}, ["postgresql_settings", "bad name"]),
    "certificate path instead of PEM": (
        "broken-config", {"postgresql_tls_cert": "/etc/ssl/server.crt", "postgresql_tls_key": "/etc/ssl/server.key"},
        ["postgresql_tls_cert and postgresql_tls_key must both hold PEM"]),
    "unsupported target": (
        "format", {"postgresql_target": "docker"}, ["postgresql_target"]),
    "kubernetes: no instances": (
        "ranges", dict(K8S, postgresql_k8s_instances=0), ["postgresql_k8s_instances at least 1"]),
    "kubernetes: latest image": (
        "format", dict(K8S, postgresql_k8s_image="registry.example.internal/cloudnative-pg/postgresql:latest"),
        ["postgresql_k8s_image pinned"]),
    "kubernetes: no image registry": (
        "required", dict(K8S, mail_k8s_registry=""), ["mail_k8s_registry is required with mail_target kubernetes"]),
    "kubernetes: image registry with a scheme": (
        "format", dict(K8S, mail_k8s_registry="https://registry.example.internal"), ["mail_k8s_registry", "without a scheme"]),
    "kubernetes: bad storage size": (
        "format", dict(K8S, postgresql_k8s_storage_size="lots"), ["postgresql_k8s_storage_size"]),
    "kubernetes: storage class not a DNS name": (
        "format", dict(K8S, mail_k8s_storage_class="Fast_SSD"), ["mail_k8s_storage_class"]),
    "kubernetes: storage class override not a DNS name": (
        "format", dict(K8S, postgresql_k8s_storage_class="Fast SSD"), ["postgresql_k8s_storage_class"]),
    "kubernetes: no client selectors": (
        "required", dict(K8S, postgresql_k8s_client_selectors=[]), ["postgresql_k8s_client_selectors"]),
    "kubernetes: missing password": (
        "required", dict(K8S, postgresql_databases=[{"name": "stalwart", "owner": "stalwart"}]),
        ["postgresql_databases", "password"]),
    "kubernetes: backup without S3 secret": (
        "required", dict(K8S, **dict(BACKUP, postgresql_backup_s3_secret_key="")), ["postgresql_backup_s3_secret_key"]),
    "kubernetes: bad retention": (
        "format", dict(K8S, **dict(BACKUP, postgresql_k8s_backup_retention="forever")),
        ["postgresql_k8s_backup_retention"]),
    "kubernetes: small memory limit": (
        "ranges", dict(K8S, postgresql_memory_mb=None, postgresql_k8s_resources={
            "requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}),
        ["postgresql_memory_mb"]),
    # Added for the matrix (issue 10): the classes of the issue that apply to this role.
    "IPv6 CIDR out of range": (
        "firewall", {"postgresql_allowed_hosts": ["2001:db8::/129"]}, ["postgresql_allowed_hosts must list"]),
    "bad CIDR among the replicas": (
        "firewall", {"postgresql_replication_allowed_hosts": ["10.0.0.1/33"], "postgresql_replication_password": SECRET + "repl"},
        ["postgresql_replication_allowed_hosts must list"]),
    "host name as listen address": (
        "format", {"postgresql_listen_addresses": ["db.example.com"]},
        ["postgresql_listen_addresses must list IPv4/IPv6 addresses"]),
    "memory base below 256 MB": (
        "ranges", {"postgresql_memory_mb": 100}, ["postgresql_memory_mb a whole number of at least 256"]),
    "no connections": (
        "ranges", {"postgresql_max_connections": 0}, ["postgresql_max_connections 1-262143"]),
    "memory size below 64kB": (
        "ranges", {"postgresql_work_mem": "8kB"},
        ["postgresql_work_mem must be a PostgreSQL memory size of at least 64kB"]),
    "key that does not match the certificate": (
        "broken-config", {"postgresql_tls_cert": CERT, "postgresql_tls_key": OTHER_KEY, "postgresql_tls_ca_cert": CERT},
        ["postgresql_tls_key does not belong to postgresql_tls_cert"]),
    "newline in the S3 access key": (
        "injection", dict(BACKUP, postgresql_backup_s3_access_key="AKID\nrepo1-path=/x"),
        ["postgresql_backup_s3_access_key", "control characters"]),
    "trailing space in the S3 secret": (
        "injection", dict(BACKUP, postgresql_backup_s3_secret_key=SECRET + "key "),
        ["postgresql_backup_s3_secret_key", "leading/trailing spaces"]),
    "newline in the S3 endpoint": (
        "injection", dict(BACKUP, postgresql_backup_s3_endpoint="s3.example.net\nrepo1-path=/x"),
        ["postgresql_backup_s3_endpoint (a host name or address"]),
    "S3 port out of range": (
        "ranges", dict(BACKUP, postgresql_backup_s3_port=70000), ["postgresql_backup_s3_port 1-65535"]),
    "empty backup bucket": (
        "bucket", dict(BACKUP, postgresql_backup_s3_bucket=""),
        ["postgresql_backup_s3_bucket (an S3 bucket name", "got ''"]),
    "upper-case backup bucket": (
        "bucket", dict(BACKUP, postgresql_backup_s3_bucket="Backups"), ["postgresql_backup_s3_bucket", "'Backups'"]),
    "backup bucket with '..'": (
        "bucket", dict(BACKUP, postgresql_backup_s3_bucket="back..ups"),
        ["postgresql_backup_s3_bucket", "'back..ups'"]),
    "backup bucket that is an IP address": (
        "bucket", dict(BACKUP, postgresql_backup_s3_bucket="192.168.1.1"),
        ["postgresql_backup_s3_bucket", "'192.168.1.1'"]),
    "kubernetes: backup bucket with '.-'": (
        "bucket", dict(K8S, **dict(BACKUP, postgresql_backup_s3_bucket="back.-ups")),
        ["postgresql_backup_s3_bucket", "'back.-ups'"]),
}


@pytest.mark.parametrize("name", [case(CASES[name][0], name, id=name) for name in sorted(CASES)])
def test_bad_input_fails_before_any_change(tmp_path, name):
    _defect_class, extra, expected = CASES[name]
    drop = [name for name, value in extra.items() if value is None]
    rc, out = run(tmp_path, {name: value for name, value in extra.items() if value is not None}, drop=drop)
    assert rc != 0, out[-3000:]
    for text in expected:
        assert text in out, f"{text!r} missing from:\n{out[-3000:]}"
    assert re.search(r"changed=0 ", out), out[-3000:]
    assert "Install PostgreSQL" not in out, "the role went past input validation"
    assert not (tmp_path / "render").exists() and not (tmp_path / "ca").exists()


def render(tmp_path, extra=None):
    variables = dict(K8S, **BACKUP)
    variables.update({"postgresql_backup_s3_ca_cert": "", "postgresql_settings": {"log_min_duration_statement": "250ms",
                                                                                  "jit": False}})
    variables.update(extra or {})
    # postgresql_memory_mb from the pods' memory limit (2Gi): shared_buffers 512MB.
    return run(tmp_path, variables, check=False, drop=("postgresql_memory_mb",))


def validator_findings(directory):
    from tests.kubernetes import validate
    report = validate.validate_dir(str(directory), external_namespaces=("mail",))
    # The namespace's default-deny policy comes from k8s_prerequisites, not from this role. The validator's secret-name
    # heuristic reads Kubernetes' own `topologyKey` (two words, the last "key") as a secret: not one.
    return report, [item for item in report.findings if item.rule != "default-deny"
                    and not (item.rule == "secret-outside-secret" and ".topologyKey: topologyKey" in item.message)]


@pytest.mark.defect_class("injection")  # works end to end: a database password with ' \ $ ` $( )
def test_kubernetes_render_validates_and_is_byte_identical(tmp_path):
    rc, out = render(tmp_path)
    assert rc == 0, out[-5000:]
    top = tmp_path / "render"
    component = top / "postgresql"
    names = sorted(os.listdir(component))
    for expected in ("cluster-postgresql.yaml", "database-postgresql-stalwart.yaml", "database-postgresql-roundcube.yaml",
                     "databaserole-postgresql-stalwart.yaml", "databaserole-postgresql-roundcube.yaml",
                     "secret-postgresql-stalwart-credentials.yaml", "secret-postgresql-backup-s3.yaml",
                     "secret-postgresql-server-tls.yaml", "objectstore-postgresql-backup.yaml",
                     "scheduledbackup-postgresql-full.yaml", "networkpolicy-postgresql.yaml", "kustomization.yaml"):
        assert expected in names, names
    cluster = (component / "cluster-postgresql.yaml").read_text()
    assert "barmanObjectStore" not in cluster and "isWALArchiver: true" in cluster
    assert "shared_buffers: 512MB" in cluster and "jit: 'off'" in cluster and "instances: 3" in cluster
    assert "schedule: 0 30 1 * * 0" in (component / "scheduledbackup-postgresql-full.yaml").read_text()
    credentials = (component / "secret-postgresql-stalwart-credentials.yaml").read_text()
    assert "kubernetes.io/basic-auth" in credentials
    # The password with ' \ $ ` $( ) reaches the Secret unchanged (CNPG sets the role's password from it).
    assert base64.b64decode(yaml.safe_load(credentials)["data"]["password"]).decode() == DATABASES[0]["password"]
    report, findings = validator_findings(top)
    assert not findings, report.format()

    snapshot = tmp_path / "first"
    os.rename(top, snapshot)
    os.makedirs(top)
    rc, _log = render(tmp_path)  # into an empty directory: the same bytes
    assert rc == 0
    cmp = filecmp.dircmp(str(snapshot), str(top))
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    for sub in cmp.subdirs.values():
        assert not sub.diff_files and not sub.left_only and not sub.right_only, sub.diff_files
    rc, out = render(tmp_path)  # over the existing render: nothing changes
    assert rc == 0 and re.search(r"changed=0 ", out), out[-3000:]


def test_kubernetes_render_without_backups(tmp_path):
    """Also: PostgreSQL's fractional size units (1.5GB) are accepted, and so is a registry with a port."""
    rc, out = run(tmp_path, dict(K8S, postgresql_k8s_instances=1, mail_k8s_storage_class="fast-ssd",
                                 postgresql_shared_buffers="1.5GB", mail_k8s_registry="mirror.example.internal:5000/mail"),
                  check=False)
    assert rc == 0, out[-5000:]
    component = tmp_path / "render" / "postgresql"
    names = os.listdir(component)
    assert not [name for name in names if name.startswith(("objectstore", "scheduledbackup"))], names
    cluster = (component / "cluster-postgresql.yaml").read_text()
    assert "plugins" not in cluster and "storageClass: fast-ssd" in cluster and "shared_buffers: 1.5GB" in cluster
    assert "imageName: mirror.example.internal:5000/mail/cloudnative-pg/postgresql:17.6-standard-trixie" in cluster, cluster
    report, findings = validator_findings(tmp_path / "render")
    assert not findings, report.format()
