"""Bad input to the postgresql role fails at the start, naming the variable, before any change.

Each case runs the real role with ansible-playbook against localhost in check mode (no containers) and asserts the
error message, that nothing changed and that no task after input validation ran.
"""
import json
import os
import subprocess
import sys

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = """
- name: Apply talentmesh.mail.postgresql with test input
  hosts: localhost
  connection: local
  gather_facts: true
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  roles:
    - role: talentmesh.mail.postgresql
"""

VALID = {
    "postgresql_allowed_hosts": ["10.0.0.5"],
    "postgresql_databases": [
        {"name": "stalwart", "owner": "stalwart", "password": "s3cret-stalwart"},
        {"name": "roundcube", "owner": "roundcube", "password": "s3cret-roundcube"},
    ],
}


def run_role(tmp_path, overrides, drop=()):
    extra = {**VALID, **overrides}
    for name in drop:
        extra.pop(name)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "vars.json").write_text(json.dumps(extra))
    env = dict(os.environ,
               ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run([playbook, "-i", "localhost,", "--check", str(tmp_path / "play.yml"),
                           "-e", f"@{tmp_path / 'vars.json'}"],
                          capture_output=True, text=True, env=env, cwd=TOP, timeout=180, check=False)
    return proc.returncode, proc.stdout + proc.stderr


CASES = {
    "missing password": ({"postgresql_databases": [{"name": "stalwart", "owner": "stalwart"}]}, (),
                         ["postgresql_databases", "password"]),
    "empty password": ({"postgresql_databases": [{"name": "stalwart", "owner": "stalwart", "password": ""}]}, (),
                       ["postgresql_databases", "password", "stalwart"]),
    "invalid memory size": ({"postgresql_shared_buffers": "512XB"}, (), ["postgresql_shared_buffers", "512XB"]),
    "invalid work_mem": ({"postgresql_work_mem": "lots"}, (), ["postgresql_work_mem"]),
    "empty allow-list": ({"postgresql_allowed_hosts": []}, (), ["postgresql_allowed_hosts is empty"]),
    "missing allow-list": ({}, ("postgresql_allowed_hosts",), ["postgresql_allowed_hosts"]),
    "replica without replication password": (
        {"postgresql_replication_role": "replica", "postgresql_primary_host": "db1", "postgresql_replication_slot": "r1"},
        (), ["postgresql_replication_password"]),
    "backup without S3 secret": (
        {"postgresql_backup_enabled": True, "postgresql_backup_s3_endpoint": "s3.example.net",
         "postgresql_backup_s3_bucket": "backups", "postgresql_backup_s3_access_key": "AK"},
        (), ["postgresql_backup_s3_secret_key"]),
    "unsupported target": ({"postgresql_target": "kubernetes"}, (), ["postgresql_target"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_before_any_change(tmp_path, case):
    overrides, drop, expected = CASES[case]
    rc, output = run_role(tmp_path, overrides, drop)
    assert rc != 0, output
    for text in expected:
        assert text in output, f"{text!r} missing from:\n{output}"
    assert "changed=0" in output, output
    assert "s3cret-" not in output, "a password leaked into the output"
    assert "Install PostgreSQL" not in output, "the role went past input validation"
