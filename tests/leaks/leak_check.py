"""Secret-leak check: run a converge at -vvv with known secret values and look for them everywhere they must not be.

Known secrets are the lab's generated secrets (every file in --secrets-dir) and the private keys in --ca-dir. The
check fails when any of them appears in:
  - the converge's output (-vvv),
  - the arguments of any process on the controller or on any host (one `ps` of this machine every 0.1 s during the
    converge sees both: the hosts are rootful podman containers here; and a `ps` inside each host after it),
  - a file on any host that users other than root and the file's group can read (mode o+r), under the paths where
    deployments write (/etc, /opt, /usr/local, /var/lib, /var/cache, /var/log, /srv, /run, /tmp, /home, /root),
  - the journal of any host.
A secret counts as found as it is and base64-encoded (at any of the three alignments inside a longer base64 text, as
slurp, copy or a Kubernetes Secret would carry it). Hosts are the podman containers of the inventory given with -i (by
inventory name). Prints one line per hit, naming the task a hit in the output belongs to, never the value, and a
summary; exit status 1 on any hit.

Usage: leak_check.py --secrets-dir DIR [--ca-dir DIR] -- ansible-playbook -i INVENTORY site.yml [args...]
"""
import argparse
import base64
import json
import os
import re
import subprocess
import sys
import threading
import time

SEARCH_ROOTS = ["/etc", "/opt", "/usr/local", "/var/lib", "/var/cache", "/var/log", "/srv", "/run", "/tmp", "/home", "/root"]
MIN_SECRET_LENGTH = 8
# Every process's full command line on a host, one a line (from /proc where the image has no ps).
HOST_PS = "ps -ww -eo args 2>/dev/null || for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null"


