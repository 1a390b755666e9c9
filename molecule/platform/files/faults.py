"""Fault tests of the platform scenario, run by verify.yml on the converged lab (controller side):

  rolling  A Stalwart node is stopped (and kept from starting) while a rolling restart runs: the play halts without
           restarting another node, two nodes stay ready, and the next normal run starts the stopped node again.
  pgrestart  PostgreSQL is down when the Stalwart role's configuration step (stalwart_apply through node 1) begins
           and comes back 4 s into it: the module's retries carry it, the run succeeds.
  interrupt  A converge of the Stalwart play (site.yml --tags stalwart, with a rolling restart) is interrupted like
           Ctrl-C in the middle and run again: it finishes, every node restarted one at a time with at least two
           ready at every sample, with the same principals and the same DKIM keys as before. (The whole site.yml's
           unchanged second run is verify's leak and idempotence check.)

Every playbook runs with Molecule's inventory and configuration, as a user would run site.yml. Prints one line per
result; exit status 1 on the first failure (with the tail of the playbook's output). No secret is printed: the API
key is read from its 0600 file and sent only in a request header.
Usage: faults.py TOP EXTRA_ARGS... (arguments passed on to every ansible-playbook run, e.g. -e mail_s3_backend=minio)
"""
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

TOP = sys.argv[1]
EXTRA = sys.argv[2:]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
BIN = os.path.dirname(sys.executable)


def inventory():
    out = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", INVENTORY, "--list"], capture_output=True,
                         text=True, check=True, env=ansible_env()).stdout
    return json.loads(out)


def ansible_env():
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(EPHEMERAL, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_FORCE_COLOR="0", PYTHONUNBUFFERED="1", TALENTMESH_TOP=TOP)


def sh(host, script):
    return subprocess.run(["podman", "exec", host, "sh", "-c", script], capture_output=True, text=True, check=False)


INV = inventory()
NODES = INV["stalwart"]["hosts"]
DB = INV["postgresql"]["hosts"][0]
ADDRESS = {n: sh(n, "hostname -I").stdout.split()[0] for n in NODES}
CA = ssl.create_default_context(cafile=os.path.join(TOP, ".cache", "lab", "ca", "ca.crt"))
KEY_FILE = os.path.join(TOP, ".cache", "lab", "secrets", "stalwart-api-key-" + NODES[0])
BROKEN = "/run/systemd/system/stalwart.service.d/99-fault-test.conf"


def ready(node, timeout=2):
    try:
        with urllib.request.urlopen("https://%s:8080/healthz/ready" % ADDRESS[node], context=CA, timeout=timeout) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def jmap_get(node, obj_type):
    with open(KEY_FILE, encoding="utf-8") as handle:
        key = handle.read().strip()
    body = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"],
                       "methodCalls": [["x:%s/get" % obj_type, {"ids": None}, "g"]]}).encode()
    req = urllib.request.Request("https://%s:8080/jmap" % ADDRESS[node], data=body, method="POST",
                                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=CA, timeout=15) as resp:
        return json.loads(resp.read())["methodResponses"][0][1]["list"]


def main_pid(node):
    return sh(node, "systemctl show -p MainPID --value stalwart").stdout.strip()


class Playbook:
    """ansible-playbook in the background; its output lines are kept with the time each arrived."""

    def __init__(self, *args):
        cmd = [os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY] + EXTRA + list(args) + [os.path.join(TOP, "site.yml")]
        self.proc = subprocess.Popen(cmd, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.time(), line))

    def wait_for(self, needle, timeout=900):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for stamp, line in list(self.lines):
                if needle in line:
                    return stamp
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.1)
        fail("never saw %r" % needle, self)
        return None

    def finish(self, timeout=1800):
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return rc

    def text(self):
        return "".join(line for dummy, line in self.lines)


def fail(message, playbook=None):
    print("FAIL %s" % message)
    if playbook is not None:
        print(playbook.text()[-6000:])
    sys.exit(1)


