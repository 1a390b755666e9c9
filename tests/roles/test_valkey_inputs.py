"""Bad input to the valkey role fails before anything is installed, with a message naming the variable; the
Kubernetes render is complete and byte-identical on a second run. Runs ansible-playbook against localhost with
throwaway directories; no containers."""
import base64
import pathlib

import pytest
import yaml

from tests.roles.harness import case, mismatched_tls, run_role

PASSWORD = 'a-long-enough "test" pass\\word'
GOOD = {
    "valkey_requirepass": PASSWORD,
    "valkey_allowed_hosts": ["10.0.0.5", "2001:db8::/64"],
    "valkey_maxmemory": "1G",
    "valkey_bind_address": "127.0.0.1",  # normally from gathered facts
}


def run(tmp_path, extra):
    variables = dict(GOOD, valkey_config_dir=str(tmp_path / "etc"), valkey_data_dir=str(tmp_path / "data"),
                     mail_tls_lab_ca_dir=str(tmp_path / "ca"))
    variables.update(extra)
    rc, out = run_role("valkey", tmp_path, variables, check=True)
    assert PASSWORD not in out
    return rc, out


K8S = {"mail_target": "kubernetes", "mail_k8s_mode": "render",
       "mail_k8s_registry": "registry.example.internal/mail"}


CERT, OTHER_KEY = mismatched_tls()


@pytest.mark.parametrize("extra,needle", [
    case("required", {"valkey_requirepass": ""}, "valkey_requirepass is missing"),
    case("format", {"valkey_requirepass": "short-pass"}, "valkey_requirepass is missing, shorter than 16"),
    case("injection", {"valkey_requirepass": PASSWORD + "\nrequirepass x"}, "contains a control character"),
    case("injection", {"valkey_requirepass": PASSWORD + "\x7f"}, "contains a control character"),
    case("firewall", {"valkey_allowed_hosts": []}, "valkey_allowed_hosts must list"),
    case("firewall", {"valkey_allowed_hosts": ["10.0.0.1/33"]}, "valkey_allowed_hosts must list"),
    case("firewall", {"valkey_allowed_hosts": ["2001:db8::/129"]}, "valkey_allowed_hosts must list"),
    case("firewall", {"valkey_allowed_hosts": ["kv.example.com"]}, "valkey_allowed_hosts must list"),
    case("firewall", {"valkey_port": 70000}, "valkey_port 1-65535"),
    case("firewall", {"valkey_port": 0}, "valkey_port 1-65535"),
    case("format", {"valkey_maxmemory": "lots"}, "valkey_maxmemory 'lots' must be 0"),
    case("ranges", {"valkey_maxmemory": "1M"}, "valkey_maxmemory '1M' must be 0"),
    case("ranges", {"valkey_maxmemory": "1.5G"}, "valkey_maxmemory '1.5G' must be 0"),
    case("format", {"valkey_maxmemory_policy": "lru"}, "valkey_maxmemory_policy"),
    case("format", {"valkey_save": ["every hour"]}, "valkey_save entries must be"),
    case("format", {"valkey_dbfilename": "../../etc/dump.rdb"}, "valkey_dbfilename a plain file name"),
    case("injection", {"valkey_extra_config": {"hz": "10\nrequirepass x"}}, "valkey_extra_config keys"),
    case("injection", {"valkey_extra_config": {"hz 10\nrequirepass": "x"}}, "valkey_extra_config keys"),
    case("broken-config", {"valkey_tls_cert": "/etc/ssl/server.crt", "valkey_tls_key": "/etc/ssl/server.key"},
         "valkey_tls_cert and valkey_tls_key must both hold PEM"),
    case("broken-config", {"valkey_tls_cert": CERT, "valkey_tls_key": OTHER_KEY},
         "valkey_tls_key does not belong to valkey_tls_cert"),
    case("required", {"mail_tls_source": "inventory"}, "valkey_tls_cert and valkey_tls_key must both hold PEM"),
    case("format", {"mail_kv_backend": "redis"}, "mail_kv_backend"),
    case("required", dict(K8S), "mail_render_dir is required"),
    case("format", dict(K8S, valkey_k8s_image="valkey/valkey:latest"), "valkey_k8s_image pinned"),
    case("format", dict(K8S, valkey_k8s_image="valkey/valkey"), "valkey_k8s_image pinned"),
    case("ranges", dict(K8S, valkey_k8s_replicas=0), "valkey_k8s_replicas at least 1"),
    case("format", dict(K8S, valkey_k8s_storage_size="lots"), "valkey_k8s_storage_size a quantity"),
    case("format", dict(K8S, valkey_k8s_storage_class="Fast_SSD"), "valkey_k8s_storage_class"),
    case("format", dict(K8S, valkey_k8s_name="Valkey"), "valkey_k8s_name must be a DNS label"),
])
def test_invalid_input_fails_first(tmp_path, extra, needle):
    if "mail_k8s_mode" in extra and "mail_render_dir" not in extra and needle != "mail_render_dir is required":
        extra = dict(extra, mail_render_dir=str(tmp_path / "rendered"))
    rc, out = run(tmp_path, extra)
    assert rc != 0 and needle in out, out[-3000:]
    assert not (tmp_path / "etc").exists() and not (tmp_path / "rendered").exists()


