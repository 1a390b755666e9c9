"""Bad input to the stalwart role fails before anything is installed, with a message naming the variable; the
Kubernetes tree renders stably and passes the offline validator. Runs ansible-playbook against localhost with
throwaway directories; no containers."""
import json
import shutil

import pytest
import yaml

from tests.kubernetes.validate import validate_dir
from tests.roles.conftest import run_role

SECRETS = {
    "stalwart_admin_password": "admin-password-for-tests-0123",
    "stalwart_recovery_admin_password": "recovery-password-for-tests-0123",
    "stalwart_db_password": "db-password-for-tests-0123",
    "stalwart_metrics_password": "metrics-password-for-tests-0123",
    "mail_s3_stalwart_secret_key": "s3-secret-for-tests-0123",
    "mail_kv_password": "kv-password-for-tests-0123",
}
GOOD = dict(SECRETS, **{
    "stalwart_hostname": "mail.example.com",
    "stalwart_default_domain": "example.com",
    "stalwart_accounts": [{"email": "alice@example.com", "password": "Alice-password-0123"}],
    "stalwart_node_hostname": "node1.example.com",
    "stalwart_node_address": "127.0.0.1",  # normally from gathered facts
    "stalwart_cluster_members": ["localhost"],
    "stalwart_admin_networks": ["10.0.0.0/24"],
    "stalwart_db_host": "127.0.0.1",
    "mail_s3_endpoint": "https://s3.example.com:8333",
    "mail_s3_stalwart_bucket": "stalwart-blobs",
    "mail_s3_stalwart_access_key": "stalwart",
    "mail_kv_host": "kv.example.com",
})


def run(tmp_path, served, extra):
    url, sha = served.add("stalwart-x86_64-unknown-linux-gnu.tar.gz", b"not really a tarball")
    port = served.url.rsplit(":", 1)[1]  # something that answers TCP stands in for PostgreSQL's port
    variables = dict(GOOD, stalwart_artifact_url=url, stalwart_artifact_sha256=sha, stalwart_db_port=int(port),
                     stalwart_api_key_file=str(tmp_path / "api-key"),
                     stalwart_download_dir=str(tmp_path / "dl"), stalwart_install_dir=str(tmp_path / "opt"),
                     stalwart_config_dir=str(tmp_path / "etc"), stalwart_data_dir=str(tmp_path / "data"),
                     stalwart_log_dir=str(tmp_path / "log"), stalwart_binary=str(tmp_path / "bin" / "stalwart"),
                     mail_tls_lab_ca_dir=str(tmp_path / "ca"))
    variables.update(extra)
    rc, out = run_role("stalwart", tmp_path, variables)
    for secret in SECRETS.values():
        assert secret not in out
    return rc, out


def bad(defect_class, extra, needle):
    """A bad-input case of the issue-10 matrix (tests/roles/conftest.py prints it from the defect_class markers)."""
    return pytest.param(extra, needle, marks=pytest.mark.defect_class(defect_class))


K8S = {"mail_target": "kubernetes", "mail_k8s_mode": "render", "mail_render_dir": "/nonexistent",
       "mail_k8s_registry": "registry.example.internal/mail"}


