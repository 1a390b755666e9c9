"""Bad input to the roundcube role fails before anything is installed, with a message naming the variable; the
Kubernetes tree renders stably and passes the offline validator. ansible-playbook against localhost, no containers."""
import base64
import re

import pytest
import yaml

from tests.roles.harness import case, run_role

DES_KEY = "rc-des 'k\\y' $(x) `z`-01"          # 24 characters: quote, backslash, dollar, spaces, backticks, $( )
DB_PASSWORD = "rc-db 'pa\\ss' $HOME `id` $(id) 0123"
GOOD = {
    "roundcube_server_name": "webmail.example.com",
    "roundcube_des_key": DES_KEY,
    "roundcube_db_password": DB_PASSWORD,
    "roundcube_db_host": "db1.example.com",
    "roundcube_mail_hosts": ["mail.example.com"],
}


def run(tmp_path, extra, check=False):
    variables = dict(GOOD, mail_tls_lab_ca_dir=str(tmp_path / "ca"),
                     roundcube_download_dir=str(tmp_path / "dl"), roundcube_install_dir=str(tmp_path / "opt"))
    variables.update(extra)
    rc, out = run_role("roundcube", tmp_path, variables, check=check)
    for secret in (variables["roundcube_des_key"], variables["roundcube_db_password"]):
        assert len(secret) < 8 or secret not in out
    return rc, out


K8S = {"roundcube_target": "kubernetes", "mail_k8s_mode": "render", "mail_render_dir": "/nonexistent",
       "mail_k8s_registry": "registry.example.internal/mail"}


OAUTH_PLAIN_HTTP = {"roundcube_oauth_provider": "generic", "roundcube_oauth_client_id": "rc",
                    "roundcube_oauth_client_secret": "s3cret", "roundcube_oauth_auth_uri": "http://idp/auth",
                    "roundcube_oauth_token_uri": "https://idp/token", "roundcube_oauth_identity_uri": "https://idp/userinfo"}


@pytest.mark.parametrize("extra,needle", [
    case("required", {"roundcube_des_key": ""}, "roundcube_des_key must be exactly 24 characters"),
    case("format", {"roundcube_des_key": DES_KEY[:-1]}, "roundcube_des_key must be exactly 24 characters"),
    case("injection", {"roundcube_des_key": DES_KEY[:-1] + "\n"}, "roundcube_des_key must be exactly 24 characters"),
    case("required", {"roundcube_db_password": ""}, "roundcube_db_password is missing"),
    case("injection", {"roundcube_db_password": DB_PASSWORD + "\n$config['x']=1;"}, "roundcube_db_password is missing"),
    case("required", {"roundcube_server_name": ""}, "roundcube_server_name must be the public host name"),
    case("required", {"roundcube_mail_hosts": []}, "roundcube_mail_hosts must list"),
    case("format", {"roundcube_mail_hosts": ["mail example"]}, "roundcube_mail_hosts must list"),
    case("required", {"roundcube_db_host": ""}, "roundcube_db_host must be the PostgreSQL host name"),
    case("format", {"roundcube_db_sslmode": "require"}, "roundcube_db_sslmode"),
    case("ranges", {"roundcube_imap_port": 70000}, "roundcube_imap_port, roundcube_smtp_port"),
    case("firewall", {"roundcube_https_port": 0}, "roundcube_https_port must be ports 1-65535"),
    case("ranges", {"roundcube_max_upload_mb": 0}, "roundcube_max_upload_mb must be 1-2048"),
    case("format", {"roundcube_trusted_proxies": ["10.0.0.1/33"]}, "roundcube_trusted_proxies must list"),
    case("firewall", {"roundcube_allowed_sources": ["10.0.0.1/33"]}, "roundcube_allowed_sources must list"),
    case("firewall", {"roundcube_allowed_sources": ["proxy.example.com"]}, "roundcube_allowed_sources must list"),
    case("injection", {"roundcube_csp": "default-src 'self'\nX-Injected: 1"}, "roundcube_csp may hold no control characters"),
    case("injection", {"roundcube_extra_config": {"product_name": "a\nb"}}, "roundcube_extra_config values may hold no control"),
    case("required", {"roundcube_oauth_provider": "generic"}, "roundcube_oauth_client_id, roundcube_oauth_client_secret"),
    case("format", OAUTH_PLAIN_HTTP, "https:// roundcube_oauth_auth_uri"),
    case("broken-config", {"roundcube_tls_cert": "/etc/ssl/webmail.crt", "roundcube_tls_key": "/etc/ssl/webmail.key"},
         "roundcube_tls_cert and roundcube_tls_key must both hold PEM"),
    case("format", {"roundcube_install_method": "artifact", "roundcube_artifact_sha256": "abc"},
         "roundcube_artifact_sha256 must be the 64-hex-digit"),
    case("format", dict(K8S, roundcube_k8s_image="roundcube/roundcubemail:latest"), "roundcube_k8s_nginx_image pinned"),
    case("format", dict(K8S, roundcube_k8s_nginx_image="nginx"), "roundcube_k8s_nginx_image pinned"),
    case("format", dict(K8S, roundcube_k8s_name="Roundcube"), "roundcube_k8s_name must be a DNS label"),
    case("injection", dict(K8S), "may not contain ' or"),
])
def test_invalid_input_fails_first(tmp_path, extra, needle):
    rc, out = run(tmp_path, extra)
    assert rc != 0 and needle in out, out[-3000:]
    assert not (tmp_path / "opt").exists() and not (tmp_path / "dl").exists()


