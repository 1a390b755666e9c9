"""Bad input to the dragonfly role fails before anything is installed, with a message naming the variable.
Runs ansible-playbook against localhost with throwaway directories; no containers."""
import pytest

from tests.roles.harness import case, mismatched_tls, run_role

PASSWORD = "a-long-enough-test-password"
GOOD = {
    "dragonfly_requirepass": PASSWORD,
    "dragonfly_allowed_hosts": ["10.0.0.5", "2001:db8::/64"],
    "dragonfly_maxmemory": "1G",
    "dragonfly_bind_address": "127.0.0.1",  # normally from gathered facts
}


def run(tmp_path, served, extra):
    url, sha = served.add("dragonfly-x86_64.tar.gz", b"not really a tarball")
    variables = dict(GOOD, dragonfly_artifact_url=url, dragonfly_artifact_sha256=sha,
                     dragonfly_download_dir=str(tmp_path / "dl"), dragonfly_install_dir=str(tmp_path / "opt"),
                     dragonfly_config_dir=str(tmp_path / "etc"), dragonfly_data_dir=str(tmp_path / "data"),
                     mail_tls_lab_ca_dir=str(tmp_path / "ca"))
    variables.update(extra)
    rc, out = run_role("dragonfly", tmp_path, variables)
    assert PASSWORD not in out
    return rc, out


CERT, OTHER_KEY = mismatched_tls()
K8S = {"dragonfly_target": "kubernetes", "mail_target": "kubernetes", "mail_k8s_mode": "render",
       "mail_k8s_registry": "registry.example.internal/mail"}


@pytest.mark.parametrize("extra,needle", [
    case("required", {"dragonfly_requirepass": ""}, "dragonfly_requirepass is missing"),
    case("injection", {"dragonfly_requirepass": PASSWORD + "\n--requirepass="}, "contains a control character"),
    case("injection", {"dragonfly_requirepass": PASSWORD + "\t"}, "contains a control character"),
    case("injection", {"dragonfly_extra_flags": {"proactor_threads": "2\n--requirepass="}},
         "dragonfly_extra_flags values may hold no control characters"),
    case("injection", {"dragonfly_snapshot_cron": "0 */6 * * *\n--requirepass="}, "dragonfly_snapshot_cron may hold no"),
    case("injection", {"dragonfly_dbfilename": "dump\n--requirepass="}, "dragonfly_dbfilename may hold no"),
    case("injection", {"dragonfly_data_dir": "/var/lib/dragonfly\r"}, "dragonfly_data_dir may hold no"),
    case("firewall", {"dragonfly_allowed_hosts": []}, "dragonfly_allowed_hosts must list"),
    case("firewall", {"dragonfly_allowed_hosts": ["10.0.0.1/33"]}, "dragonfly_allowed_hosts must list"),
    case("firewall", {"dragonfly_allowed_hosts": ["2001:db8::/129"]}, "dragonfly_allowed_hosts must list"),
    case("firewall", {"dragonfly_allowed_hosts": ["db.example.com"]}, "dragonfly_allowed_hosts must list"),
    case("firewall", {"dragonfly_port": 70000}, "dragonfly_port must be a port 1-65535"),
    case("firewall", {"dragonfly_port": 0}, "dragonfly_port must be a port 1-65535"),
    case("format", {"dragonfly_maxmemory": "lots"}, "dragonfly_maxmemory 'lots' must be 0"),
    case("ranges", {"dragonfly_maxmemory": "0.0001K"}, "dragonfly_maxmemory '0.0001K' must be 0"),
    case("ranges", {"dragonfly_maxmemory": "-1G"}, "dragonfly_maxmemory '-1G' must be 0"),
    case("format", {"dragonfly_artifact_sha256": "abc"}, "dragonfly_artifact_sha256 must be the 64-hex-digit"),
    case("broken-config", {"dragonfly_tls_cert": "/etc/ssl/server.crt", "dragonfly_tls_key": "/etc/ssl/server.key"},
         "dragonfly_tls_cert and dragonfly_tls_key must both hold PEM"),
    case("broken-config", {"dragonfly_tls_cert": CERT, "dragonfly_tls_key": OTHER_KEY},
         "dragonfly_tls_key does not belong to dragonfly_tls_cert"),
    case("format", dict(K8S, dragonfly_k8s_image="dragonfly:latest", mail_render_dir="/nonexistent"),
         "dragonfly_k8s_image pinned"),
    case("ranges", dict(K8S, dragonfly_k8s_replicas=0, mail_render_dir="/nonexistent"),
         "dragonfly_k8s_replicas at least 1 (got 0)"),
    case("format", dict(K8S, dragonfly_k8s_name="Dragonfly", mail_render_dir="/nonexistent"),
         "dragonfly_k8s_name must be a DNS label (got Dragonfly)"),
    case("required", {"mail_target": "kubernetes", "mail_k8s_mode": "render"}, "mail_render_dir is required"),
])
def test_invalid_input_fails_first(tmp_path, served, extra, needle):
    rc, out = run(tmp_path, served, extra)
    assert rc != 0 and needle in out, out[-3000:]
    assert not (tmp_path / "opt").exists() and not (tmp_path / "dl").exists() and not (tmp_path / "etc").exists()