@pytest.mark.parametrize("extra,needle", [
    # missing administrator secret or API key
    bad("required", {"stalwart_admin_password": ""}, "stalwart_admin_password are required"),
    bad("required", {"stalwart_recovery_admin_password": ""}, "stalwart_recovery_admin_password and stalwart_admin_password are required"),
    bad("ranges", {"stalwart_recovery_admin_password": "short"}, "stalwart_recovery_admin_password and stalwart_admin_password are required"),
    bad("injection", {"stalwart_recovery_admin_password": "recovery-password-for-tests-0123\nSTALWART_ROLE=x"},
        "stalwart_admin_password are required (from the vault, at least 12 characters, no control characters"),
    bad("required", {"stalwart_api_key_file": ""}, "set stalwart_api_key (from the vault"),
    bad("format", {"stalwart_api_key_file": "", "stalwart_api_key": "not-a-key"}, "set stalwart_api_key (from the vault"),
    # node count not 1 and not >= 3
    bad("ranges", {"stalwart_cluster_members": ["localhost", "other"]}, "stalwart_cluster_members gives 2 nodes"),
    bad("ranges", dict(K8S, stalwart_k8s_replicas=2), "stalwart_k8s_replicas gives 2 nodes"),
    # checksum missing or malformed (a mismatch: test_checksum_mismatch_installs_nothing)
    bad("required", {"stalwart_artifact_sha256": ""}, "stalwart_artifact_sha256 must be the 64-hex-digit"),
    bad("format", {"stalwart_artifact_sha256": "abc"}, "stalwart_artifact_sha256 must be the 64-hex-digit"),
    # host names that are not FQDNs
    bad("format", {"stalwart_hostname": "mail"}, "stalwart_hostname must be a fully qualified domain name"),
    bad("format", {"stalwart_hostname": "mail_server.example.com"}, "stalwart_hostname must be a fully qualified domain name"),
    bad("format", {"stalwart_default_domain": "localdomain"}, "stalwart_default_domain a domain name (got 'localdomain')"),
    bad("format", {"stalwart_node_hostname": "node1"}, "stalwart_node_hostname must be a FQDN"),
    # a listener port used twice, out of range, or an unknown protocol
    bad("broken-config", {"stalwart_listeners": {"smtp": {"protocol": "smtp", "port": 25, "tls_implicit": False},
                                                 "other": {"protocol": "smtp", "port": 25, "tls_implicit": False}}},
        "every listener needs its own port: stalwart_listeners and stalwart_management_port use 25, 25, 8080 (duplicates: [25])"),
    bad("broken-config", {"stalwart_management_port": 443},
        "every listener needs its own port: stalwart_listeners and stalwart_management_port"),
    bad("ranges", {"stalwart_listeners": {"smtp": {"protocol": "smtp", "port": 70000, "tls_implicit": False}}},
        "ports are 1-65535"),
    bad("format", {"stalwart_listeners": {"x": {"protocol": "gopher", "port": 70, "tls_implicit": False}}}, "protocols one of"),
    # versions outside the supported line
    bad("format", {"stalwart_version": "1.0.2"}, "stalwart-migrate"),
    bad("format", {"stalwart_version": "0.15.4"}, "is not a v0.16 release"),
    # the datastore (unreachable: test_unreachable_postgresql)
    bad("required", {"stalwart_db_host": ""}, "stalwart_db_host (got '')"),
    bad("required", {"stalwart_db_password": ""}, "stalwart_db_password (from"),
    bad("injection", {"stalwart_db_password": "db-password-for-tests-0123\nSTALWART_RECOVERY_MODE=1"}, "stalwart_db_password (from"),
    # the Redis-protocol store from the platform contract (mail_kv_*)
    bad("required", {"mail_kv_host": ""}, "stalwart_kv_host is required"),
    bad("format", {"mail_kv_host": "rediss://kv.example.com:6379"}, "mail_kv_host rediss://kv.example.com:6379 is not a host name"),
    bad("ranges", {"mail_kv_port": 70000}, "mail_kv_port 70000 is not a port 1-65535"),
    bad("ranges", {"stalwart_api_retries": 50}, "stalwart_api_retries must be 0-10 (got '50')"),
    bad("ranges", {"stalwart_api_retries": -1}, "stalwart_api_retries must be 0-10 (got '-1')"),
    bad("injection", {"mail_kv_password": "kv-password-for-tests-0123\r\nFLUSHALL"},
        "mail_kv_password must be a string without control characters"),
    bad("required", {"mail_s3_stalwart_bucket": ""}, "stalwart_s3_bucket"),
    bad("required", {"stalwart_metrics_password": ""}, "stalwart_metrics_password"),
    # mail data and Enterprise gates
    bad("format", {"stalwart_accounts": [{"email": "bob@elsewhere.example", "password": "x"}]},
        "must be local@domain in a declared domain"),
    bad("required", {"stalwart_ai_models": [{"name": "m", "url": "https://llm.example.com/v1", "model": "x"}]},
        "Enterprise-only in Stalwart v0.16"),
    # firewall sources
    bad("firewall", {"stalwart_admin_networks": []}, "stalwart_admin_networks must list"),
    bad("firewall", {"stalwart_mail_sources": ["everyone"]}, "stalwart_mail_sources must list"),
    bad("firewall", {"stalwart_admin_networks": ["10.0.0.0/33"]}, "stalwart_admin_networks must list"),
    # TLS material
    bad("broken-config", {"stalwart_tls_cert": "/etc/ssl/mail.crt", "stalwart_tls_key": "/etc/ssl/mail.key"},
        "stalwart_tls_cert and stalwart_tls_key must both hold PEM"),
    # Kubernetes
    bad("format", dict(K8S, stalwart_k8s_image="stalwartlabs/stalwart:latest"), "stalwart_k8s_image pinned to an exact"),
])
def test_invalid_input_fails_first(tmp_path, served, extra, needle):
    rc, out = run(tmp_path, served, extra)
    assert rc != 0 and needle in out, out[-3000:]
    for name in ("opt", "dl", "etc", "data", "bin"):
        assert not (tmp_path / name).exists(), name


@pytest.mark.defect_class("broken-config")
def test_unreachable_postgresql(tmp_path, served):
    rc, out = run(tmp_path, served, {"stalwart_db_port": 1})
    assert rc != 0 and "PostgreSQL at stalwart_db_host 127.0.0.1 port stalwart_db_port 1 is not reachable" in out, out[-3000:]
    assert not (tmp_path / "dl").exists()


@pytest.mark.defect_class("state")
def test_checksum_mismatch_installs_nothing(tmp_path, served):
    rc, out = run(tmp_path, served, {"stalwart_artifact_sha256": "0" * 64})
    assert rc != 0 and "did not match the pinned stalwart_artifact_sha256" in out, out[-3000:]
    assert not list((tmp_path / "dl").glob("*.tar.gz"))
    assert not (tmp_path / "opt").exists() and not (tmp_path / "etc").exists()


