"""The secret-leak checks can fail: tests/leaks/leak_check.py (a -vvv converge's output, process arguments) and
tests/leaks/render_scan.py (a rendered Kubernetes platform) find planted secrets, plain and base64-encoded, name
where they are without showing them, and pass on clean input."""
import base64
import secrets as random
import sys
import textwrap

import pytest

from tests.leaks import leak_check, render_scan


@pytest.fixture
def secret():
    return random.token_hex(16)


@pytest.fixture
def secrets_dir(tmp_path, secret):
    path = tmp_path / "secrets"
    path.mkdir()
    (path / "s3-stalwart").write_text(secret + " salt=abcdefgh\n")
    (path / "short").write_text("abc\n")
    return path


@pytest.fixture
def inventory(tmp_path):
    group_vars = tmp_path / "inventory" / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    (group_vars / "secrets.yml").write_text(textwrap.dedent("""\
        ---
        lab_s3_stalwart_secret: "{{ lookup('ansible.builtin.password', lab_secrets_dir ~ '/s3-stalwart ' ~ spec) }}"
        mail_s3_stalwart_secret_key: "{{ lab_s3_stalwart_secret }}"
        minio_stalwart_secret_key: "{{ mail_s3_stalwart_secret_key }}"
        unrelated: "{{ lab_s3_stalwart_secretive }}"
        """))
    return tmp_path / "inventory"


def test_known_secrets_strip_the_salt_skip_short_values_and_take_a_key_line(secrets_dir, secret, tmp_path):
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    (ca_dir / "host.key").write_text("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nrest\n"
                                     "-----END PRIVATE KEY-----\n")
    (ca_dir / "host.crt").write_text("-----BEGIN CERTIFICATE-----\nnotasecret\n-----END CERTIFICATE-----\n")
    assert leak_check.known_secrets(str(secrets_dir), str(ca_dir)) == {
        "secret s3-stalwart": secret, "private key host.key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}


@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b"key=", b"0123456789abcdef"])
def test_hits_plain_and_base64_at_every_alignment(secret, prefix):
    known = {"secret s3-stalwart": secret}
    encoded = base64.b64encode(prefix + secret.encode() + b"\ntrailer").decode()
    text = "TASK [minio : Read the users]\nok: [s3] => (item=talentmesh-backup) => {\"content\": \"%s\"}\n" % encoded
    hits = leak_check.hits_in(text, known, "converge output (-vvv)", tasks=True)
    assert hits == ["converge output (-vvv): secret s3-stalwart found (base64, 1 times) in TASK [minio : Read the users]"]
    plain = leak_check.hits_in("PLAY [x]\nTASK [a]\nok\nTASK [b]\n%s %s\n" % (secret, secret), known, "out", tasks=True)
    assert plain == ["out: secret s3-stalwart found (plain, 2 times) in TASK [b]"]
    assert all(secret not in line for line in hits + plain)


def test_no_hit_without_the_secret(secret):
    other = random.token_hex(16)
    text = "%s %s %s" % (other, base64.b64encode(other.encode()).decode(), secret[:-1])
    assert leak_check.hits_in(text, {"secret s3-stalwart": secret}, "out", tasks=True) == []


def test_masked_hides_every_form(secret):
    text = "fatal: %s and %s" % (secret, base64.b64encode(b"a" + secret.encode()).decode())
    shown = leak_check.masked(text, {"secret s3-stalwart": secret})
    assert leak_check.hits_in(shown, {"secret s3-stalwart": secret}, "out") == []
    assert "<secret s3-stalwart>" in shown


def run_check(tmp_path, secrets_dir, script, *args):
    """leak_check.main around a stand-in 'converge' (a python script) on an inventory without hosts."""
    hosts = tmp_path / "hosts.yml"
    hosts.write_text("all:\n  hosts: {}\n")
    return leak_check.main(["--secrets-dir", str(secrets_dir), "--", sys.executable, "-c", script, *args,
                            "-i", str(hosts)])


def test_main_fails_on_a_secret_in_the_output(tmp_path, secrets_dir, capsys):
    script = ("import base64, sys; v = open(sys.argv[1]).read().split(' salt=')[0].strip(); "
              "print('TASK [planted]'); print(base64.b64encode(b'k:' + v.encode()).decode())")
    assert run_check(tmp_path, secrets_dir, script, str(secrets_dir / "s3-stalwart")) == 1
    out = capsys.readouterr().out
    assert "LEAK converge output (-vvv): secret s3-stalwart found (base64, 1 times) in TASK [planted]" in out


def test_main_fails_on_a_secret_in_controller_process_arguments(tmp_path, secrets_dir, secret, capsys):
    assert run_check(tmp_path, secrets_dir, "import time; time.sleep(1.5)", secret) == 1
    out = capsys.readouterr().out
    assert "LEAK process arguments on controller: secret s3-stalwart found (plain" in out
    assert secret not in out


def test_main_passes_a_clean_converge(tmp_path, secrets_dir, capsys):
    assert run_check(tmp_path, secrets_dir, "print('TASK [clean]')") == 0
    assert "0 leaks" in capsys.readouterr().out


def test_main_fails_when_the_converge_fails_without_showing_the_secret(tmp_path, secrets_dir, secret, capsys):
    script = "import sys; print(open(sys.argv[1]).read().split(' salt=')[0]); sys.exit(2)"
    assert run_check(tmp_path, secrets_dir, script, str(secrets_dir / "s3-stalwart")) == 1
    out = capsys.readouterr().out
    assert "the converge failed (rc 2)" in out and "<secret s3-stalwart>" in out and secret not in out


