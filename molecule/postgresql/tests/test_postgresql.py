"""Verify the postgresql role: TLS + SCRAM from the allowed client only, a streaming hot standby, and pgBackRest
WAL archiving into the SeaweedFS S3 bucket. Real clients run on the client container (podman backend)."""
import json
import os
import shlex
import time

import pytest
import testinfra

RELEASE = os.environ.get("MOLECULE_DEBIAN", "12")
PG_VERSION = {"12": "15", "13": "17"}[RELEASE]
PRIMARY_NAME = f"tm-pg-primary-d{RELEASE}"
S3_NAME = f"tm-pg-s3-d{RELEASE}"
REPLICA = testinfra.get_host(f"podman://tm-pg-replica-d{RELEASE}")
CLIENT = testinfra.get_host(f"podman://tm-pg-client-d{RELEASE}")
OTHER = testinfra.get_host(f"podman://tm-pg-other-d{RELEASE}")
PG_CA = "/etc/ssl/certs/talentmesh-lab-pg-ca.pem"
S3_CA = "/etc/ssl/certs/talentmesh-lab-s3-ca.pem"
STALWART_PASSWORD = "lab-stalwart-db-0123456789"
CONF = f"/etc/postgresql/{PG_VERSION}/main"


def psql(host, conninfo, sql, password=STALWART_PASSWORD):
    return host.run(f"PGPASSWORD={shlex.quote(password)} PGCONNECT_TIMEOUT=5 psql {shlex.quote(conninfo)} "
                    f"-v ON_ERROR_STOP=1 -Atc {shlex.quote(sql)}")


def local_sql(host, sql):
    return host.check_output(f"runuser -u postgres -- psql -Atc {shlex.quote(sql)}")


def stalwart_conninfo(sslmode="verify-full", host=PRIMARY_NAME, user="stalwart", dbname="stalwart"):
    return f"host={host} dbname={dbname} user={user} sslmode={sslmode} sslrootcert={PG_CA}"


def test_server_running_with_distribution_version(host):
    assert host.service(f"postgresql@{PG_VERSION}-main").is_running
    assert host.service(f"postgresql@{PG_VERSION}-main").is_enabled
    assert local_sql(host, "SHOW server_version_num").startswith(PG_VERSION)


@pytest.mark.parametrize("setting,expected", [
    ("ssl", "on"),
    ("ssl_min_protocol_version", "TLSv1.2"),
    ("password_encryption", "scram-sha-256"),
    ("shared_buffers", "256MB"),          # 25 % of postgresql_memory_mb: 1024
    ("effective_cache_size", "768MB"),    # 75 %
    ("maintenance_work_mem", "64MB"),
    ("archive_mode", "on"),
])
def test_settings_from_dropins(host, setting, expected):
    assert local_sql(host, f"SHOW {setting}") == expected


def test_postgresql_conf_untouched_and_dropins_private(host):
    status = host.run(f"dpkg --verify postgresql-{PG_VERSION} postgresql-common").stdout
    assert "postgresql.conf" not in status
    for name in ("50-talentmesh-server.conf", "60-talentmesh.conf"):  # quoted, escaped values
        f = host.file(f"{CONF}/conf.d/{name}")
        assert f.user == "postgres" and f.mode == 0o640


def test_pg_hba_only_tls_scram_and_local_peer(host):
    lines = [line.split() for line in host.file(f"{CONF}/pg_hba.conf").content_string.splitlines()
             if line.strip() and not line.startswith("#")]
    assert ["local", "all", "postgres", "peer"] in lines
    network = [line for line in lines if line[0] != "local"]
    assert network and all(line[0] == "hostssl" and line[-1] == "scram-sha-256" for line in network)
    assert {line[1] for line in network} == {"stalwart", "roundcube", "replication"}
    assert all(line[3].endswith("/32") for line in network)


def test_secret_files_modes(host):
    key = host.file(f"{CONF}/tls/server.key")
    assert key.user == "postgres" and key.mode == 0o600
    conf = host.file("/etc/pgbackrest/pgbackrest.conf")
    assert conf.user == "root" and conf.group == "postgres" and conf.mode == 0o640


