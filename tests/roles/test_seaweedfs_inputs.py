"""Bad input to the seaweedfs role fails before anything is installed, with a message naming the variable; the
Kubernetes tree renders, validates offline and re-renders byte-identically. Runs ansible-playbook against localhost
with throwaway directories (the one harness in conftest.py); no containers."""
import io
import tarfile

import pytest

from tests.kubernetes import validate
from tests.roles.conftest import run_role

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


@pytest.mark.parametrize("extra,drop,needle", [
    ({}, ("seaweedfs_s3_stalwart_secret_key",), "seaweedfs_s3_stalwart_secret_key is missing"),
    ({"seaweedfs_s3_backup_secret_key": ""}, (), "seaweedfs_s3_backup_secret_key is missing"),
    ({"seaweedfs_s3_backup_secret_key": SECRET_MARK + "x\ny"}, (), "contains a control character"),
    ({"seaweedfs_s3_backup_access_key": "admin"}, (), "needs its own access key"),
    ({"seaweedfs_allowed_hosts": []}, (), "seaweedfs_allowed_hosts must list"),
    ({"seaweedfs_allowed_hosts": ["stalwart.example.net"]}, (), "seaweedfs_allowed_hosts must list"),
    ({"seaweedfs_allowed_hosts": ["10.0.0.1/33"]}, (), "seaweedfs_allowed_hosts must list"),
    ({"seaweedfs_s3_port": 70000}, (), "must be\ndifferent ports 1-55535"),
    ({"seaweedfs_filer_port": 8333}, (), "different ports 1-55535"),
    ({"seaweedfs_s3_bind_address": ""}, (), "seaweedfs_s3_bind_address must be an IPv4/IPv6 address"),
    ({"seaweedfs_stalwart_bucket": ""}, (), 'invalid: ""'),
    ({"seaweedfs_backup_bucket": "Backups"}, (), 'invalid: "Backups"'),
    ({"seaweedfs_extra_buckets": ["a..b", "192.168.1.1", "ab"]}, (), '"ab", "a..b", "192.168.1.1"'),
    ({"seaweedfs_artifact_sha256": ""}, (), "seaweedfs_artifact_sha256 must be the 64-hex-digit"),
    ({"seaweedfs_tls_cert": "-----BEGIN CERTIFICATE-----"}, (), "seaweedfs_tls_cert and seaweedfs_tls_key must both"),
    ({"seaweedfs_tls_cert": "/etc/ssl/s3.crt", "seaweedfs_tls_key": "/etc/ssl/s3.key"}, (), "must both hold PEM"),
    ({"mail_target": "kubernetes", "mail_k8s_mode": "render", "mail_render_dir": "RENDER",
      "seaweedfs_k8s_replicas": 0}, (), "seaweedfs_k8s_replicas at\nleast 1"),
    ({"mail_target": "kubernetes", "mail_k8s_mode": "render", "mail_render_dir": "RENDER",
      "seaweedfs_k8s_image": "chrislusf/seaweedfs:latest"}, (), "pinned to a tag other than latest"),
    ({"mail_target": "kubernetes", "mail_k8s_mode": "render", "mail_render_dir": "RENDER",
      "mail_k8s_storage_class": "Fast_SSD"}, (), "mail_k8s_storage_class Fast_SSD is not a DNS subdomain"),
])
def test_invalid_input_fails_first(tmp_path, served, extra, drop, needle):
    extra = {k: (str(tmp_path / "render") if v == "RENDER" else v) for k, v in extra.items()}
    rc, out = run(tmp_path, served, extra, drop)
    flat = " ".join(out.split())
    assert rc != 0 and " ".join(needle.split()) in flat, out[-3000:]
    assert "changed=0" in out
    assert_nothing_installed(tmp_path)


def test_unreachable_artifact_url(tmp_path, served):
    rc, out = run(tmp_path, served, {"seaweedfs_artifact_url": served.url + "/missing.tar.gz"})
    assert rc != 0 and "seaweedfs_artifact_url" in out and "is not reachable" in out, out[-3000:]
    assert_nothing_installed(tmp_path)


def test_checksum_mismatch_installs_nothing(tmp_path, served):
    rc, out = run(tmp_path, served, {"seaweedfs_artifact_sha256": "0" * 64})
    assert rc != 0 and "did not match the pinned seaweedfs_artifact_sha256" in " ".join(out.split()), out[-3000:]
    assert "Unpack the weed binary" not in out, "the role went past the checksum"
    assert not list((tmp_path / "cache").glob("*.tar.gz"))
    assert not (tmp_path / "opt").exists() and not (tmp_path / "bin").exists()


def test_controller_artifact_checksum_mismatch(tmp_path, served):
    served.add("local.tar.gz", b"local bytes")
    rc, out = run(tmp_path, served, {"seaweedfs_artifact_path": served.path("local.tar.gz"),
                                     "seaweedfs_artifact_sha256": "f" * 64})
    assert rc != 0 and "seaweedfs_artifact_path" in out and "nothing was installed" in out, out[-3000:]
    assert_nothing_installed(tmp_path)


def render(tmp_path, served, extra=None):
    variables = {"mail_target": "kubernetes", "mail_k8s_mode": "render", "mail_render_dir": str(tmp_path / "render"),
                 "mail_k8s_storage_class": "fast-ssd"}
    variables.update(extra or {})
    return run(tmp_path, served, variables)


def snapshot(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


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
