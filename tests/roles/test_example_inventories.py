"""The example inventories (inventories/production: bare metal, inventories/production-k8s: Kubernetes apply mode)
load with their example vault password, pass site.yml's syntax check, the platform contract's argument validation
on every host and every component role's argument_specs for the values they set, and keep secrets in the encrypted
vault as obvious placeholders only."""
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
INVENTORIES = {
    "production": {"target": "baremetal", "stalwart": ["mail1.example.com", "mail2.example.com", "mail3.example.com"],
                   "groups": ["stalwart", "postgresql", "dragonfly", "s3", "roundcube"]},
    "production-k8s": {"target": "kubernetes", "stalwart": ["k8s-api"],
                       "groups": ["stalwart", "postgresql", "dragonfly", "s3", "roundcube"]},
}
SECRET_KEY = re.compile(r"((?<!update_)password|secret|requirepass|des_key|api_key|license_key|tls_key)$")


def _env():
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"),
                ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"), ANSIBLE_NOCOLOR="1")


def _inventory_args(name):
    directory = os.path.join(TOP, "inventories", name)
    return ["-i", directory, "--vault-password-file", os.path.join(directory, "example-vault-password.txt")]


def _run(cmd):
    proc = subprocess.run(cmd, env=_env(), cwd=TOP, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _validate_platform(name, tmp_path, extra_vars=None):
    """Run talentmesh.mail.platform (its argument_specs and contract checks) on every host of the inventory, on the
    controller (the checks are controller-side actions; nothing connects to the example hosts)."""
    play = [{"name": "Platform contract on every host", "hosts": "all", "gather_facts": False,
             "roles": [{"role": "talentmesh.mail.platform"}]}]
    (tmp_path / "play.json").write_text(json.dumps(play))
    overrides = {"ansible_connection": "local", "ansible_become": False, "ansible_python_interpreter": sys.executable}
    overrides.update(extra_vars or {})
    (tmp_path / "vars.json").write_text(json.dumps(overrides))
    return _run([os.path.join(BIN, "ansible-playbook")] + _inventory_args(name)
                + ["-e", "@" + str(tmp_path / "vars.json"), str(tmp_path / "play.json")])


@pytest.mark.parametrize("name", sorted(INVENTORIES))
def test_inventory_lists_with_the_example_vault_password(name):
    rc, out = _run([os.path.join(BIN, "ansible-inventory")] + _inventory_args(name) + ["--list"])
    assert rc == 0, out
    data = json.loads(out[out.index("{"):])
    expected = INVENTORIES[name]
    for group in expected["groups"]:
        assert data[group]["hosts"], (name, group)
    assert data["stalwart"]["hosts"] == expected["stalwart"]
    hostvars = data["_meta"]["hostvars"]
    for host, hvars in hostvars.items():
        assert hvars["mail_target"] == expected["target"], host
        # The vault decrypted: its placeholders are visible as plain values.
        assert hvars["vault_kv_password"] == "REPLACE-ME", host


@pytest.mark.parametrize("name", sorted(INVENTORIES))
def test_site_yml_syntax_check(name):
    rc, out = _run([os.path.join(BIN, "ansible-playbook")] + _inventory_args(name) + ["--syntax-check", "site.yml"])
    assert rc == 0, out


@pytest.mark.parametrize("name", sorted(INVENTORIES))
def test_platform_contract_validates_on_every_host(name, tmp_path):
    rc, out = _validate_platform(name, tmp_path)
    assert rc == 0, out
    assert "Validating arguments against arg spec 'main'" in out
    recap = dict(re.findall(r"^(\S+)\s+: ok=(\d+) .*failed=0", out, re.M))
    rc_list, listed = _run([os.path.join(BIN, "ansible-inventory")] + _inventory_args(name) + ["--list"])
    hosts = set(json.loads(listed[listed.index("{"):])["_meta"]["hostvars"])
    assert hosts and set(recap) == hosts, (recap, hosts)
    assert all(int(ok) >= 2 for ok in recap.values()), recap


@pytest.mark.parametrize("name,extra,message", [
    ("production", {"mail_target": "bare-metal"}, "mail_target"),
    ("production-k8s", {"mail_k8s_namespace": "Mail_NS"}, "mail_k8s_namespace"),
    ("production", {"mail_kv_port": 70000}, "mail_kv_port"),
])
def test_platform_validation_of_the_inventory_can_fail(name, extra, message, tmp_path):
    rc, out = _validate_platform(name, tmp_path, extra)
    assert rc != 0, out
    assert message in out, out


# Which role validates the knobs of which group (localhost: the dns play runs on the controller).
ROLE_GROUPS = [("stalwart", "stalwart"), ("postgresql", "postgresql"), ("dragonfly", "dragonfly"),
               ("dragonfly", "valkey"), ("s3", "seaweedfs"), ("s3", "minio"), ("roundcube", "roundcube"),
               ("localhost", "dns")]


# The target-specific role of every host: the bare-metal baseline, or the cluster's prerequisites.
_TARGET_ROLE = {"baremetal": ("all", "common"), "kubernetes": ("all", "k8s_prerequisites")}


def _validate_components(name, tmp_path, extra_vars=None):
    """Every component role's argument_specs against the values the inventory sets for its group, with a
    stand-in value for each vault_* placeholder (the placeholders stop a real run on purpose)."""
    directory = os.path.join(TOP, "inventories", name)
    rc, plain = _run([os.path.join(BIN, "ansible-vault"), "view", "--vault-password-file",
                      os.path.join(directory, "example-vault-password.txt"),
                      os.path.join(directory, "group_vars", "all", "vault")])
    assert rc == 0, plain

    def stand_in(value, key):
        if isinstance(value, dict):
            return {k: stand_in(v, k) for k, v in value.items()}
        return "stand-in-for-%s-0123456789" % key

    overrides = {k: stand_in(v, k) for k, v in yaml.safe_load(plain).items()}
    overrides.update({"ansible_connection": "local", "ansible_become": False,
                      "ansible_python_interpreter": sys.executable})
    overrides.update(extra_vars or {})
    (tmp_path / "vars.json").write_text(json.dumps(overrides))
    pairs = ROLE_GROUPS + [_TARGET_ROLE[INVENTORIES[name]["target"]]]
    plays = []
    for group, role in pairs:
        spec = os.path.join(TOP, "roles", role, "meta", "argument_specs.yml")
        plays.append({
            "name": "Knobs of %s on %s" % (role, group), "hosts": group, "gather_facts": False,
            "tasks": [{
                "name": "Validate the inventory's %s variables" % role,
                "ansible.builtin.validate_argument_spec": {
                    "argument_spec": "{{ _spec }}",
                    "provided_arguments": "{{ dict(_keys | zip(query('ansible.builtin.vars', *_keys))) }}"},
                "vars": {"_spec": "{{ (lookup('ansible.builtin.file', '%s') | from_yaml).argument_specs.main.options }}"
                                  % spec,
                         "_keys": "{{ _spec.keys() | select('in', hostvars[inventory_hostname]) | list }}"},
            }, {
                "name": "The inventory sets %s variables" % role,
                "ansible.builtin.assert": {"that": "_keys | length > 0", "quiet": True},
                "vars": {"_spec": "{{ (lookup('ansible.builtin.file', '%s') | from_yaml).argument_specs.main.options }}"
                                  % spec,
                         "_keys": "{{ _spec.keys() | select('in', hostvars[inventory_hostname]) | list }}"},
            }]})
    (tmp_path / "components.json").write_text(json.dumps(plays))
    return _run([os.path.join(BIN, "ansible-playbook")] + _inventory_args(name)
                + ["-e", "@" + str(tmp_path / "vars.json"), str(tmp_path / "components.json")])


@pytest.mark.parametrize("name", sorted(INVENTORIES))
def test_component_roles_accept_the_inventory(name, tmp_path):
    rc, out = _validate_components(name, tmp_path)
    assert rc == 0, out
    assert "failed=0" in out and "failed=1" not in out
    assert out.count("TASK [Validate the inventory's") == len(ROLE_GROUPS) + 1


@pytest.mark.parametrize("name,extra,message", [
    ("production", {"stalwart_accounts": "alice@example.com"}, "stalwart_accounts"),
    ("production", {"postgresql_replication_role": "standby"}, "postgresql_replication_role"),
    ("production-k8s", {"roundcube_k8s_replicas": "two"}, "roundcube_k8s_replicas"),
])
def test_component_validation_of_the_inventory_can_fail(name, extra, message, tmp_path):
    rc, out = _validate_components(name, tmp_path, extra)
    assert rc != 0, out
    assert message in out, out


def _plain_files(name):
    root = os.path.join(TOP, "inventories", name)
    for dirpath, _dirs, files in os.walk(root):
        for f in sorted(files):
            if f.endswith((".yml", ".yaml")) and f != "vault":
                yield os.path.join(dirpath, f)


def _walk(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, path + (str(k),))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, path + (str(i),))
    else:
        yield path, value


@pytest.mark.parametrize("name", sorted(INVENTORIES))
def test_secrets_only_in_the_vault_and_only_placeholders(name):
    directory = os.path.join(TOP, "inventories", name)
    vault = os.path.join(directory, "group_vars", "all", "vault")
    with open(vault) as f:
        assert f.readline().startswith("$ANSIBLE_VAULT;1.1;AES256"), "group_vars/all/vault is not encrypted"
    for path in _plain_files(name):
        with open(path) as f:
            assert "$ANSIBLE_VAULT" not in f.read(), path
        for keys, value in _walk(yaml.safe_load(open(path)) or {}):
            if SECRET_KEY.search(keys[-1]) and isinstance(value, str) and value:
                assert "{{" in value, "%s: %s holds a literal secret" % (path, ".".join(keys))
    rc, plain = _run([os.path.join(BIN, "ansible-vault"), "view", "--vault-password-file",
                      os.path.join(directory, "example-vault-password.txt"), vault])
    assert rc == 0, plain
    secrets = yaml.safe_load(plain)
    assert secrets and all(k.startswith("vault_") for k in secrets)
    for keys, value in _walk(secrets):
        assert isinstance(value, str) and ("REPLACE-ME" in value or "undef(hint=" in value), ".".join(keys)