@pytest.mark.defect_class("format")
def test_unreachable_artifact_url(tmp_path, served):
    rc, out = run(tmp_path, served, {"dragonfly_artifact_url": served.url + "/missing.tar.gz"})
    assert rc != 0 and "dragonfly_artifact_url" in out and "is not reachable" in out, out[-3000:]
    assert not (tmp_path / "dl").exists()


@pytest.mark.defect_class("state")
def test_checksum_mismatch_installs_nothing(tmp_path, served):
    rc, out = run(tmp_path, served, {"dragonfly_artifact_sha256": "0" * 64})
    assert rc != 0 and "did not match the pinned dragonfly_artifact_sha256" in out, out[-3000:]
    assert not list((tmp_path / "dl").glob("*.tar.gz"))
    assert not (tmp_path / "opt").exists()


@pytest.mark.defect_class("state")
def test_local_artifact_checksum_mismatch(tmp_path, served):
    served.add("local.tar.gz", b"local bytes")
    rc, out = run(tmp_path, served, {"dragonfly_artifact_path": served.path("local.tar.gz"),
                                     "dragonfly_artifact_sha256": "1" * 64})
    assert rc != 0 and "dragonfly_artifact_path" in out and "nothing was installed" in out, out[-3000:]


@pytest.mark.defect_class("secrets")  # works end to end: the password only in a 0600 Secret, never in the output
def test_kubernetes_render_is_stable(tmp_path):
    """The Kubernetes tree renders without facts or a cluster; a second render changes nothing, byte for byte."""
    out = tmp_path / "rendered"
    variables = {"mail_target": "kubernetes", "mail_k8s_mode": "render", "mail_k8s_registry": K8S["mail_k8s_registry"], "mail_render_dir": str(out),
                 "mail_tls_lab_ca_dir": str(tmp_path / "ca"), "dragonfly_requirepass": PASSWORD}
    rc, log = run_role("dragonfly", tmp_path, variables)
    assert rc == 0, log[-3000:]
    assert PASSWORD not in log
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert files == ["dragonfly/dragonfly-dragonfly.yaml", "dragonfly/kustomization.yaml",
                     "dragonfly/networkpolicy-dragonfly.yaml", "dragonfly/poddisruptionbudget-dragonfly.yaml",
                     "dragonfly/secret-dragonfly-auth.yaml", "dragonfly/secret-dragonfly-tls.yaml", "kustomization.yaml"]
    assert oct((out / "dragonfly/secret-dragonfly-auth.yaml").stat().st_mode & 0o777) == "0o600"
    first = {f: (out / f).read_bytes() for f in files}
    cr = first["dragonfly/dragonfly-dragonfly.yaml"].decode()
    assert "--maxmemory=1G" in cr and "null" not in cr
    rc, log = run_role("dragonfly", tmp_path, variables)
    assert rc == 0 and "changed=0" in log, log[-3000:]
    assert {f: (out / f).read_bytes() for f in files} == first
