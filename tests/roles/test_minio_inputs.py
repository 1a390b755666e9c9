"""Bad input to the minio role fails before anything is installed, with a message naming the variable; the
Kubernetes tree (a MinIO operator Tenant) renders, validates offline and re-renders byte-identically. Runs
ansible-playbook against localhost with throwaway directories (the one harness in conftest.py); no containers.
Served artifacts are random bytes: TEST STAND-INS, not MinIO."""
import base64
import os

import pytest
import yaml

from tests.kubernetes import validate
from tests.roles.harness import case, mismatched_tls, run_role

SECRET_MARK = "s3cret-mark-"
GOOD = {
    "minio_allowed_hosts": ["10.0.0.5"],
    "minio_root_user": "lab-root",
    "minio_root_password": SECRET_MARK + "root-0123456789",
    "minio_stalwart_access_key": "lab-stalwart",
    "minio_stalwart_secret_key": SECRET_MARK + "stalwart-0123",
    "minio_backup_access_key": "lab-backup",
    "minio_backup_secret_key": SECRET_MARK + "backup-012345",
    "minio_bind_address": "127.0.0.1",  # normally from gathered facts
}
PAYLOAD = os.urandom(4096)


def run(tmp_path, served, extra, drop=(), check=False, environment_failure=None):
    minio_url, minio_sha = served.add("minio", PAYLOAD)
    mc_url, mc_sha = served.add("mc", PAYLOAD[::-1])
    variables = dict(GOOD, minio_artifact_url=minio_url, minio_artifact_sha256=minio_sha,
                     minio_mc_artifact_url=mc_url, minio_mc_artifact_sha256=mc_sha,
                     minio_install_dir=str(tmp_path / "opt"), minio_binary_link=str(tmp_path / "bin" / "minio"),
                     minio_mc_binary_link=str(tmp_path / "bin" / "mc"), minio_data_dir=str(tmp_path / "data"),
                     minio_config_dir=str(tmp_path / "etc"), minio_env_file=str(tmp_path / "etc-default-minio"),
                     mail_tls_lab_ca_dir=str(tmp_path / "lab-ca"), mail_firewall_dropin_dir=str(tmp_path / "nft"))
    variables.update({k: (str(tmp_path / "render") if v == "RENDER" else v) for k, v in extra.items()})
    for name in drop:
        variables.pop(name)
    rc, out = run_role("minio", tmp_path, variables, check=check, environment_failure=environment_failure)
    assert SECRET_MARK not in out, "a secret leaked into the output"
    return rc, out


def assert_nothing_installed(tmp_path):
    for name in ("bin", "data", "etc", "etc-default-minio", "lab-ca", "nft", "render"):
        assert not (tmp_path / name).exists(), "%s was created" % name
    opt = tmp_path / "opt"
    assert not opt.exists() or not any(opt.iterdir()), "a binary was installed"


K8S = {"mail_target": "kubernetes", "mail_k8s_mode": "render", "mail_render_dir": "RENDER",
       "mail_k8s_registry": "registry.example.internal/mail"}


CERT, OTHER_KEY = mismatched_tls()