def test_carriers_follow_references_by_whole_name(inventory):
    assert render_scan.carriers(str(inventory)) == {
        "s3-stalwart": ["lab_s3_stalwart_secret", "mail_s3_stalwart_secret_key", "minio_stalwart_secret_key"]}


def render(tmp_path, text):
    top = tmp_path / "rendered"
    (top / "minio").mkdir(parents=True)
    (top / "minio" / "objects.yaml").write_text(textwrap.dedent(text))
    return top


def scan(secrets_dir, inventory, top):
    return render_scan.main(["--secrets-dir", str(secrets_dir), "--inventory", str(inventory), str(top)])


def test_render_scan_passes_secrets_in_data_and_string_data_only(tmp_path, secrets_dir, inventory, secret, capsys):
    encoded = base64.b64encode(("[default]\nkey=%s\n" % secret).encode()).decode()
    top = render(tmp_path, """\
        apiVersion: v1
        kind: Secret
        metadata: {name: minio-keys}
        data: {config: %s}
        stringData: {key: %s}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: minio-settings}
        data: {region: us-east-1}
        """ % (encoded, secret))
    assert scan(secrets_dir, inventory, top) == 0
    assert "1 in Secrets' data (secret s3-stalwart), 0 leaks" in capsys.readouterr().out


@pytest.mark.parametrize("where, doc", [
    ("ConfigMap minio-settings .data.env", "kind: ConfigMap\nmetadata: {name: minio-settings}\n"
                                           "data: {env: 'MINIO_KEY=%s'}\n"),
    ("Job minio-provision .spec.template.spec.containers[0].args[1]",
     "kind: Job\nmetadata: {name: minio-provision}\nspec: {template: {spec: {containers: [{args: [add, '%s']}]}}}\n"),
    ("Secret minio-keys .metadata.annotations.note", "kind: Secret\nmetadata: {name: minio-keys, annotations: {note: '%s'}}\n"),
])
def test_render_scan_fails_naming_file_object_path_and_variables(
        tmp_path, secrets_dir, inventory, secret, where, doc, capsys):
    top = render(tmp_path, "kind: Secret\nmetadata: {name: ok}\nstringData: {key: %s}\n---\n%s" % (secret, doc % secret))
    assert scan(secrets_dir, inventory, top) == 1
    out = capsys.readouterr().out
    assert ("LEAK %s: %s: secret s3-stalwart (lab_s3_stalwart_secret, mail_s3_stalwart_secret_key, "
            "minio_stalwart_secret_key) found (plain)" % (top / "minio" / "objects.yaml", where)) in out
    assert secret not in out


def test_render_scan_finds_base64_outside_secrets(tmp_path, secrets_dir, inventory, secret, capsys):
    encoded = base64.b64encode(secret.encode()).decode()
    top = render(tmp_path, "kind: Secret\nmetadata: {name: ok}\nstringData: {key: %s}\n---\n"
                           "kind: ConfigMap\nmetadata: {name: cm}\nbinaryData: {blob: %s}\n" % (secret, encoded))
    assert scan(secrets_dir, inventory, top) == 1
    assert "ConfigMap cm .binaryData.blob: secret s3-stalwart" in capsys.readouterr().out


def test_render_scan_refuses_a_scan_that_proves_nothing(tmp_path, secrets_dir, inventory, capsys):
    top = render(tmp_path, "kind: ConfigMap\nmetadata: {name: cm}\ndata: {region: us-east-1}\n")
    assert scan(secrets_dir, inventory, top) == 2
    assert "proves nothing" in capsys.readouterr().out
    assert scan(secrets_dir, inventory, tmp_path / "missing") == 2


RECAP = """TASK [talentmesh.mail.common : Write the nftables ruleset] ***
ok: [h2]
changed: [h1]
PLAY RECAP ***
h1                         : ok=3    changed=%d    unreachable=0    failed=0
h2                         : ok=2    changed=0    unreachable=0    failed=0
"""


def test_expect_unchanged_names_the_changed_task(capsys):
    assert leak_check.report_changes(RECAP % 1) is False
    out = capsys.readouterr().out
    assert "changed on h1: talentmesh.mail.common : Write the nftables ruleset" in out
    assert "2 hosts in the recap, 1 with changes: h1=1" in out


def test_expect_unchanged_passes_a_converged_recap_and_fails_without_one(capsys):
    assert leak_check.report_changes(RECAP % 0) is True
    assert leak_check.report_changes("no recap here") is False


def test_sampler_attributes_container_processes_to_their_host(monkeypatch, secret):
    """One ps of the machine: a process in a host's libpod cgroup counts as that host's, the rest as the controller's."""
    cid = "ab" * 32
    ps = ("0::/machine.slice/libpod-%s.scope/init.scope mc admin user add key %s\n"
          "0::/user.slice/session-1.scope ansible-playbook -i inventory site.yml\n" % (cid, secret))

    class Done(object):
        def __init__(self, stdout):
            self.stdout, self.returncode = stdout, 0

    def fake_run(cmd, **kwargs):
        return Done(cid + "\n" if cmd[:2] == ["podman", "inspect"] else ps)

    monkeypatch.setattr(leak_check.subprocess, "run", fake_run)
    sampler = leak_check.Sampler(["lab-s3"])
    sampler.sample()
    assert sampler.seen["controller"] == {"ansible-playbook -i inventory site.yml"}
    hits = leak_check.hits_in("\n".join(sampler.seen["lab-s3"]), {"s3-admin": secret}, "process arguments on lab-s3")
    assert hits == ["process arguments on lab-s3: s3-admin found (plain, 1 times)"]
