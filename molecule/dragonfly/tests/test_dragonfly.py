"""Verify the dragonfly role with REAL clients. The server is the STAND-IN artifact (Dragonfly's command line over
Debian's redis-server), not Dragonfly: protocol, password, TLS, bind and firewall are real; Dragonfly itself is not."""
import os
import sys

import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from hostcheck import exposure  # noqa: E402  pylint: disable=wrong-import-position
from kvclient import can_connect, install_ca, redis_tls, server_ip  # noqa: E402  pylint: disable=wrong-import-position

RELEASE = os.environ.get("MOLECULE_DEBIAN", "12")
CLIENT = testinfra.get_host("podman://tm-dragonfly-client-d%s" % RELEASE)
OTHER = testinfra.get_host("podman://tm-dragonfly-other-d%s" % RELEASE)
PASSWORD = "molecule-dragonfly-pass-0123456789"
CA = "/tmp/dragonfly-ca.crt"


def _install_ca(host, client):
    return install_ca(host, client, "/etc/dragonfly/tls/ca.crt", CA)


def _redis(client, ip, code, password=PASSWORD):
    return redis_tls(client, ip, password, CA, code)


def test_service_runs_unprivileged(host):
    svc = host.service("dragonfly")
    assert svc.is_running and svc.is_enabled
    user = host.check_output("systemctl show -p User --value dragonfly")
    assert user == "dragonfly"
    assert host.file("/usr/local/bin/dragonfly").is_symlink


def test_flagfile_is_private(host):
    flagfile = host.file("/etc/dragonfly/dragonfly.conf")
    assert flagfile.mode == 0o600 and flagfile.user == "dragonfly"
    assert "--requirepass=" in flagfile.content_string
    assert host.file("/etc/dragonfly/tls/server.key").mode == 0o600


def test_set_get_over_tls_with_password(host):
    _install_ca(host, CLIENT)
    result = _redis(CLIENT, server_ip(host), "r.set('k','v'); print(r.get('k').decode())")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "v"


def test_refused_without_password(host):
    _install_ca(host, CLIENT)
    result = _redis(CLIENT, server_ip(host), "r.ping()", password=None)
    assert result.rc != 0
    assert "Authentication required" in result.stderr or "NOAUTH" in result.stderr


def test_plaintext_is_not_served(host):
    result = CLIENT.run("redis-cli -h %s -p 6379 -a %s --no-auth-warning ping" % (server_ip(host), PASSWORD))
    assert "PONG" not in result.stdout


def test_non_allowed_host_cannot_connect(host):
    assert can_connect(CLIENT, server_ip(host))
    assert not can_connect(OTHER, server_ip(host))


def test_firewall_dropin(host):
    rules = host.check_output("nft list table inet talentmesh")
    assert 'comment "dragonfly"' in rules and "6379" in rules


def test_redis_cli_over_tls(host):
    _install_ca(host, CLIENT)
    cli = "redis-cli --tls --cacert /tmp/dragonfly-ca.crt -h %s -p 6379 --no-auth-warning" % server_ip(host)
    assert CLIENT.check_output("%s -a %s SET cli-key cli-value" % (cli, PASSWORD)) == "OK"
    assert CLIENT.check_output("%s -a %s GET cli-key" % (cli, PASSWORD)) == "cli-value"
    assert "NOAUTH" in CLIENT.run("%s GET cli-key" % cli).stdout
    wrong = CLIENT.run("%s -a wrong-password-0000 GET cli-key" % cli)
    assert "WRONGPASS" in wrong.stdout + wrong.stderr and "cli-value" not in wrong.stdout


def test_systemd_sandbox_score(host):
    score, out = exposure(host, "dragonfly.service")
    assert score <= 2.5, out
