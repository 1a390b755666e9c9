"""Bad input to the seaweedfs role fails before anything is installed, with a message naming the variable; the
Kubernetes tree renders, validates offline and re-renders byte-identically. Runs ansible-playbook against localhost
with throwaway directories (the one harness in conftest.py); no containers."""
import io
import tarfile

import pytest

from tests.kubernetes import validate
from tests.roles.harness import case, mismatched_tls, run_role

SECRET_MARK = "s3cret-"
GOOD = {
    "seaweedfs_allowed_hosts": ["10.0.0.5", "2001:db8::/64"],
    "seaweedfs_s3_admin_access_key": "admin",
    "seaweedfs_s3_admin_secret_key": SECRET_MARK + "admin",
    "seaweedfs_s3_stalwart_access_key": "stalwart",
    "seaweedfs_s3_stalwart_secret_key": SECRET_MARK + "stalwart",
    "seaweedfs_s3_backup_access_key": "backup",
    "seaweedfs_s3_backup_secret_key": SECRET_MARK + "backup",
    "seaweedfs_s3_bind_address": "127.0.0.1",  # normally from gathered facts
}


def tarball():
    data = b"#!/bin/sh\necho 'version 8000GB 0.0 test'\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("weed")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def run(tmp_path, served, extra, drop=(), check=False):
    url, sha = served.add("seaweedfs.tar.gz", tarball())
    variables = dict(GOOD, seaweedfs_artifact_url=url, seaweedfs_artifact_sha256=sha, seaweedfs_version="0.0",
                     seaweedfs_download_dir=str(tmp_path / "cache"), seaweedfs_install_dir=str(tmp_path / "opt"),
                     seaweedfs_binary_link=str(tmp_path / "bin" / "weed"), seaweedfs_data_dir=str(tmp_path / "data"),
                     seaweedfs_config_dir=str(tmp_path / "etc"), mail_tls_lab_ca_dir=str(tmp_path / "lab-ca"),
                     mail_firewall_dropin_dir=str(tmp_path / "nft"))
    variables.update(extra)
    for name in drop:
        variables.pop(name)
    rc, out = run_role("seaweedfs", tmp_path, variables, check=check)
    assert SECRET_MARK not in out, "an S3 secret leaked into the output"
    return rc, out


def assert_nothing_installed(tmp_path):
    for name in ("opt", "bin", "data", "etc", "lab-ca", "nft", "render"):
        assert not (tmp_path / name).exists(), "%s was created" % name
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir()), "an artifact was left in the download directory"


CERT, OTHER_KEY = mismatched_tls()
K8S = {"mail_target": "kubernetes", "mail_k8s_mode": "render", "mail_render_dir": "RENDER",
       "mail_k8s_registry": "registry.example.internal/mail"}


@pytest.mark.parametrize("extra,drop,needle", [
    case("required", {}, ("seaweedfs_s3_stalwart_secret_key",), "seaweedfs_s3_stalwart_secret_key is missing"),
    case("required", {"seaweedfs_s3_backup_secret_key": ""}, (), "seaweedfs_s3_backup_secret_key is missing"),
    case("injection", {"seaweedfs_s3_backup_secret_key": SECRET_MARK + "x\ny"}, (), "contains a control character"),
    case("injection", {"seaweedfs_s3_admin_secret_key": SECRET_MARK + "x\ty"}, (),
         "seaweedfs_s3_admin_secret_key is missing, empty or contains a control character"),
    case("injection", {"seaweedfs_s3_stalwart_access_key": "stalwart\r"}, (),
         "seaweedfs_s3_stalwart_access_key is missing, empty or contains a control character"),
    case("format", {"seaweedfs_s3_backup_access_key": "admin"}, (), "needs its own access key"),
    case("firewall", {"seaweedfs_allowed_hosts": []}, (), "seaweedfs_allowed_hosts must list"),
    case("firewall", {"seaweedfs_allowed_hosts": ["stalwart.example.net"]}, (), "seaweedfs_allowed_hosts must list"),
    case("firewall", {"seaweedfs_allowed_hosts": ["10.0.0.1/33"]}, (), "seaweedfs_allowed_hosts must list"),
    case("firewall", {"seaweedfs_allowed_hosts": ["2001:db8::/129"]}, (), "seaweedfs_allowed_hosts must list"),
    case("firewall", {"seaweedfs_s3_port": 70000}, (), "must be\ndifferent ports 1-55535"),
    case("firewall", {"seaweedfs_s3_port": 0}, (), "different ports 1-55535"),
    case("ranges", {"seaweedfs_filer_port": 8333}, (), "different ports 1-55535"),
    case("ranges", {"seaweedfs_master_port": 60000}, (), "different ports 1-55535"),
    case("ranges", {"seaweedfs_volume_size_limit_mb": -1}, (), "seaweedfs_volume_size_limit_mb must be 1-30000"),
    case("ranges", {"seaweedfs_volume_size_limit_mb": 30001}, (), "seaweedfs_volume_size_limit_mb must be 1-30000"),
    case("required", {"seaweedfs_s3_bind_address": ""}, (), "seaweedfs_s3_bind_address must be an IPv4/IPv6 address"),
    case("bucket", {"seaweedfs_stalwart_bucket": ""}, (), 'invalid: ""'),
    case("bucket", {"seaweedfs_backup_bucket": "Backups"}, (), 'invalid: "Backups"'),
    case("bucket", {"seaweedfs_extra_buckets": ["a..b", "192.168.1.1", "ab"]}, (), '"ab", "a..b", "192.168.1.1"'),
    case("bucket", {"seaweedfs_extra_buckets": ["sthree-x", "x-s3alias"]}, (), '"sthree-x", "x-s3alias"'),
    case("required", {"seaweedfs_artifact_sha256": ""}, (), "seaweedfs_artifact_sha256 must be the 64-hex-digit"),
    case("broken-config", {"seaweedfs_tls_cert": "-----BEGIN CERTIFICATE-----"}, (),
         "seaweedfs_tls_cert and seaweedfs_tls_key must both"),
    case("broken-config", {"seaweedfs_tls_cert": "/etc/ssl/s3.crt", "seaweedfs_tls_key": "/etc/ssl/s3.key"}, (),
         "must both hold PEM"),
    case("broken-config", {"seaweedfs_tls_cert": CERT, "seaweedfs_tls_key": OTHER_KEY}, (),
         "seaweedfs_tls_key does not belong to seaweedfs_tls_cert"),
    case("ranges", dict(K8S, seaweedfs_k8s_replicas=0), (), "seaweedfs_k8s_replicas at\nleast 1"),
    case("format", dict(K8S, seaweedfs_k8s_image="chrislusf/seaweedfs:latest"), (), "pinned to a tag other than latest"),
    case("format", dict(K8S, seaweedfs_k8s_storage_size="lots"), (), "seaweedfs_k8s_storage_size a quantity"),
    case("format", dict(K8S, mail_k8s_storage_class="Fast_SSD"), (), "mail_k8s_storage_class Fast_SSD is not a DNS subdomain"),
])
def test_invalid_input_fails_first(tmp_path, served, extra, drop, needle):
    extra = {k: (str(tmp_path / "render") if v == "RENDER" else v) for k, v in extra.items()}
    rc, out = run(tmp_path, served, extra, drop)
    flat = " ".join(out.split())
    assert rc != 0 and " ".join(needle.split()) in flat, out[-3000:]
    assert "changed=0" in out
    assert_nothing_installed(tmp_path)


