"""Converge benchmark of the lab: the first converge of site.yml on new hosts, the unchanged re-run, their ratio
(target: the re-run takes at most a quarter of the first converge) and where the re-run's time goes (profile_tasks,
summed per task and per role). See bench/converge/README.md.

  bench/converge/run.py [-i INVENTORY] [--reuse] [--top N] [ansible-playbook args...]

Without --reuse the lab of INVENTORY (default inventories/lab) is destroyed and its hosts created again
(playbooks/lab-down.yml, lab-hosts.yml, lab-standins.yml: not timed) so the first converge starts from new hosts.
Logs: .cache/bench/converge-{first,rerun}.log. Exit status 1 when the re-run changes something or misses the target.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
TARGET = 0.25
PROFILE = re.compile(r"^(.*?) -{3,} (\d+\.\d+)s$")
RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def playbook(inventory, name, extra, log=None, profile=False):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"),
               CONTAINERS_CONF=os.path.join(TOP, "testbed", "containers.conf"))
    if profile:
        env.update(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="10000",
                   PROFILE_TASKS_SORT_ORDER="descending")
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", inventory] + extra + [os.path.join(TOP, name)]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.time() - t0
    out = proc.stdout + proc.stderr
    if log:
        os.makedirs(os.path.dirname(log), exist_ok=True)
        with open(log, "w", encoding="utf-8") as handle:
            handle.write(out)
    if proc.returncode != 0:
        print("bench: %s failed (rc %d); tail of its output:\n%s" % (name, proc.returncode, out[-4000:]))
        sys.exit(1)
    return seconds, out


def recap(out):
    text = out[out.rindex("PLAY RECAP"):]
    return {m.group(1): int(m.group(2)) for m in map(RECAP.match, text.splitlines()) if m}


def profile(out):
    tasks = []
    for line in out.splitlines():
        m = PROFILE.match(line.strip())
        if m and "PLAY RECAP" not in line:
            tasks.append((m.group(1).strip(), float(m.group(2))))
    return tasks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", default=os.path.join(TOP, "inventories", "lab"))
    parser.add_argument("--reuse", action="store_true", help="keep the existing hosts (the first run is then not a first converge)")
    parser.add_argument("--top", type=int, default=15)
    args, extra = parser.parse_known_args()
    logs = os.path.join(TOP, ".cache", "bench")
    if not args.reuse:
        print("bench: new lab hosts (lab-down, lab-hosts, lab-standins; not timed)")
        for name in ("playbooks/lab-down.yml", "playbooks/lab-hosts.yml", "playbooks/lab-standins.yml"):
            playbook(args.inventory, name, extra)
    first, first_out = playbook(args.inventory, "site.yml", extra, os.path.join(logs, "converge-first.log"), profile=True)
    rerun, rerun_out = playbook(args.inventory, "site.yml", extra, os.path.join(logs, "converge-rerun.log"), profile=True)
    changed = {host: n for host, n in recap(rerun_out).items() if n}
    ratio = rerun / first
    tasks = profile(rerun_out)
    roles = collections.Counter()
    for name, seconds in tasks:
        roles[name.split(" : ", 1)[0] if " : " in name else "(playbook)"] += seconds
    print("first converge   %7.1f s   (changed: %d tasks)" % (first, sum(recap(first_out).values())))
    print("unchanged re-run %7.1f s   (changed: %s)" % (rerun, changed or 0))
    print("ratio            %7.3f     target <= %.2f: %s" % (ratio, TARGET, "met" if ratio <= TARGET else "MISSED"))
    print("re-run time per role (profile_tasks, summed over tasks):")
    for name, seconds in roles.most_common():
        print("  %6.1f s  %4.1f%%  %s" % (seconds, 100 * seconds / rerun, name))
    print("slowest %d tasks of the re-run:" % args.top)
    for name, seconds in sorted(tasks, key=lambda t: -t[1])[:args.top]:
        print("  %6.1f s  %s" % (seconds, name))
    return 0 if not changed and ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