@pytest.mark.defect_class("state")
def test_unreachable_artifact_url(tmp_path, served):
    rc, out = run(tmp_path, {"roundcube_install_method": "artifact", "roundcube_artifact_sha256": "0" * 64,
                             "roundcube_artifact_url": served.url + "/missing.tar.gz"})
    assert rc != 0 and "roundcube_artifact_url" in out and "is not reachable" in out, out[-3000:]
    assert not (tmp_path / "dl").exists()


@pytest.mark.defect_class("state")
def test_local_artifact_checksum_mismatch(tmp_path, served):
    served.add("roundcube.tar.gz", b"not the release")
    rc, out = run(tmp_path, {"roundcube_install_method": "artifact", "roundcube_artifact_sha256": "1" * 64,
                             "roundcube_artifact_path": served.path("roundcube.tar.gz")})
    assert rc != 0 and "roundcube_artifact_path" in out and "nothing was installed" in out, out[-3000:]


def php_single_quoted(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def test_kubernetes_render_is_stable_and_valid(tmp_path):
    """The Kubernetes tree renders without facts or a cluster, passes the offline validator, keeps every secret in a
    Secret (0600), and a second render changes nothing, byte for byte."""
    from tests.kubernetes.validate import validate_dir

    out = tmp_path / "rendered"
    des_key, db_password = "k8s-des-key $(x) `y` 012", "k8s db $x `y` $(z) p@ss/w:rd"
    variables = {"mail_target": "kubernetes", "mail_k8s_mode": "render", "mail_k8s_registry": K8S["mail_k8s_registry"], "mail_render_dir": str(out),
                 "roundcube_des_key": des_key, "roundcube_db_password": db_password, "roundcube_db_host": "",
                 "roundcube_k8s_db_objects": True, "roundcube_oauth_provider": "generic",
                 "roundcube_oauth_client_id": "webmail", "roundcube_oauth_client_secret": "oidc-secret-0123456789",
                 "roundcube_oauth_auth_uri": "https://idp.example.com/auth",
                 "roundcube_oauth_token_uri": "https://idp.example.com/token",
                 "roundcube_oauth_identity_uri": "https://idp.example.com/userinfo"}
    rc, log = run(tmp_path, variables)
    assert rc == 0, log[-3000:]
    assert "oidc-secret-0123456789" not in log
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert files == ["kustomization.yaml", "roundcube/configmap-roundcube-ca.yaml",
                     "roundcube/configmap-roundcube-nginx.yaml", "roundcube/database-postgresql-roundcube.yaml",
                     "roundcube/databaserole-postgresql-roundcube.yaml", "roundcube/deployment-roundcube.yaml",
                     "roundcube/ingress-roundcube.yaml", "roundcube/kustomization.yaml",
                     "roundcube/networkpolicy-roundcube.yaml", "roundcube/poddisruptionbudget-roundcube.yaml",
                     "roundcube/secret-postgresql-roundcube-credentials.yaml", "roundcube/secret-roundcube-tls.yaml",
                     "roundcube/secret-roundcube.yaml", "roundcube/service-roundcube.yaml"]
    for f in files:
        mode = (out / f).stat().st_mode & 0o777
        assert mode == (0o600 if "/secret-" in f else 0o644), f
        text = (out / f).read_text()
        if "/secret-" not in f:
            for secret in (des_key, db_password, "oidc-secret-0123456789"):
                assert secret not in text, f

    # The namespace, its Pod Security labels and the default-deny policy come from k8s_prerequisites.
    report = validate_dir(str(out), external_namespaces=("mail",))
    findings = [x for x in report.findings if "default-deny" not in str(x)]
    assert not findings, report.format()

    deployment = yaml.safe_load((out / "roundcube/deployment-roundcube.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["ROUNDCUBEMAIL_DEFAULT_HOST"]["value"] == "ssl://mail.example.com"
    assert env["ROUNDCUBEMAIL_SMTP_SERVER"]["value"] == "tls://mail.example.com"
    assert env["ROUNDCUBEMAIL_DES_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "ROUNDCUBEMAIL_DES_KEY"
    assert deployment["spec"]["replicas"] == 2
    assert all(c["securityContext"]["readOnlyRootFilesystem"] for c in pod["containers"])
    assert not any(c["image"].endswith(":latest") for c in pod["containers"])

    secret = yaml.safe_load((out / "roundcube/secret-roundcube.yaml").read_text())
    php = base64.b64decode(secret["data"]["zz-talentmesh.php"]).decode()
    assert "$config['des_key'] = %s;" % php_single_quoted(des_key) in php
    dsn = re.search(r"\$config\['db_dsnw'\] = '([^']*)';", php).group(1)
    assert dsn.startswith("pgsql://roundcube:k8s%20db%20%24x%20%60y%60%20%24%28z%29%20p%40ss%2Fw%3Ard@postgresql-rw.mail.svc")
    assert "sslmode=verify-full" in dsn
    assert "$config['oauth_client_secret'] = 'oidc-secret-0123456789';" in php

    first = {f: (out / f).read_bytes() for f in files}
    rc, log = run(tmp_path, variables)
    assert rc == 0 and "changed=0" in log, log[-3000:]
    assert {f: (out / f).read_bytes() for f in files} == first