@pytest.mark.defect_class("format")
def test_unreachable_artifact_url(tmp_path, served):
    rc, out = run(tmp_path, served, {"seaweedfs_artifact_url": served.url + "/missing.tar.gz"})
    assert rc != 0 and "seaweedfs_artifact_url" in out and "is not reachable" in out, out[-3000:]
    assert_nothing_installed(tmp_path)


@pytest.mark.defect_class("state")
def test_checksum_mismatch_installs_nothing(tmp_path, served):
    rc, out = run(tmp_path, served, {"seaweedfs_artifact_sha256": "0" * 64})
    assert rc != 0 and "did not match the pinned seaweedfs_artifact_sha256" in " ".join(out.split()), out[-3000:]
    assert "Unpack the weed binary" not in out, "the role went past the checksum"
    assert not list((tmp_path / "cache").glob("*.tar.gz"))
    assert not (tmp_path / "opt").exists() and not (tmp_path / "bin").exists()


@pytest.mark.defect_class("state")
def test_controller_artifact_checksum_mismatch(tmp_path, served):
    served.add("local.tar.gz", b"local bytes")
    rc, out = run(tmp_path, served, {"seaweedfs_artifact_path": served.path("local.tar.gz"),
                                     "seaweedfs_artifact_sha256": "f" * 64})
    assert rc != 0 and "seaweedfs_artifact_path" in out and "nothing was installed" in out, out[-3000:]
    assert_nothing_installed(tmp_path)


def render(tmp_path, served, extra=None):
    variables = {"mail_target": "kubernetes", "mail_k8s_mode": "render", "mail_k8s_registry": K8S["mail_k8s_registry"],
                 "mail_render_dir": str(tmp_path / "render"), "mail_k8s_storage_class": "fast-ssd"}
    variables.update(extra or {})
    return run(tmp_path, served, variables)


def snapshot(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.defect_class("secrets")  # works end to end: the S3 keys only in Secrets
def test_kubernetes_render_validates_and_is_stable(tmp_path, served):
    rc, out = render(tmp_path, served)
    assert rc == 0, out[-3000:]
    root = tmp_path / "render"
    files = sorted(p.name for p in (root / "seaweedfs").iterdir())
    assert "statefulset-seaweedfs.yaml" in files and "secret-seaweedfs-config.yaml" in files, files
    assert not any(name.startswith("configmap-") for name in files), files
    assert not any(name.startswith("poddisruptionbudget-") for name in files), "no PDB for one replica"
    # The namespace and its default-deny policy come from k8s_prerequisites' render, not this component's.
    report = validate.validate_dir(str(root), external_namespaces=("mail",))
    findings = [str(f) for f in report.findings if "default-deny" not in f.rule]
    assert not findings, "\n".join(findings)
    first = snapshot(root)
    rc, out = render(tmp_path, served)
    assert rc == 0 and "changed=0" in out, out[-3000:]
    assert snapshot(root) == first, "the second render differs"
    assert not any(SECRET_MARK.encode() in data for name, data in first.items() if "secret-" not in name)


def test_kubernetes_render_with_replicas_has_a_pdb(tmp_path, served):
    rc, out = render(tmp_path, served, {"seaweedfs_k8s_replicas": 3})
    assert rc == 0, out[-3000:]
    pdb = tmp_path / "render" / "seaweedfs" / "poddisruptionbudget-seaweedfs.yaml"
    assert pdb.exists()
    sts = (tmp_path / "render" / "seaweedfs" / "statefulset-seaweedfs.yaml").read_text()
    assert "-master.peers=seaweedfs-0.seaweedfs-headless:9333,seaweedfs-1" in sts
