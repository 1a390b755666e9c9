"""The one harness of the role input tests: run a role with given variables through ansible-playbook on localhost
(no containers) and serve throwaway artifacts over HTTP on loopback."""
import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_role(role, tmp_path, variables, check=False, extra_args=()):
    """Run talentmesh.mail.<role> on localhost with `variables`; return (rc, combined output)."""
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
    return proc.returncode, proc.stdout + proc.stderr


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


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An HTTP server on loopback for throwaway artifacts (module-scoped)."""
    server = Served(tmp_path_factory.mktemp("served"))
    yield server
    server.server.shutdown()
