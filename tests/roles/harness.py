"""The one harness of the role input tests: run a role with given variables through ansible-playbook on localhost (no
containers), serve throwaway artifacts over HTTP on loopback, and the rules of issue 10's bad-input matrix (the pytest
hooks that enforce and print it are in conftest.py).

The matrix. Every bad-input case is marked `@pytest.mark.defect_class("<class>")`, or is a `case("<class>", ...)`
entry of a parametrize list: exactly one class of CLASSES. What makes a case a bad-input case: a role run through
run_role fails in it. A test in which a role run fails but that has no marker is failed by the hooks, so no new
bad-input case can stay out of the matrix; a run that may fail because of this machine rather than its input (no
systemd here, Debian 12) says so with run_role(..., environment_failure="why"). A marked case either
- is refused before any change: its run fails with `changed=0` in the recap (enforced by the hooks) and the test
  asserts the message naming the variable; a `state` case is about what a change that fails half-way leaves behind
  (a download that does not match its checksum) and asserts that itself instead; or
- works end to end: every run succeeds with the hostile value (a render with a quoted password). On hosts this side
  is proven in Molecule: matrix_e2e.yml maps class -> role -> the scenario tests that prove it, and
  test_matrix_e2e.py checks that every reference exists.
A known defect is a case with pytest.mark.xfail(strict=True, reason="defect: ..."): counted apart, and failing the
run the day the role is fixed, so that the mark is removed."""
import ast
import datetime
import functools
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
E2E_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "matrix_e2e.yml")

# The classes of issue 10 (1-8), plus the two kinds of bad input every role also refuses.
CLASSES = {
    "firewall": "1 firewall fails open: allow-list entries and ports",
    "injection": "2 injection through line-oriented files: control characters, quoting",
    "broken-config": "3 success over a broken configuration: PEM, key match, unloadable files",
    "ranges": "4 values that stop the service: ranges and units",
    "secrets": "5 secrets in output or argv",
    "state": "6 state recorded before the change succeeds: artifacts, checksums",
    "bypass": "7 local bypass",
    "bucket": "8 S3 bucket names",
    "required": "a required input missing or empty",
    "format": "a malformed value of another kind",
}
_RECAP = re.compile(r"^\S+\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", re.M)
RUNS = pytest.StashKey()
# The test item being run (set by conftest's pytest_runtest_protocol): run_role records its runs there.
current = {"item": None}


def case(defect_class, *values, marks=(), id=None):  # pylint: disable=redefined-builtin
    """A parametrize entry of a bad-input case of `defect_class` (a key of CLASSES)."""
    return pytest.param(*values, marks=[pytest.mark.defect_class(defect_class), *marks], id=id)


def run_role(role, tmp_path, variables, check=False, extra_args=(), environment_failure=None):
    """Run talentmesh.mail.<role> on localhost with `variables`; return (rc, combined output).

    Every run is recorded for the matrix; `environment_failure` (a reason) declares that this run may fail because of
    the machine the tests run on (a good-input case that cannot converge here), not because of its input."""
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable},
             "roles": [{"role": "talentmesh.mail." + role}]}]
    (tmp_path / "play.json").write_text(json.dumps(play))
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"),
               ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", "@" + str(tmp_path / "vars.json"), str(tmp_path / "play.json")]
    if check:
        cmd.append("--check")
    cmd.extend(extra_args)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    item = current["item"]
    if item is not None:
        recap = _RECAP.findall(proc.stdout)
        changed = sum(int(count) for count, _failed in recap) if recap else None
        item.stash[RUNS].append({"role": role, "rc": proc.returncode, "changed": changed,
                                 "environment_failure": environment_failure})
    return proc.returncode, out


def matrix_problem(classes, runs):
    """Why this test breaks the matrix's rules, or None."""
    unknown = [name for name in classes if name not in CLASSES]
    if unknown or len(classes) > 1:
        return "defect_class takes exactly one of %s (got %s)" % (", ".join(CLASSES), ", ".join(classes))
    failed = [run for run in runs if run["rc"] != 0 and not run["environment_failure"]]
    if classes and not runs:
        return "a defect_class case must run its role through run_role"
    if failed and not classes:
        return ("a role run failed in this test but it has no defect_class marker: mark the bad-input case with "
                "case('<class>', ...) or @pytest.mark.defect_class('<class>') (one of %s), or, if the failure comes "
                "from this machine and not from the input, pass run_role(..., environment_failure='why')"
                % ", ".join(CLASSES))
    # A state case is about what a change that fails half-way leaves behind (a download that does not match its
    # checksum is removed again): it asserts that itself; every other refused input must fail before any change.
    changed = [run for run in failed if run["changed"] and classes != ["state"]]
    if changed:
        return ("a refused bad input must fail before any change, but the %s run ended with changed=%s"
                % (changed[0]["role"], changed[0]["changed"]))
    return None


@functools.lru_cache(maxsize=None)
def mismatched_tls():
    """(certificate PEM, private key PEM) where the key does NOT belong to the certificate: both parse as PEM, so only
    the key/certificate match check can refuse them (issue 10 class 3)."""
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "input-test.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("input-test.example")]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode())


class Served:
    """Files served over HTTP on loopback; `add(name, data)` returns (url, sha256)."""

    def __init__(self, root):
        self.root = root
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def add(self, name, data):
        (self.root / name).write_bytes(data)
        return self.url + "/" + name, hashlib.sha256(data).hexdigest()

    def path(self, name):
        return str(self.root / name)


def load_e2e():
    with open(E2E_FILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def e2e_reference_problem(reference):
    """None when `reference` (<path>::<test function> or <path>::<task name>) exists in the repository."""
    path, sep, name = reference.partition("::")
    full = os.path.join(TOP, path)
    if not sep or not name:
        return "%s: not <path>::<test or task name>" % reference
    if not os.path.isfile(full):
        return "%s: no file %s" % (reference, path)
    with open(full, encoding="utf-8") as handle:
        text = handle.read()
    if path.endswith(".py"):
        functions = {node.name for node in ast.walk(ast.parse(text)) if isinstance(node, ast.FunctionDef)}
        return None if name in functions else "%s: no function %s in %s" % (reference, name, path)
    if path.endswith((".yml", ".yaml")):
        names = set()
        stack = [yaml.safe_load(text)]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("name"), str):
                    names.add(node["name"])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return None if name in names else "%s: no task or play named %r in %s" % (reference, name, path)
    return "%s: neither a Python test file nor a YAML playbook" % reference