def known_secrets(secrets_dir, ca_dir):
    secrets = {}
    for name in sorted(os.listdir(secrets_dir)):
        path = os.path.join(secrets_dir, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                value = handle.read().split(" salt=")[0].strip()
            if len(value) >= MIN_SECRET_LENGTH:
                secrets["secret " + name] = value
    if ca_dir and os.path.isdir(ca_dir):
        for name in sorted(os.listdir(ca_dir)):
            if name.endswith(".key"):
                with open(os.path.join(ca_dir, name), encoding="utf-8") as handle:
                    body = [line for line in handle.read().splitlines() if line and not line.startswith("-----")]
                if body:
                    # The key's first base64 line is long and random enough to identify it anywhere.
                    secrets["private key " + name] = body[0]
    return secrets


def forms(value):
    """The texts that give a secret away: the value, and the part of its base64 encoding that does not depend on the
    bytes around it, for each of the three positions a value can start at relative to base64's 3-byte groups."""
    raw = value.encode("utf-8")
    found = [("plain", value)]
    for skip in range(3):
        whole = (len(raw) - skip) // 3 * 3
        if whole >= 6:
            found.append(("base64", base64.b64encode(raw[skip:skip + whole]).decode("ascii")))
    return found


def task_of(text, position):
    """The ansible-playbook TASK/PLAY header a position of its output belongs to."""
    for marker in ("TASK [", "PLAY ["):
        start = text.rfind(marker, 0, position)
        if start >= 0:
            return text[start:text.find("]", start) + 1]
    return "before the first play"


def hits_in(text, secrets, where, tasks=False):
    """One line per secret found in text (value never shown): how, how often and, with tasks, in which tasks."""
    hits = []
    for label, value in secrets.items():
        for form, needle in forms(value):
            positions = [m.start() for m in re.finditer(re.escape(needle), text)]
            if not positions:
                continue
            line = "%s: %s found (%s, %d times)" % (where, label, form, len(positions))
            if tasks:
                line += " in " + ", ".join(sorted(set(task_of(text, p) for p in positions)))
            hits.append(line)
    return hits


def masked(text, secrets):
    """text with every form of every known secret replaced by its label (for showing a failed converge's output)."""
    for label, value in secrets.items():
        for _form, needle in forms(value):
            text = text.replace(needle, "<%s>" % label)
    return text


def inventory_hosts(cmd):
    inventory = cmd[cmd.index("-i") + 1]
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", inventory, "--list"],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    return sorted(set(data.get("_meta", {}).get("hostvars", {})))


def podman(host, script, stdin=None):
    proc = subprocess.run(["podman", "exec", "-i", host, "sh", "-c", script], input=stdin, capture_output=True, text=True,
                          check=False)
    return proc.stdout


class Sampler(threading.Thread):
    """Collects every distinct process command line on the controller and the hosts while the converge runs.

    The hosts are rootful podman containers of this machine: their processes are this machine's processes, so one
    `ps` here every 0.1 s sees the controller's and every host's command lines at once (each attributed by its
    libpod cgroup), at a fraction of the cost of a `podman exec` per host and round. sample_hosts() adds one `ps`
    inside each host (its own view, after the converge)."""

    def __init__(self, hosts):
        super().__init__(daemon=True)
        self.hosts = hosts
        self.stop = threading.Event()
        self.seen = {}
        self.containers = container_ids(hosts)

    def sample(self):
        # -ww: full command lines (ps cuts them at $COLUMNS otherwise, and a secret at the end would be missed).
        out = subprocess.run(["ps", "-ww", "-eo", "cgroup:1024,args", "--no-headers"], capture_output=True, text=True,
                             check=False).stdout
        for line in out.splitlines():
            cgroup, dummy, args = line.strip().partition(" ")
            where = next((name for cid, name in self.containers.items() if "libpod-" + cid in cgroup), "controller")
            self.seen.setdefault(where, set()).add(args.strip())

    def sample_hosts(self):
        for host in self.hosts:
            self.seen.setdefault(host, set()).update(podman(host, HOST_PS).splitlines())

    def run(self):
        deadline = time.monotonic() + 3600
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.sample()
            self.stop.wait(0.1)


def container_ids(hosts):
    """Full container id -> inventory name, for the hosts that are podman containers here."""
    ids = {}
    for host in hosts:
        proc = subprocess.run(["podman", "inspect", "--format", "{{.Id}}", host], capture_output=True, text=True,
                              check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            ids[proc.stdout.strip()] = host
    return ids


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets-dir", required=True)
    parser.add_argument("--ca-dir")
    parser.add_argument("--expect-unchanged", action="store_true",
                        help="the converge is also the idempotence check: fail unless its recap shows changed=0 on "
                             "every host (the changed tasks are named)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = [c for c in args.cmd if c != "--"]
    secrets = known_secrets(args.secrets_dir, args.ca_dir)
    if not secrets:
        print("leak-check: no known secrets in %s: nothing to look for" % args.secrets_dir)
        return 2
    hosts = inventory_hosts(cmd)
    sampler = Sampler(hosts)
    sampler.start()
    proc = subprocess.run(cmd + ["-vvv"], capture_output=True, text=True, check=False)
    sampler.stop.set()
    sampler.join()
    sampler.sample()
    sampler.sample_hosts()
    output = proc.stdout + proc.stderr
    hits = []
    if proc.returncode != 0:
        print(masked(output, secrets)[-4000:])
        print("leak-check: the converge failed (rc %d)" % proc.returncode)
        return 1
    hits += hits_in(output, secrets, "converge output (-vvv)", tasks=True)
    for where, lines in sorted(sampler.seen.items()):
        hits += hits_in("\n".join(lines), secrets, "process arguments on " + where)
    roots = " ".join(SEARCH_ROOTS)
    for host in hosts:
        # The patterns go in on stdin to a root-only file (never argv), which is removed again.
        files = podman(host, "umask 077; cat > /root/.leak-patterns; find %s -xdev -type f -perm -o=r -size -2M 2>/dev/null | "
                             "xargs -r grep -l -F -f /root/.leak-patterns 2>/dev/null; rm -f /root/.leak-patterns" % roots,
                       stdin="\n".join(needle for value in secrets.values() for _form, needle in forms(value)) + "\n")
        for path in files.split():
            content = podman(host, "cat %s" % path)
            hits += hits_in(content, secrets, "world-readable file %s:%s" % (host, path))
        hits += hits_in(podman(host, "journalctl --no-pager -o cat 2>/dev/null"), secrets, "journal of " + host)
    for line in hits:
        print("LEAK " + line)
    unchanged = True
    if args.expect_unchanged:
        unchanged = report_changes(masked(output, secrets))
    print("leak-check: %d known secrets, %d hosts, %d output lines, %d process command lines sampled: %d leaks"
          % (len(secrets), len(hosts), output.count("\n"), sum(len(v) for v in sampler.seen.values()), len(hits)))
    return 1 if hits or not unchanged else 0


RECAP_LINE = re.compile(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)", re.M)


def report_changes(output):
    """Idempotence of the converge: every host of its PLAY RECAP with changed=0, else the changed tasks are printed."""
    output = re.sub(r"\x1b\[[0-9;]*m", "", output)  # ANSIBLE_FORCE_COLOR (Molecule sets it)
    if "PLAY RECAP" not in output:
        print("idempotence: no PLAY RECAP in the converge output")
        return False
    recap = dict(RECAP_LINE.findall(output[output.rindex("PLAY RECAP"):]))
    changed = {host: int(n) for host, n in recap.items() if int(n)}
    task = None
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line.split("]")[0][6:]
        elif line.startswith("changed: [") and changed:
            print("idempotence: changed on %s: %s" % (line.split("]")[0][10:], task))
    print("idempotence: %d hosts in the recap, %d with changes%s" % (len(recap), len(changed),
          "" if not changed else ": " + ", ".join("%s=%d" % item for item in sorted(changed.items()))))
    return not changed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
