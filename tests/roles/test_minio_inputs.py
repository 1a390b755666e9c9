"""Bad input to the minio role fails early, naming the variable, and installs nothing.

Container-free: each case runs the real role with ansible-playbook against localhost. Input errors are checked in
check mode. The checksum cases run for real: the URL case downloads a TEST STAND-IN file (random bytes, not MinIO)
served on loopback by tests/artifacts/serve.py, the air-gapped case points at a controller-local file; every path the
role could write is inside a temporary directory, and the test asserts nothing was installed there.
"""
import hashlib
import json
import os
import subprocess
import sys

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVE = os.path.join(TOP, "tests", "artifacts", "serve.py")
PLAYBOOK = """
- name: Apply talentmesh.mail.minio with test input
  hosts: localhost
  connection: local
  gather_facts: true
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  roles:
    - role: talentmesh.mail.minio
"""
SECRET_MARK = "s3cret-mark-"


def valid_vars(tmp_path):
    return {
        "minio_artifact_url": "http://127.0.0.1:9/minio",
        "minio_artifact_sha256": "0" * 64,
        "minio_mc_artifact_url": "http://127.0.0.1:9/mc",
        "minio_mc_artifact_sha256": "1" * 64,
        "minio_allowed_hosts": ["10.0.0.5"],
        "minio_root_user": "lab-root",
        "minio_root_password": SECRET_MARK + "root-0123456789",
        "minio_stalwart_access_key": "lab-stalwart",
        "minio_stalwart_secret_key": SECRET_MARK + "stalwart-0123",
        "minio_backup_access_key": "lab-backup",
        "minio_backup_secret_key": SECRET_MARK + "backup-012345",
        # Keep every path the role could write inside the test's directory.
        "minio_download_dir": str(tmp_path / "cache"),
        "minio_install_dir": str(tmp_path / "opt"),
        "minio_binary_link": str(tmp_path / "bin" / "minio"),
        "minio_mc_binary_link": str(tmp_path / "bin" / "mc"),
        "minio_data_dir": str(tmp_path / "data"),
        "minio_config_dir": str(tmp_path / "etc"),
        "minio_env_file": str(tmp_path / "etc-default-minio"),
        "minio_tls_lab_ca_dir": str(tmp_path / "lab-ca"),
        "minio_firewall_enabled": False,
    }