def test_kubernetes_render_is_stable_and_valid(tmp_path):
    """The Kubernetes tree and the GitOps plan render without facts or a cluster; a second render changes nothing,
    byte for byte; the tree passes the offline validator; no secret lands outside a Secret."""
    out = tmp_path / "rendered"
    variables = dict(GOOD, mail_target="kubernetes", mail_k8s_mode="render", mail_k8s_registry=K8S["mail_k8s_registry"], mail_render_dir=str(out),
                     mail_tls_lab_ca_dir=str(tmp_path / "ca"), stalwart_api_key_file=str(tmp_path / "api-key"))
    rc, log = run_role("stalwart", tmp_path, variables)
    assert rc == 0, log[-3000:]
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert "stalwart/statefulset-stalwart.yaml" in files and "stalwart/poddisruptionbudget-stalwart.yaml" in files
    assert "stalwart/configmap-stalwart-config.yaml" in files and "stalwart/service-stalwart-cluster.yaml" in files
    plan = tmp_path / "stalwart-plan.ndjson"
    assert oct(plan.stat().st_mode & 0o777) == "0o600"
    ops = [json.loads(line) for line in plan.read_text().splitlines()]
    assert {op["object"] for op in ops} >= {"Domain", "NetworkListener", "Account", "SystemSettings", "BlobStore",
                                            "InMemoryStore", "Coordinator", "MtaSts", "Metrics", "Certificate"}
    configmap = (out / "stalwart/configmap-stalwart-config.yaml").read_text()
    for secret in SECRETS.values():
        assert secret not in configmap
        assert secret not in (out / "stalwart/statefulset-stalwart.yaml").read_text()
    sts = (out / "stalwart/statefulset-stalwart.yaml").read_text()
    assert "stalwartlabs/stalwart:v0.16.18" in sts and "NET_BIND_SERVICE" in sts and "/healthz/ready" in sts
    report = validate_dir(with_prerequisites(out, tmp_path / "full"))
    assert report.ok, report.format()
    first = {f: (out / f).read_bytes() for f in files}
    first_plan = plan.read_bytes()
    rc, log = run_role("stalwart", tmp_path, variables)
    assert rc == 0 and "changed=0" in log, log[-3000:]
    assert {f: (out / f).read_bytes() for f in files} == first
    assert plan.read_bytes() == first_plan


def with_prerequisites(rendered, dest):
    """A copy of the rendered tree plus what talentmesh.mail.k8s_prerequisites renders for the namespace (the
    Namespace with Pod Security restricted and the default-deny NetworkPolicy), as a full deploy has it."""
    shutil.copytree(rendered, dest)
    prereq = dest / "prerequisites"
    prereq.mkdir()
    meta = {"namespace": "mail", "labels": {"app.kubernetes.io/part-of": "talentmesh-mail",
                                            "app.kubernetes.io/managed-by": "talentmesh.mail"}}
    (prereq / "namespace-mail.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "mail", "labels": dict(meta["labels"], **{"pod-security.kubernetes.io/enforce": "restricted"})}}))
    (prereq / "networkpolicy-default-deny.yaml").write_text(yaml.safe_dump({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": dict(meta, name="default-deny"),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}))
    (prereq / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["namespace-mail.yaml", "networkpolicy-default-deny.yaml"]}))
    top = yaml.safe_load((dest / "kustomization.yaml").read_text())
    top["resources"] = sorted(set(top["resources"]) | {"prerequisites"})
    (dest / "kustomization.yaml").write_text(yaml.safe_dump(top))
    return str(dest)


@pytest.mark.parametrize("backend,labels", [("dragonfly", {"app": "dragonfly"}),
                                            ("valkey", {"app.kubernetes.io/name": "valkey"})])
def test_kubernetes_egress_follows_the_kv_backend(tmp_path, backend, labels):
    """The egress policy lets the pods reach the Redis-protocol store that mail_kv_backend deploys, on mail_kv_port,
    under the labels talentmesh.mail.dragonfly (the operator's app: <name>) or talentmesh.mail.valkey give its pods."""
    out = tmp_path / "rendered"
    variables = dict(GOOD, mail_target="kubernetes", mail_k8s_mode="render", mail_k8s_registry=K8S["mail_k8s_registry"], mail_render_dir=str(out),
                     mail_kv_backend=backend, mail_kv_port=6380, mail_tls_lab_ca_dir=str(tmp_path / "ca"),
                     stalwart_api_key_file=str(tmp_path / "api-key"))
    rc, log = run_role("stalwart", tmp_path, variables)
    assert rc == 0, log[-3000:]
    policy = yaml.safe_load((out / "stalwart/networkpolicy-stalwart.yaml").read_text())
    egress = [rule for rule in policy["spec"]["egress"]
              if any(peer.get("podSelector", {}).get("matchLabels") == labels for peer in rule.get("to", []))]
    assert egress and {"port": 6380, "protocol": "TCP"} in egress[0]["ports"], policy["spec"]["egress"]