class Sampler:
    """How many nodes answer /healthz/ready, sampled continuously (time, count)."""

    def __init__(self):
        self.samples, self.stop = [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            results = []
            threads = [threading.Thread(target=lambda n=n: results.append(ready(n, timeout=1))) for n in NODES]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.samples.append((time.time(), sum(results)))
            time.sleep(0.2)

    def close(self):
        self.stop.set()
        self.thread.join()


def rolling():
    first, second, victim = NODES[0], NODES[1], NODES[-1]
    pid_first, pid_second = main_pid(first), main_pid(second)
    sampler = Sampler()
    run = Playbook("--tags", "stalwart", "-e", "stalwart_rolling_restart=true")
    deadline = time.time() + 600
    while main_pid(first) == pid_first and run.proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    if main_pid(first) == pid_first:
        sampler.close()
        fail("rolling: %s was never restarted" % first, run)
    # The fault: the last node stops and cannot start again, while the first node is being restarted.
    sh(victim, "mkdir -p %s && printf '[Service]\\nExecStartPre=/bin/false\\n' > %s && systemctl daemon-reload && "
               "systemctl stop stalwart" % (os.path.dirname(BROKEN), BROKEN))
    broken_at = time.time()
    rc = run.finish()
    sampler.close()
    out = run.text()
    if rc == 0:
        fail("rolling: the play went on with %s stopped" % victim, run)
    if "not restarting %s" % second not in out and "%s did not pass its gates" % victim not in out:
        fail("rolling: the play did not stop at the stopped node's gate", run)
    if main_pid(second) != pid_second:
        fail("rolling: %s was restarted while %s was down" % (second, victim), run)
    back = [t for t, count in sampler.samples if t > broken_at and count >= 2]
    after = [count for t, count in sampler.samples if back and t >= back[0]]
    if not back or min(after) < 2 or not (ready(first) and ready(second)):
        fail("rolling: fewer than two nodes ready after the fault: %s" % [c for t, c in sampler.samples if t > broken_at])
    print("ok rolling: the play halted (rc %d) with %s stopped; %d samples after the fault, at least %d nodes ready"
          % (rc, victim, len(after), min(after)))
    sh(victim, "rm -f %s && systemctl daemon-reload" % BROKEN)
    repair = Playbook("--tags", "stalwart")
    rc = repair.finish()
    if rc != 0 or not all(ready(n, timeout=5) for n in NODES):
        fail("rolling: the next run did not repair %s (rc %d)" % (victim, rc), repair)
    print("ok rolling: the next run started %s again; all %d nodes ready" % (victim, len(NODES)))


def pgrestart():
    """PostgreSQL is stopped before the configuration step begins and started only some seconds into it, so the step
    runs into the outage however fast the machine is (its first calls fail with serverFail and are retried)."""
    run = Playbook("--tags", "stalwart")
    run.wait_for("TASK [talentmesh.mail.stalwart : Give the gates the API key")
    down = sh(DB, "systemctl stop postgresql")
    stopped = time.time()
    if down.returncode != 0:
        fail("pgrestart: could not stop PostgreSQL: %s" % down.stderr)
    began = run.wait_for("TASK [talentmesh.mail.stalwart : Apply the configuration plan through node 1]")
    time.sleep(max(0.0, began + 4 - time.time()))
    started = time.time()  # PostgreSQL accepts connections before systemctl returns
    up = sh(DB, "systemctl start postgresql")
    rc = run.finish()
    if up.returncode != 0:
        fail("pgrestart: could not start PostgreSQL again: %s" % up.stderr)
    if rc != 0:
        fail("pgrestart: the run failed while PostgreSQL was down", run)
    done = [t for t, line in run.lines if "TASK [talentmesh.mail.stalwart : Report what the plan did per object type]" in line]
    if not (stopped < began < started) or not done or done[0] < started:
        fail("pgrestart: no outage inside the configuration step (stopped %.1f, step began %.1f, started %.1f)"
             % (stopped, began, started), run)
    print("ok pgrestart: PostgreSQL was down from %.1f s before the configuration step began until %.1f s into it; "
          "the step finished %.1f s after it came back; the run succeeded"
          % (began - stopped, started - began, done[0] - started))


def state():
    accounts = sorted((a["id"], a.get("name"), a.get("domainId")) for a in jmap_get(NODES[0], "Account"))
    domains = sorted((d["id"], d.get("name")) for d in jmap_get(NODES[0], "Domain"))
    dkim = sorted(json.dumps(s, sort_keys=True) for s in jmap_get(NODES[0], "DkimSignature"))
    return accounts, domains, dkim


def interrupt():
    before = state()
    # Interrupted: site.yml's Stalwart part (--tags stalwart: the plays before it would only take time, unchanged).
    run = Playbook("--tags", "stalwart", "-e", "stalwart_rolling_restart=true")
    run.wait_for("PLAY [Stalwart mail cluster")
    run.wait_for("TASK [talentmesh.mail.stalwart : Read the state of stalwart.service on")
    time.sleep(2)
    os.killpg(run.proc.pid, signal.SIGINT)
    try:
        rc = run.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(run.proc.pid, signal.SIGKILL)
        rc = run.proc.wait()
    if "PLAY RECAP" in run.text() and rc == 0:
        fail("interrupt: the converge finished before it could be interrupted", run)
    print("ok interrupt: converge interrupted inside the Stalwart play (rc %d)" % rc)
    # The re-run (the Stalwart part again) is also the rolling restart of the whole cluster (a restart interrupted before it ran is asked for
    # again, as an operator would): every node restarts, one at a time, and at least two answer at every sample.
    pids = {n: main_pid(n) for n in NODES}
    sampler = Sampler()
    again = Playbook("--tags", "stalwart", "-e", "stalwart_rolling_restart=true")
    rc = again.finish()
    sampler.close()
    if rc != 0:
        fail("interrupt: the re-run failed", again)
    counts = [count for dummy, count in sampler.samples]
    if any(main_pid(n) == pids[n] for n in NODES):
        fail("interrupt: the re-run's rolling restart did not restart every node", again)
    if len(counts) < 10 or min(counts) < len(NODES) - 1:
        fail("interrupt: fewer than %d nodes ready during the rolling restart: %s" % (len(NODES) - 1, counts))
    print("ok interrupt: the re-run restarted all %d nodes one at a time; %d samples, at least %d nodes ready"
          % (len(NODES), len(counts), min(counts)))
    after = state()
    if after != before:
        fail("interrupt: principals or DKIM keys differ after the re-run:\n%s\n%s" % (before, after))
    if not all(ready(n, timeout=5) for n in NODES):
        fail("interrupt: not every node ready after the re-run")
    print("ok interrupt: the re-run finished; %d accounts, %d domains, %d DKIM signatures unchanged"
          % (len(after[0]), len(after[1]), len(after[2])))


if __name__ == "__main__":
    for name in ("rolling", "pgrestart", "interrupt"):
        t0 = time.time()
        globals()[name]()
        print("   %s took %.0f s" % (name, time.time() - t0))
        sys.stdout.flush()
