"""k8s_prerequisites: bad input fails before anything is rendered, naming the variable; render mode writes the
namespace (Pod Security restricted) and the default-deny policy without touching a cluster, byte-identical twice."""
import pytest
import yaml

from tests.roles.harness import case, run_role

K8S = {"mail_target": "kubernetes", "mail_k8s_mode": "render",
       "mail_k8s_registry": "registry.example.internal/mail"}


def _run(tmp_path, extra):
    variables = dict(K8S, mail_render_dir=str(tmp_path / "rendered"))
    variables.update(extra)
    return run_role("k8s_prerequisites", tmp_path, variables)


@pytest.mark.parametrize("extra,needle", [
    case("format", {"mail_target": "baremetal"}, "runs only with mail_target kubernetes"),
    case("format", {"k8s_prerequisites_operator_manifests": [{"name": "cnpg", "src": "cnpg.yaml", "sha256": "abc"}]},
         "k8s_prerequisites_operator_manifests entry needs"),
    case("format", {"k8s_prerequisites_operator_manifests": [{"name": "rook", "src": "rook.yaml", "sha256": "0" * 64}]},
         "k8s_prerequisites_operator_manifests"),
    case("format", {"k8s_prerequisites_min_version": "latest"}, "k8s_prerequisites_min_version must be"),
    case("format", {"mail_k8s_namespace": "Mail_NS"}, "mail_k8s_namespace Mail_NS is not a DNS label"),
    case("format", {"k8s_prerequisites_pod_security_version": "1.31"}, "k8s_prerequisites_pod_security_version latest or"),
    case("required", {"k8s_prerequisites_operator_manifests": [{"name": "cnpg", "sha256": "0" * 64}]},
         "missing required arguments: src found in k8s_prerequisites_operator_manifests"),
])
def test_invalid_input_fails_first(tmp_path, extra, needle):
    rc, out = _run(tmp_path, extra)
    assert rc != 0 and needle in out, out[-3000:]
    assert not (tmp_path / "rendered").exists()


def test_render_namespace_and_default_deny(tmp_path):
    rc, out = _run(tmp_path, {"mail_k8s_namespace": "mail-lab"})
    assert rc == 0, out[-3000:]
    ns_dir = tmp_path / "rendered" / "namespace"
    ns = yaml.safe_load((ns_dir / "namespace-mail-lab.yaml").read_text())
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels["pod-security.kubernetes.io/" + mode] == "restricted"
        assert labels["pod-security.kubernetes.io/%s-version" % mode] == "v1.31"
    deny = yaml.safe_load((ns_dir / "networkpolicy-default-deny.yaml").read_text())
    assert deny["metadata"]["namespace"] == "mail-lab"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    top = yaml.safe_load((tmp_path / "rendered" / "kustomization.yaml").read_text())
    assert "namespace" in top["resources"]
    before = {p.name: p.read_bytes() for p in ns_dir.iterdir()}
    rc, out = _run(tmp_path, {"mail_k8s_namespace": "mail-lab"})
    assert rc == 0 and "changed=0" in out, out[-3000:]
    assert {p.name: p.read_bytes() for p in ns_dir.iterdir()} == before