def test_client_verify_full_tls_succeeds():
    result = psql(CLIENT, stalwart_conninfo(),
                  "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert result.rc == 0, result.stderr
    ssl, version = result.stdout.strip().split("|")
    assert ssl == "t" and version in ("TLSv1.2", "TLSv1.3")


def test_client_without_tls_refused():
    result = psql(CLIENT, stalwart_conninfo(sslmode="disable"), "SELECT 1")
    assert result.rc != 0
    assert "no encryption" in result.stderr or "no pg_hba.conf entry" in result.stderr


def test_client_wrong_password_refused():
    result = psql(CLIENT, stalwart_conninfo(), "SELECT 1", password="wrong-password")
    assert result.rc != 0 and "password authentication failed" in result.stderr


def test_owner_limited_to_its_database():
    result = psql(CLIENT, stalwart_conninfo(dbname="roundcube"), "SELECT 1")
    assert result.rc != 0 and "no pg_hba.conf entry" in result.stderr


def test_non_allowed_host_refused():
    code = ("import socket,sys\n"
            "s=socket.socket(); s.settimeout(3)\n"
            f"sys.exit(0 if s.connect_ex(('{PRIMARY_NAME}', 5432)) == 0 else 1)\n")
    assert OTHER.run(f"python3 -c {shlex.quote(code)}").rc != 0, "the firewall must drop non-allowed hosts"
    assert CLIENT.run(f"python3 -c {shlex.quote(code)}").rc == 0


def test_replica_streams_and_sees_primary_writes(host):
    assert local_sql(REPLICA, "SELECT pg_is_in_recovery()") == "t"
    marker = f"written-{time.time_ns()}"
    write = psql(CLIENT, stalwart_conninfo(),
                 "CREATE TABLE IF NOT EXISTS probe (v text); "
                 f"INSERT INTO probe VALUES ('{marker}')")
    assert write.rc == 0, write.stderr
    for _attempt in range(50):
        seen = REPLICA.run(f"runuser -u postgres -- psql -d stalwart -Atc \"SELECT count(*) FROM probe WHERE v = '{marker}'\"")
        if seen.rc == 0 and seen.stdout.strip() == "1":
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"replica did not receive the write: {seen.stderr}")
    replication = local_sql(host, "SELECT r.state, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s ON s.pid = r.pid")
    assert replication == "streaming|t"
    assert local_sql(host, "SELECT active FROM pg_replication_slots WHERE slot_name = 'replica1'") == "t"


def test_replica_read_only_for_clients():
    conninfo = stalwart_conninfo(host=f"tm-pg-replica-d{RELEASE}")
    assert psql(CLIENT, conninfo, "SELECT count(*) FROM pg_database").rc == 0
    write = psql(CLIENT, conninfo, "CREATE TABLE nope (v int)")
    assert write.rc != 0 and "read-only" in write.stderr


def test_pgbackrest_check_archives_wal_to_s3(host):
    check = host.run("runuser -u postgres -- pgbackrest --stanza=main check")
    assert check.rc == 0, check.stdout + check.stderr
    probe = (
        "import boto3, json\n"
        "from botocore.config import Config\n"
        f"s3 = boto3.client('s3', endpoint_url='https://{S3_NAME}:8333', aws_access_key_id='lab-backup',"
        " aws_secret_access_key='lab-backup-secret-0123456789', region_name='us-east-1',"
        f" verify='{S3_CA}', config=Config(s3={{'addressing_style': 'path'}}))\n"
        "keys = [o['Key'] for o in s3.list_objects_v2(Bucket='backups', Prefix='pgbackrest/archive/main/')"
        ".get('Contents', [])]\n"
        "print(json.dumps(keys))\n"
    )
    keys = json.loads(CLIENT.check_output(f"python3 -c {shlex.quote(probe)}"))
    assert any(k.endswith(".zst") and "/0000000" in k for k in keys), keys


def test_backup_timers_enabled(host):
    for timer in ("pgbackrest-full.timer", "pgbackrest-diff.timer"):
        assert host.service(timer).is_enabled
        assert host.service(timer).is_running


def exposure(host, unit):
    out = host.check_output(f"systemd-analyze security --no-pager {unit}")
    return float(out.strip().splitlines()[-1].split(":")[1].split()[0])


@pytest.mark.parametrize("name", ["primary", "replica"])
def test_server_unit_hardened(host, name):
    """issue 10 item 9: the shared profile as a drop-in of postgresql@.service (it scored 9.6 without)."""
    target = host if name == "primary" else REPLICA
    unit = f"postgresql@{PG_VERSION}-main.service"
    assert target.file("/etc/systemd/system/postgresql@.service.d/10-talentmesh-hardening.conf").exists
    assert target.check_output(f"systemctl show -p User --value {unit}") == "postgres"
    score = exposure(target, unit)
    print(f"{name}: systemd-analyze security {unit}: {score}")
    assert score <= 2.0, score


def test_backup_unit_hardened_and_runs(host):
    assert exposure(host, "pgbackrest-backup@full.service") <= 2.0
    run = host.run("systemctl start pgbackrest-backup@full.service")
    assert run.rc == 0, host.run("journalctl -u pgbackrest-backup@full.service --no-pager -n 30").stdout
    info = json.loads(host.check_output("runuser -u postgres -- pgbackrest --stanza=main --output=json info"))
    assert [b["type"] for b in info[0]["backup"]] and info[0]["backup"][-1]["type"] == "full"


@pytest.mark.parametrize("target", ["primary", "replica"])
def test_configuration_live_without_errors(host, target):
    node = host if target == "primary" else REPLICA
    assert local_sql(node, "SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL") == "0"
    assert local_sql(node, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL") == "0"
    assert local_sql(node, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"
    assert local_sql(node, "SHOW ssl_ciphers") == "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"


def test_backup_timers_from_cron(host):
    full = host.file("/etc/systemd/system/pgbackrest-full.timer").content_string
    diff = host.file("/etc/systemd/system/pgbackrest-diff.timer").content_string
    assert "OnCalendar=Sun *-*-* 1:30:00" in full, full
    assert "OnCalendar=Mon..Sat *-*-* 1:30:00" in diff, diff


def test_firewall_dropin_from_shared(host):
    assert host.file("/etc/nftables.d/postgresql.nft").exists
    assert not host.file("/etc/nftables.d/50-postgresql.nft").exists
