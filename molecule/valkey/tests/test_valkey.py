"""Verify the valkey role with REAL clients against Debian 13's REAL valkey-server: valkey-cli and python3-redis
over TLS with the lab CA and the password; refused without it, from a host outside the allow-list, and on plaintext."""
import os
import re
import shlex
import sys

import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from hostcheck import exposure  # noqa: E402  pylint: disable=wrong-import-position
from kvclient import can_connect, install_ca, redis_tls, server_ip  # noqa: E402  pylint: disable=wrong-import-position

CLIENT = testinfra.get_host("podman://tm-valkey-client-d13")
OTHER = testinfra.get_host("podman://tm-valkey-other-d13")
# Holds a double quote and a backslash: proves valkey.conf's quoting end to end.
PASSWORD = 'molecule-valkey-"pass"\\0123456789'
CA = "/tmp/valkey-ca.crt"


def _install_ca(host, client):
    return install_ca(host, client, "/etc/valkey/tls/ca.crt", CA)


def _cli(host, client, args, password=PASSWORD, tls=True):
    auth = "REDISCLI_AUTH=%s " % shlex.quote(password) if password else ""
    opts = "--tls --cacert %s " % _install_ca(host, client) if tls else ""
    return client.run("%stimeout 10 valkey-cli %s-h %s -p 6379 --no-auth-warning %s"
                      % (auth, opts, server_ip(host), args))


def test_service_runs_unprivileged(host):
    svc = host.service("valkey-server")
    assert svc.is_running and svc.is_enabled
    assert host.check_output("systemctl show -p User --value valkey-server") == "valkey"
    assert host.package("valkey-server").is_installed


def test_config_is_private_and_quoted(host):
    conf = host.file("/etc/valkey/valkey.conf")
    assert conf.mode == 0o640 and conf.user == "root" and conf.group == "valkey"
    text = host.check_output("cat /etc/valkey/valkey.conf")
    assert 'requirepass "molecule-valkey-\\"pass\\"\\\\0123456789"' in text
    assert re.search(r"^port 0$", text, re.M) and re.search(r"^tls-port 6379$", text, re.M)
    assert host.file("/etc/valkey/tls/server.key").mode == 0o600


def test_set_get_over_tls_with_password(host):
    assert _cli(host, CLIENT, "SET cli-key cli-value").stdout.strip() == "OK"
    assert _cli(host, CLIENT, "GET cli-key").stdout.strip() == "cli-value"


def test_python_client_over_tls(host):
    _install_ca(host, CLIENT)
    result = redis_tls(CLIENT, server_ip(host), PASSWORD, CA, "r.set('py', 'v'); print(r.get('py').decode())")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "v"


def test_refused_without_or_with_wrong_password(host):
    assert "NOAUTH" in _cli(host, CLIENT, "GET cli-key", password=None).stdout
    wrong = _cli(host, CLIENT, "GET cli-key", password="wrong-password-0000")
    assert "WRONGPASS" in wrong.stdout + wrong.stderr and "cli-value" not in wrong.stdout


def _handshake(host, options):
    _install_ca(host, CLIENT)
    return CLIENT.run("timeout 10 openssl s_client -connect %s:6379 -CAfile /tmp/valkey-ca.crt -verify_return_error %s"
                      " </dev/null" % (server_ip(host), options))


def test_tls_versions_and_aead_ciphers(host):
    modern = _handshake(host, "-tls1_3")
    assert modern.rc == 0 and "Verify return code: 0 (ok)" in modern.stdout, modern.stdout + modern.stderr
    tls12 = _handshake(host, "-tls1_2")
    assert tls12.rc == 0 and re.search(r"Cipher is ECDHE-\S+-(GCM|CHACHA20-POLY1305)", tls12.stdout), tls12.stdout
    assert _handshake(host, "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256").rc != 0  # CBC refused
    assert _handshake(host, "-tls1_1 -cipher DEFAULT@SECLEVEL=0").rc != 0


def test_plaintext_is_not_served(host):
    result = _cli(host, CLIENT, "PING", tls=False)
    assert "PONG" not in result.stdout
    listeners = host.check_output("ss -ltnH")
    assert ":6379" in listeners and len(re.findall(r":6379\b", listeners)) == 1


def test_non_allowed_host_cannot_connect(host):
    assert can_connect(CLIENT, server_ip(host))
    assert not can_connect(OTHER, server_ip(host))
    assert "PONG" not in _cli(host, OTHER, "PING").stdout


def test_firewall_dropin(host):
    rules = host.check_output("nft list table inet talentmesh")
    assert 'comment "valkey"' in rules and "6379" in rules


def test_persistence_settings(host):
    out = _cli(host, CLIENT, "CONFIG GET appendonly").stdout.split()
    assert out == ["appendonly", "yes"]
    assert _cli(host, CLIENT, "CONFIG GET maxmemory").stdout.split() == ["maxmemory", str(256 * 1024 * 1024)]


def test_systemd_sandbox_score(host):
    assert host.file("/etc/systemd/system/valkey-server.service.d/10-talentmesh-hardening.conf").exists
    score, out = exposure(host, "valkey-server.service")
    assert score <= 2.0, out