@pytest.mark.parametrize("extra,drop,needle", [
    case("required", {}, ("minio_root_password",), "minio_root_password (at least 16 characters) must be set"),
    case("required", {}, ("minio_root_user",), "minio_root_user (at least 3 characters)"),
    case("format", {"minio_root_password": "short"}, (), "minio_root_password (at least 16 characters)"),
    case("injection", {"minio_root_password": SECRET_MARK + "0123456789\nMINIO_X=1"}, (), "without control characters"),
    case("injection", {"minio_root_user": "lab-root\nMINIO_ROOT_PASSWORD=x"}, (), "without control characters"),
    case("injection", {"minio_stalwart_secret_key": SECRET_MARK + "stalwart\nx"}, (),
         "minio_stalwart_access_key / minio_stalwart_secret_key must be set"),
    case("injection", {"minio_backup_secret_key": SECRET_MARK + "backup-01\t"}, (),
         "minio_backup_access_key / minio_backup_secret_key must be set"),
    case("required", {}, ("minio_stalwart_secret_key",), "minio_stalwart_access_key / minio_stalwart_secret_key must be set"),
    case("required", {}, ("minio_backup_access_key",), "minio_backup_access_key / minio_backup_secret_key must be set"),
    case("format", {"minio_backup_access_key": "lab stalwart"}, (), "minio_backup_access_key / minio_backup_secret_key"),
    case("format", {"minio_backup_access_key": "lab-stalwart"}, (),
         "minio_stalwart_access_key and minio_backup_access_key must differ"),
    case("firewall", {"minio_allowed_hosts": []}, (), "minio_allowed_hosts must list"),
    case("firewall", {"minio_allowed_hosts": ["stalwart.example"]}, (), "minio_allowed_hosts must list"),
    case("firewall", {"minio_allowed_hosts": ["10.0.0.1/33"]}, (), "minio_allowed_hosts must list"),
    case("firewall", {"minio_allowed_hosts": ["2001:db8::/129"]}, (), "minio_allowed_hosts must list"),
    case("firewall", {"minio_port": 70000}, (), "minio_port must be a port 1-65535"),
    case("firewall", {"minio_port": 0}, (), "minio_port must be a port 1-65535"),
    case("bucket", {"minio_stalwart_bucket": ""}, (), 'invalid: ""'),
    case("bucket", {"minio_backup_bucket": "Backups"}, (), 'invalid: "Backups"'),
    case("bucket", {"minio_backup_bucket": "192.168.1.1"}, (), 'invalid: "192.168.1.1"'),
    case("bucket", {"minio_extra_buckets": ["under_score", "-lead"]}, (), '"under_score", "-lead"'),
    case("bucket", {"minio_extra_buckets": ["a..b", "xn--abc"]}, (), '"a..b", "xn--abc"'),
    case("injection", {"minio_extra_env": {"MINIO_BROWSER": "off\nMINIO_ROOT_USER=x"}}, (),
         "values without control characters"),
    case("format", {"minio_extra_env": {"PATH": "/tmp"}}, (), "minio_extra_env takes MINIO_* names"),
    case("required", {"minio_artifact_sha256": ""}, (), "minio_artifact_sha256 must be the 64-hex-digit"),
    case("format", {"minio_mc_artifact_sha256": "abc"}, (), "minio_mc_artifact_sha256 must be the 64-hex-digit"),
    case("broken-config", {"minio_tls_cert": "-----BEGIN CERTIFICATE-----"}, (), "minio_tls_cert and minio_tls_key must both"),
    case("broken-config", {"minio_tls_cert": CERT, "minio_tls_key": OTHER_KEY}, (),
         "minio_tls_key does not belong to minio_tls_cert"),
    case("required", {"minio_bind_address": ""}, (), "minio_bind_address must be an IPv4/IPv6 address"),
    case("ranges", dict(K8S, minio_k8s_servers=0), (), "minio_k8s_servers at least 1"),
    case("ranges", dict(K8S, minio_k8s_servers=2), (), "at least 4 drives"),
    case("ranges", dict(K8S, minio_k8s_volumes_per_server=0), (), "minio_k8s_volumes_per_server at least 1"),
    case("format", dict(K8S, minio_k8s_volume_size="lots"), (), "minio_k8s_volume_size a quantity"),
    case("format", dict(K8S, minio_k8s_image="registry.example.internal/minio/minio:latest"), (), "pinned to a tag other than latest"),
    case("format", dict(K8S, minio_k8s_mc_image="registry.example.internal/minio/mc"), (), "pinned to a tag other than latest"),
])
def test_invalid_input_fails_first(tmp_path, served, extra, drop, needle):
    rc, out = run(tmp_path, served, extra, drop)
    assert rc != 0 and " ".join(needle.split()) in " ".join(out.split()), out[-3000:]
    assert "changed=0" in out
    assert_nothing_installed(tmp_path)