@pytest.mark.defect_class("broken-config")  # valkey-server does not exist on Debian 12: refused, not half-installed
@pytest.mark.skipif(not pathlib.Path("/etc/debian_version").read_text().startswith("12"),
                    reason="the controller is not Debian 12")
def test_debian_12_is_refused_with_a_clear_message(tmp_path):
    rc, out = run(tmp_path, {})
    assert rc != 0 and "valkey: bare metal needs Debian 13 (trixie)" in out, out[-3000:]
    assert "mail_kv_backend: dragonfly" in out
    assert not (tmp_path / "etc").exists()


def _render(tmp_path, extra=None):
    variables = dict(GOOD, mail_render_dir=str(tmp_path / "rendered"), mail_tls_lab_ca_dir=str(tmp_path / "ca"), **K8S)
    variables.update(extra or {})
    return run_role("valkey", tmp_path, variables)


def _docs(directory):
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))}


@pytest.mark.defect_class("injection")  # works end to end: a password with " and \ quoted in valkey.conf
def test_render_is_complete_and_byte_identical(tmp_path):
    rc, out = _render(tmp_path)
    assert rc == 0, out[-3000:]
    assert PASSWORD not in out
    rendered = tmp_path / "rendered" / "valkey"
    docs = _docs(rendered)
    assert set(docs) == {"kustomization.yaml", "secret-valkey-config.yaml", "secret-valkey-tls.yaml",
                         "service-valkey.yaml", "service-valkey-headless.yaml", "statefulset-valkey.yaml",
                         "networkpolicy-valkey.yaml"}
    assert not list(rendered.glob("poddisruptionbudget-*")), "one replica needs no PDB"
    sts = docs["statefulset-valkey.yaml"]
    pod = sts["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example.internal/mail/valkey/valkey:8.1.4"
    assert pod["securityContext"]["runAsUser"] == 999 and container["securityContext"]["readOnlyRootFilesystem"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert set(container["resources"]) == {"requests", "limits"}
    assert {v["name"] for v in pod["volumes"]} == {"config", "tls", "tmp"}
    assert "storageClassName" not in sts["spec"]["volumeClaimTemplates"][0]["spec"]
    conf = base64.b64decode(docs["secret-valkey-config.yaml"]["data"]["valkey.conf"]).decode()
    assert 'requirepass "a-long-enough \\"test\\" pass\\\\word"' in conf
    assert "\nport 0\n" in conf and "\ntls-port 6379\n" in conf
    assert '\ntls-protocols "TLSv1.2 TLSv1.3"\n' in conf and "\nmaxmemory 1gb\n" in conf
    assert "\nsave 3600 1 300 100 60 10000\n" in conf
    assert "ConfigMap" not in "".join(p.read_text() for p in rendered.glob("*.yaml"))
    before = {p.name: p.read_bytes() for p in rendered.iterdir()}
    rc, out = _render(tmp_path)
    assert rc == 0, out[-3000:]
    assert "changed=0" in out, out[-3000:]
    assert {p.name: p.read_bytes() for p in rendered.iterdir()} == before


def test_render_replicated_with_storage_class(tmp_path):
    rc, out = _render(tmp_path, {"valkey_k8s_replicas": 3, "mail_k8s_storage_class": "fast-ssd"})
    assert rc == 0, out[-3000:]
    docs = _docs(tmp_path / "rendered" / "valkey")
    assert docs["poddisruptionbudget-valkey.yaml"]["spec"]["maxUnavailable"] == 1
    sts = docs["statefulset-valkey.yaml"]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast-ssd"
    assert "--replicaof valkey-0.valkey-headless.mail.svc 6379" in sts["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert docs["service-valkey.yaml"]["spec"]["selector"]["statefulset.kubernetes.io/pod-name"] == "valkey-0"
