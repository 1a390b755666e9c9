"""Bad input to the seaweedfs role fails early, naming the variable, and installs nothing.

Container-free: each case runs the real role with ansible-playbook against localhost. Input errors are checked in
check mode. The checksum-mismatch case runs for real against an artifact served on loopback by
tests/artifacts/serve.py, with every install path pointed into a temporary directory, and asserts that nothing
was unpacked, linked or configured.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVE = os.path.join(TOP, "tests", "artifacts", "serve.py")
PLAYBOOK = """
- name: Apply talentmesh.mail.seaweedfs with test input
  hosts: localhost
  connection: local
  gather_facts: true
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  roles:
    - role: talentmesh.mail.seaweedfs
"""
SECRET_MARK = "s3cret-"


def valid_vars(tmp_path):
    return {
        "seaweedfs_artifact_url": "http://127.0.0.1:9/seaweedfs.tar.gz",
        "seaweedfs_artifact_sha256": "0" * 64,
        "seaweedfs_allowed_hosts": ["10.0.0.5"],
        "seaweedfs_s3_admin_access_key": "admin",
        "seaweedfs_s3_admin_secret_key": SECRET_MARK + "admin",
        "seaweedfs_s3_stalwart_access_key": "stalwart",
        "seaweedfs_s3_stalwart_secret_key": SECRET_MARK + "stalwart",
        "seaweedfs_s3_backup_access_key": "backup",
        "seaweedfs_s3_backup_secret_key": SECRET_MARK + "backup",
        # Keep every path the role could write inside the test's directory.
        "seaweedfs_download_dir": str(tmp_path / "cache"),
        "seaweedfs_install_dir": str(tmp_path / "opt"),
        "seaweedfs_binary_link": str(tmp_path / "bin" / "weed"),
        "seaweedfs_data_dir": str(tmp_path / "data"),
        "seaweedfs_config_dir": str(tmp_path / "etc"),
        "seaweedfs_tls_lab_ca_dir": str(tmp_path / "lab-ca"),
        "seaweedfs_firewall_enabled": False,
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
    assert SECRET_MARK not in output, "an S3 secret leaked into the output"
    return proc.returncode, output


def assert_nothing_installed(tmp_path):
    for name in ("opt", "bin", "data", "etc", "lab-ca"):
        assert not (tmp_path / name).exists(), f"{name} was created"
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir()), "an artifact was left in the download directory"


CASES = {
    "missing secret key": ({}, ("seaweedfs_s3_stalwart_secret_key",), ["seaweedfs_s3_stalwart_secret_key"]),
    "empty secret key": ({"seaweedfs_s3_backup_secret_key": ""}, (), ["seaweedfs_s3_backup_secret_key is missing or empty"]),
    "empty allow-list": ({"seaweedfs_allowed_hosts": []}, (), ["seaweedfs_allowed_hosts is empty"]),
    "allow-list with a host name": ({"seaweedfs_allowed_hosts": ["stalwart.example.net"]}, (),
                                    ["seaweedfs_allowed_hosts takes IP addresses or CIDRs"]),
    "checksum not pinned": ({"seaweedfs_artifact_sha256": ""}, (), ["seaweedfs_artifact_sha256 must be"]),
    "unreachable artifact URL": ({}, (), ["seaweedfs_artifact_url http://127.0.0.1:9/seaweedfs.tar.gz is not reachable"]),
    "certificate without key": ({"seaweedfs_tls_cert": "-----BEGIN CERTIFICATE-----"}, (),
                                ["seaweedfs_tls_cert and seaweedfs_tls_key"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_before_any_change(tmp_path, case):
    overrides, drop, expected = CASES[case]
    rc, output = run_role(tmp_path, overrides, drop)
    assert rc != 0, output
    for text in expected:
        assert text in output, f"{text!r} missing from:\n{output}"
    assert "changed=0" in output, output
    assert_nothing_installed(tmp_path)


@pytest.fixture(name="artifact")
def fixture_artifact(tmp_path_factory):
    """A small release-shaped tarball served over HTTP on loopback; yields (url, sha256, path)."""
    root = tmp_path_factory.mktemp("artifacts")
    data = b"#!/bin/sh\necho 'version 8000GB 0.0 test'\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("weed")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    path = root / "seaweedfs-0.0-linux-amd64.tar.gz"
    path.write_bytes(buf.getvalue())
    state = root / "serve.json"
    started = subprocess.run([sys.executable, SERVE, "start", "--dir", str(root), "--bind", "127.0.0.1",
                              "--pidfile", str(state)], capture_output=True, text=True, check=True)
    url = started.stdout.strip().rstrip("/") + "/" + path.name
    try:
        yield url, hashlib.sha256(path.read_bytes()).hexdigest(), str(path)
    finally:
        subprocess.run([sys.executable, SERVE, "stop", "--pidfile", str(state)], check=False)


def test_checksum_mismatch_on_download_installs_nothing(tmp_path, artifact):
    url, sha256, dummy = artifact
    wrong = hashlib.sha256(b"something else").hexdigest()
    assert wrong != sha256
    rc, output = run_role(tmp_path, {"seaweedfs_artifact_url": url, "seaweedfs_artifact_sha256": wrong,
                                     "seaweedfs_version": "0.0"}, check=False)
    assert rc != 0, output
    assert "did not\nmatch seaweedfs_artifact_sha256" in output or "did not match seaweedfs_artifact_sha256" in output, output
    assert "nothing was installed" in output
    assert "Unpack the weed binary" not in output, "the role went past the checksum"
    assert_nothing_installed(tmp_path)


def test_checksum_mismatch_on_controller_file_installs_nothing(tmp_path, artifact):
    dummy, sha256, path = artifact
    rc, output = run_role(tmp_path, {"seaweedfs_artifact_path": path, "seaweedfs_artifact_sha256": "f" * 64,
                                     "seaweedfs_version": "0.0"})
    assert rc != 0, output
    assert f"has SHA-256 {sha256}, not seaweedfs_artifact_sha256" in output, output
    assert "changed=0" in output, output
    assert_nothing_installed(tmp_path)
