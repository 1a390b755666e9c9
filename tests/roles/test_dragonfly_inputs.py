"""Bad input to the dragonfly role fails before anything is installed, with a message naming the variable.
Runs ansible-playbook against localhost with throwaway directories; no containers."""
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
GOOD = {
    "dragonfly_requirepass": "a-long-enough-test-password",
    "dragonfly_allowed_hosts": ["10.0.0.5"],
    "dragonfly_maxmemory": "1G",
    "dragonfly_bind_address": "127.0.0.1",  # normally from gathered facts
}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A local HTTP server with a tarball (the role only needs its bytes for checksum checks)."""
    root = tmp_path_factory.mktemp("artifacts")
    (root / "dragonfly-x86_64.tar.gz").write_bytes(b"not really a tarball")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": "http://127.0.0.1:%d" % server.server_address[1], "dir": root,
           "sha": hashlib.sha256(b"not really a tarball").hexdigest()}
    server.shutdown()


def run_role(tmp_path, extra):
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable},
             "roles": [{"role": "talentmesh.mail.dragonfly"}]}]
    (tmp_path / "play.json").write_text(json.dumps(play))
    variables = dict(GOOD, dragonfly_download_dir=str(tmp_path / "dl"), dragonfly_install_dir=str(tmp_path / "opt"),
                     dragonfly_config_dir=str(tmp_path / "etc"), dragonfly_data_dir=str(tmp_path / "data"))
    variables.update(extra)
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"),
               ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", "@" + str(tmp_path / "vars.json"), str(tmp_path / "play.json")],
                          env=env, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("extra,needle", [
    ({"dragonfly_requirepass": ""}, "dragonfly_requirepass is missing"),
    ({"dragonfly_allowed_hosts": []}, "dragonfly_allowed_hosts must list"),
    ({"dragonfly_maxmemory": "lots"}, "dragonfly_maxmemory 'lots' is not a size"),
    ({"dragonfly_artifact_sha256": "abc"}, "dragonfly_artifact_sha256 must be the 64-hex-digit"),
])
def test_invalid_input_fails_first(tmp_path, artifacts, extra, needle):
    extra = dict({"dragonfly_artifact_url": artifacts["url"] + "/dragonfly-x86_64.tar.gz",
                  "dragonfly_artifact_sha256": artifacts["sha"]}, **extra)
    rc, out = run_role(tmp_path, extra)
    assert rc != 0 and needle in out, out[-3000:]
    assert not (tmp_path / "opt").exists() and not (tmp_path / "dl").exists()
    assert "a-long-enough-test-password" not in out


def test_unreachable_artifact_url(tmp_path, artifacts):
    rc, out = run_role(tmp_path, {"dragonfly_artifact_url": artifacts["url"] + "/missing.tar.gz",
                                  "dragonfly_artifact_sha256": artifacts["sha"]})
    assert rc != 0 and "dragonfly_artifact_url" in out and "is not reachable" in out, out[-3000:]
    assert not (tmp_path / "dl").exists()


def test_checksum_mismatch_installs_nothing(tmp_path, artifacts):
    rc, out = run_role(tmp_path, {"dragonfly_artifact_url": artifacts["url"] + "/dragonfly-x86_64.tar.gz",
                                  "dragonfly_artifact_sha256": "0" * 64})
    assert rc != 0 and "did not match dragonfly_artifact_sha256" in out, out[-3000:]
    assert not list((tmp_path / "dl").glob("*.tar.gz"))
    assert not (tmp_path / "opt").exists()


def test_local_artifact_checksum_mismatch(tmp_path, artifacts):
    rc, out = run_role(tmp_path, {"dragonfly_artifact_path": str(artifacts["dir"] / "dragonfly-x86_64.tar.gz"),
                                  "dragonfly_artifact_sha256": "1" * 64})
    assert rc != 0 and "dragonfly_artifact_path" in out and "nothing was installed" in out, out[-3000:]
