"""Verify the dragonfly role with REAL clients. The server is the STAND-IN artifact (Dragonfly's command line over
Debian's redis-server), not Dragonfly: protocol, password, TLS, bind and firewall are real; Dragonfly itself is not."""
import os
import re

import testinfra

RELEASE = os.environ.get("MOLECULE_DEBIAN", "12")
CLIENT = testinfra.get_host("podman://tm-dragonfly-client-d%s" % RELEASE)
OTHER = testinfra.get_host("podman://tm-dragonfly-other-d%s" % RELEASE)
PASSWORD = "molecule-dragonfly-pass-0123456789"


def _server_ip(host):
    return host.check_output("hostname -I").split()[0]


def _install_ca(host, client):
    ca = host.file("/etc/dragonfly/tls/ca.crt").content_string
    client.run("cat > /tmp/dragonfly-ca.crt <<'EOF'\n%sEOF" % ca)
    return "/tmp/dragonfly-ca.crt"


def _redis(client, ip, code, password=PASSWORD):
    script = (
        "import redis,sys\n"
        "r = redis.Redis(host='%s', port=6379, password=%r, ssl=True, ssl_ca_certs='/tmp/dragonfly-ca.crt',"
        " socket_timeout=3, socket_connect_timeout=3)\n%s\n" % (ip, password, code)
    )
    return client.run("python3 -c \"$(cat <<'PY'\n%s\nPY\n)\"" % script)


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
    result = _redis(CLIENT, _server_ip(host), "r.set('k','v'); print(r.get('k').decode())")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "v"


def test_refused_without_password(host):
    _install_ca(host, CLIENT)
    result = _redis(CLIENT, _server_ip(host), "r.ping()", password=None)
    assert result.rc != 0
    assert "Authentication required" in result.stderr or "NOAUTH" in result.stderr


def test_plaintext_is_not_served(host):
    result = CLIENT.run("redis-cli -h %s -p 6379 -a %s --no-auth-warning ping" % (_server_ip(host), PASSWORD))
    assert "PONG" not in result.stdout


def test_non_allowed_host_cannot_connect(host):
    code = "import socket,sys; s=socket.socket(); s.settimeout(3); sys.exit(s.connect_ex(('%s', 6379)))" % _server_ip(host)
    assert CLIENT.run("python3 -c \"%s\"" % code).rc == 0
    assert OTHER.run("python3 -c \"%s\"" % code).rc != 0


def test_firewall_dropin(host):
    rules = host.check_output("nft list table inet talentmesh")
    assert 'comment "dragonfly"' in rules and "6379" in rules


def test_redis_cli_over_tls(host):
    _install_ca(host, CLIENT)
    cli = "redis-cli --tls --cacert /tmp/dragonfly-ca.crt -h %s -p 6379 --no-auth-warning" % _server_ip(host)
    assert CLIENT.check_output("%s -a %s SET cli-key cli-value" % (cli, PASSWORD)) == "OK"
    assert CLIENT.check_output("%s -a %s GET cli-key" % (cli, PASSWORD)) == "cli-value"
    assert "NOAUTH" in CLIENT.run("%s GET cli-key" % cli).stdout
    wrong = CLIENT.run("%s -a wrong-password-0000 GET cli-key" % cli)
    assert "WRONGPASS" in wrong.stdout + wrong.stderr and "cli-value" not in wrong.stdout


def test_systemd_sandbox_score(host):
    out = host.check_output("systemd-analyze security --no-pager dragonfly.service")
    match = re.search(r"Overall exposure level for dragonfly.service: ([0-9.]+)", out)
    assert match, out
    print("systemd-analyze security dragonfly.service:", match.group(1))
    assert float(match.group(1)) <= 2.5, out