def run_role(tmp_path, overrides=None, drop=(), check=True):
    extra = {**valid_vars(tmp_path), **(overrides or {})}
    for name in drop:
        extra.pop(name)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "vars.json").write_text(json.dumps(extra))
    env = dict(os.environ,
               ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    cmd = [playbook, "-i", "localhost,", str(tmp_path / "play.yml"), "-e", f"@{tmp_path / 'vars.json'}"]
    proc = subprocess.run(cmd + (["--check"] if check else []), capture_output=True, text=True, env=env, cwd=TOP,
                          timeout=180, check=False)
    output = proc.stdout + proc.stderr
    assert SECRET_MARK not in output, "a secret leaked into the output"
    return proc.returncode, output


def assert_nothing_installed(tmp_path):
    for name in ("bin", "data", "etc", "etc-default-minio", "lab-ca"):
        assert not (tmp_path / name).exists(), f"{name} was created"
    opt = tmp_path / "opt"
    assert not opt.exists() or not any(opt.iterdir()), "a binary was installed"


@pytest.fixture(name="served")
def served_fixture(tmp_path_factory):
    """A stand-in 'minio' file (random bytes; NOT MinIO) served over HTTP on loopback."""
    root = tmp_path_factory.mktemp("served")
    payload = os.urandom(4096)
    (root / "minio").write_bytes(payload)
    (root / "mc").write_bytes(payload[::-1])
    state = str(root / "serve.json")
    url = subprocess.run([sys.executable, SERVE, "start", "--dir", str(root), "--pidfile", state],
                         capture_output=True, text=True, check=True).stdout.strip()
    yield {"url": url.rstrip("/"), "minio_sha256": hashlib.sha256(payload).hexdigest(),
           "mc_sha256": hashlib.sha256(payload[::-1]).hexdigest(), "dir": root}
    subprocess.run([sys.executable, SERVE, "stop", "--pidfile", state], check=False)


@pytest.mark.parametrize("drop, overrides, variable", [
    (["minio_root_password"], {}, "minio_root_password"),
    (["minio_root_user"], {}, "minio_root_user"),
    ([], {"minio_root_password": "short"}, "minio_root_password"),
    (["minio_stalwart_secret_key"], {}, "minio_stalwart_access_key / minio_stalwart_secret_key"),
    (["minio_backup_access_key"], {}, "minio_backup_access_key / minio_backup_secret_key"),
    ([], {"minio_allowed_hosts": []}, "minio_allowed_hosts"),
    ([], {"minio_allowed_hosts": ["stalwart.example"]}, "minio_allowed_hosts"),
    ([], {"minio_artifact_sha256": ""}, "minio_artifact_sha256"),
    ([], {"minio_mc_artifact_sha256": "abc"}, "minio_mc_artifact_sha256"),
    ([], {"minio_tls_cert": "-----BEGIN CERTIFICATE-----"}, "minio_tls_key"),
])
def test_bad_input_fails_naming_the_variable(tmp_path, drop, overrides, variable):
    rc, output = run_role(tmp_path, overrides, drop)
    assert rc != 0
    assert variable in output, output[-2000:]
    assert_nothing_installed(tmp_path)


def test_keys_not_required_without_provisioning(tmp_path, served):
    """minio_provision: false needs neither the keys nor mc; the (reachable) server URL passes validation."""
    rc, output = run_role(tmp_path, {"minio_provision": False, "minio_artifact_url": served["url"] + "/minio",
                                     "minio_artifact_sha256": served["minio_sha256"]},
                          drop=["minio_stalwart_secret_key", "minio_backup_access_key", "minio_mc_artifact_sha256"])
    del rc  # check mode on a host without systemd stops at the restart handler, after validation
    assert "minio_stalwart" not in output and "minio_mc_artifact" not in output, output[-2000:]
    assert "TASK [talentmesh.mail.minio : Create the service user]" in output, output[-2000:]
    assert (tmp_path / "opt").exists() is False


def test_unreachable_url_fails_before_install(tmp_path):
    rc, output = run_role(tmp_path)
    assert rc != 0
    assert "minio_artifact_url http://127.0.0.1:9/minio is not reachable" in output, output[-2000:]
    assert_nothing_installed(tmp_path)


def test_checksum_mismatch_installs_nothing(tmp_path, served):
    rc, output = run_role(tmp_path, {
        "minio_artifact_url": served["url"] + "/minio", "minio_artifact_sha256": "ab" * 32,
        "minio_mc_artifact_url": served["url"] + "/mc", "minio_mc_artifact_sha256": served["mc_sha256"],
    }, check=False)
    assert rc != 0
    assert "minio_artifact_url" in output and "minio_artifact_sha256" in output, output[-2000:]
    assert "nothing was installed" in output
    assert not (tmp_path / "cache" / "minio.RELEASE.2025-09-07T16-13-09Z").exists(), "the bad download was kept"
    assert_nothing_installed(tmp_path)
    for name in ("bin", "data", "etc", "etc-default-minio", "lab-ca"):
        assert not (tmp_path / name).exists(), f"{name} was created"


def test_local_artifact_mismatch_fails_before_install(tmp_path, served):
    rc, output = run_role(tmp_path, {"minio_artifact_path": str(served["dir"] / "minio"),
                                     "minio_mc_artifact_path": str(served["dir"] / "mc"),
                                     "minio_mc_artifact_sha256": served["mc_sha256"]})
    assert rc != 0
    assert "minio_artifact_path" in output and "minio_artifact_sha256" in output, output[-2000:]
    assert_nothing_installed(tmp_path)