def test_keys_not_required_without_provisioning(tmp_path, served):
    """minio_provision: false needs neither the keys nor mc; validation passes and the install starts (check mode)."""
    rc, out = run(tmp_path, served, {"minio_provision": False, "minio_mc_artifact_sha256": ""},
                  drop=["minio_stalwart_secret_key", "minio_backup_access_key"], check=True,
                  environment_failure="on a host without systemd the run stops at the service, after validation")
    del rc  # on a host without systemd the run stops at the service, after validation
    assert "minio_stalwart" not in out and "minio_mc_artifact" not in out, out[-2000:]
    assert "TASK [talentmesh.mail.shared : Create the service user]" in out, out[-2000:]


@pytest.mark.defect_class("format")
def test_unreachable_url_fails_before_install(tmp_path, served):
    rc, out = run(tmp_path, served, {"minio_mc_artifact_url": served.url + "/missing"})
    assert rc != 0 and "minio_mc_artifact_url" in out and "is not reachable" in out, out[-2000:]
    assert_nothing_installed(tmp_path)


@pytest.mark.defect_class("state")
def test_checksum_mismatch_installs_nothing(tmp_path, served):
    rc, out = run(tmp_path, served, {"minio_artifact_sha256": "ab" * 32})
    assert rc != 0 and "minio_artifact_url" in out and "minio_artifact_sha256" in out, out[-2000:]
    assert "nothing was installed" in " ".join(out.split())
    assert not (tmp_path / "opt" / "minio.RELEASE.2025-09-07T16-13-09Z").exists(), "the bad download was kept"
    assert not (tmp_path / "bin").exists()


@pytest.mark.defect_class("state")
def test_local_artifact_mismatch_fails_before_install(tmp_path, served):
    served.add("local-minio", b"local bytes")
    rc, out = run(tmp_path, served, {"minio_artifact_path": served.path("local-minio"), "minio_artifact_sha256": "1" * 64})
    assert rc != 0 and "minio_artifact_path" in out and "nothing was installed" in " ".join(out.split()), out[-2000:]
    assert_nothing_installed(tmp_path)


def snapshot(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.defect_class("injection")  # works end to end: a root password with ' \ $ ` $( ) in config.env
def test_kubernetes_render_validates_and_is_stable(tmp_path, served):
    extra = dict(K8S, mail_k8s_storage_class="fast-ssd", minio_root_password=SECRET_MARK + "q' \\ $x `y` $(z)")
    rc, out = run(tmp_path, served, extra)
    assert rc == 0, out[-3000:]
    root = tmp_path / "render"
    component = root / "minio"
    files = sorted(p.name for p in component.iterdir())
    assert "tenant-minio.yaml" in files and "secret-minio-configuration.yaml" in files, files
    # The namespace and its default-deny policy come from k8s_prerequisites' render, not this component's.
    report = validate.validate_dir(str(root), external_namespaces=("mail",))
    findings = [str(f) for f in report.findings if f.rule != "default-deny"]
    assert not findings, "\n".join(findings)
    tenant = yaml.safe_load((component / "tenant-minio.yaml").read_text())
    assert tenant["spec"]["requestAutoCert"] is False
    assert tenant["spec"]["externalCertSecret"] == [{"name": "minio-tls", "type": "kubernetes.io/tls"}]
    assert tenant["spec"]["pools"][0]["volumeClaimTemplate"]["spec"]["storageClassName"] == "fast-ssd"
    assert [b["name"] for b in tenant["spec"]["buckets"]] == ["stalwart-blobs", "backups"]
    assert "users" not in tenant["spec"], "spec.users would get consoleAdmin; the Job sets least-privilege policies"
    config = yaml.safe_load((component / "secret-minio-configuration.yaml").read_text())
    env = base64.b64decode(config["data"]["config.env"]).decode()
    assert 'export MINIO_ROOT_PASSWORD="%sq\' \\\\ \\$x \\`y\\` \\$(z)"' % SECRET_MARK in env, env
    first = snapshot(root)
    rc, out = run(tmp_path, served, extra)
    assert rc == 0 and "changed=0" in out, out[-3000:]
    assert snapshot(root) == first, "the second render differs"
    assert not any(SECRET_MARK.encode() in data for name, data in first.items() if "secret-" not in name)
