"""Benchmark: provision accounts, domains and groups with stalwart_apply versus naive loops (see README.md)."""
import argparse
import base64
import hashlib
import json
import math
import os
import subprocess
import sys
import statistics
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
VENV_BIN = os.path.join(TOP, ".venv", "bin")
sys.path.insert(0, TOP)
from tests.stalwart_emulator.harness import EmulatorProcess  # noqa: E402  pylint: disable=wrong-import-position
ACCOUNTS_PER_DOMAIN = 500
GROUPS_PER_DOMAIN = 5


def password_hash():
    """One PBKDF2-SHA256 hash in PHC form, shared by every generated account."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", b"bench-password-not-secret", salt, 1000)
    return "$pbkdf2-sha256$i=1000,l=32$%s$%s" % (b64(salt), b64(digest))


def b64(raw):
    return base64.b64encode(raw).decode().rstrip("=")


def build_plan(n_accounts, tag):
    """NDJSON plan lines: domains, then groups, then users (parents first, as stalwart-cli expects)."""
    n_domains = max(1, math.ceil(n_accounts / ACCOUNTS_PER_DOMAIN))
    hashed = password_hash()
    domains, groups, users, accounts = {}, {}, {}, []
    for d in range(n_domains):
        domains["dom-%d" % d] = {"name": "d%d-%s.example.com" % (d, tag)}
        for g in range(GROUPS_PER_DOMAIN):
            groups["grp-%d-%d" % (d, g)] = {"@type": "Group", "name": "team%d" % g, "domainId": "#dom-%d" % d}
    for i in range(n_accounts):
        d = i // ACCOUNTS_PER_DOMAIN
        local = "user%05d" % i
        users["usr-%d" % i] = {
            "@type": "User", "name": local, "domainId": "#dom-%d" % d,
            "description": "Bench User %d" % i,
            "credentials": {"0": {"@type": "Password", "secret": hashed}},
            "memberGroupIds": {"#grp-%d-%d" % (d, i % GROUPS_PER_DOMAIN): True},
        }
        accounts.append({"email": "%s@%s" % (local, domains["dom-%d" % d]["name"]), "group": "team%d" % (i % GROUPS_PER_DOMAIN),
                         "domain": domains["dom-%d" % d]["name"], "local": local, "description": "Bench User %d" % i})
    ops = [
        {"@type": "upsert", "object": "Domain", "matchOn": ["name"], "value": domains},
        {"@type": "upsert", "object": "Account", "matchOn": ["name", "domainId"], "value": groups},
        {"@type": "upsert", "object": "Account", "matchOn": ["name", "domainId"], "value": users},
    ]
    return ops, accounts, hashed, n_domains


def set_calls_needed(n_objects_by_type, max_set):
    return sum(math.ceil(n / max_set) for n in n_objects_by_type.values())


def floor_requests(n_objects_by_type, limits, writes, read_first):
    """The fewest HTTP requests the protocol allows: the session, one request reading every type of an empty server
    (if the client reads before writing), or query+get pairs per maxObjectsInGet page of a full one, and the /set
    calls packed maxCallsInRequest to a request."""
    max_calls, max_get, max_set = limits
    out = 1
    if writes:
        out += math.ceil(set_calls_needed(n_objects_by_type, max_set) / max_calls) + (1 if read_first else 0)
    else:
        out += math.ceil(sum(2 * max(1, math.ceil(n / max_get)) for n in n_objects_by_type.values()) / max_calls)
    return out


class FloorClient:
    """The protocol floor as a client: session, one read of every type, then only the /set calls (creation ids carried
    between requests by createdIds) - no plan engine, no Ansible."""

    def __init__(self, emu):
        self.emu = emu
        self.auth = emu.auth_header()

    def post(self, body):
        req = urllib.request.Request(self.emu.url + "/jmap", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": self.auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as resp:
            return json.loads(resp.read())

    def run(self, ops, limits):
        max_calls, dummy, max_set = limits
        req = urllib.request.Request(self.emu.url + "/jmap/session", headers={"Authorization": self.auth})
        with urllib.request.urlopen(req, timeout=60) as resp:
            json.loads(resp.read())
        using = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]
        types = sorted({"x:" + op["object"] for op in ops})
        reads = []
        for n, obj_type in enumerate(types):
            reads += [[obj_type + "/query", {"filter": {}}, "q%d" % n],
                      [obj_type + "/get", {"#ids": {"resultOf": "q%d" % n, "name": obj_type + "/query", "path": "/ids"}}, "g%d" % n]]
        self.post({"using": using, "methodCalls": reads})
        calls = []
        for op in ops:
            items = list(op["value"].items())
            for i in range(0, len(items), max_set):
                calls.append(["x:%s/set" % op["object"], {"create": dict(items[i:i + max_set])}, "s%d" % len(calls)])
        created = {}
        for i in range(0, len(calls), max_calls):
            resp = self.post({"using": using, "methodCalls": calls[i:i + max_calls], "createdIds": created})
            created = resp["createdIds"]
            for name, args, dummy in resp["methodResponses"]:
                assert name != "error" and not args.get("notCreated"), (name, str(args)[:500])


def run_playbook(workdir, name, play, extra):
    path = os.path.join(workdir, name + ".yml")
    with open(path, "w") as handle:
        json.dump(play, handle)
    extra_path = os.path.join(workdir, name + "-vars.json")
    with open(extra_path, "w") as handle:
        json.dump(extra, handle)
    os.chmod(extra_path, 0o600)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"),
               ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    start = time.perf_counter()
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", "@" + extra_path, path], env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError("%s failed (rc %d):\n%s\n%s" % (name, proc.returncode, proc.stdout[-4000:], proc.stderr[-2000:]))
    return elapsed


def connection(emu):
    return {"url": emu.url, "username": emu.user, "password": emu.password}


def play(tasks, module_defaults=True):
    body = {"name": "bench", "hosts": "localhost", "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable}, "tasks": tasks}
    if module_defaults:
        body["module_defaults"] = {"group/talentmesh.mail.stalwart": "{{ stalwart_conn }}"}
    return [body]


def counted(emu):
    """The emulator's counters without the GET /emulator/stats that reads them (it counts itself)."""
    stats = emu.stats()
    http = sum(stats.get("http", {}).values()) - 1
    writes = sum(count for method, count in stats.get("methods", {}).items() if method.endswith("/set"))
    return http, writes, sum(stats.get("objects", {}).values())


def measure(emu, workdir, name, tasks, extra, n_objects, limits, module_defaults=True):
    emu.reset_stats()
    seconds = run_playbook(workdir, name, play(tasks, module_defaults), dict(extra, stalwart_conn=connection(emu)))
    http, writes, objects = counted(emu)
    return {"run": name, "seconds": round(seconds, 2), "http_requests": http, "set_calls": writes,
            "objects_written": objects, "floor_http_requests": floor_requests(n_objects, limits, writes > 0, read_first=False)}


def startup_seconds(emu, workdir):
    """Playbook start-up: a one-task run (stalwart_info) against the same server."""
    return run_playbook(workdir, "startup", play([{"name": "one task", "talentmesh.mail.stalwart_info": {}}]),
                        {"stalwart_conn": connection(emu)})


def pairs(workdir, n, count):
    """`count` pairs of (stalwart_apply converging n accounts, the floor client doing the same), each on a fresh
    emulator; returns per-pair figures and the median ratio with playbook start-up subtracted."""
    ops, dummy, dummy2, dummy3 = build_plan(n, "pair")
    plan_path = os.path.join(workdir, "plan-pair-%d.ndjson" % n)
    with open(plan_path, "w") as handle:
        handle.write("\n".join(json.dumps(op) for op in ops) + "\n")
    task = [{"name": "apply", "talentmesh.mail.stalwart_apply": {"src": plan_path}}]
    rows = []
    for i in range(count):
        emu = EmulatorProcess(workdir)
        try:
            limits = emu.limits()
            apply_s = run_playbook(workdir, "pair-apply-%d" % i, play(task), {"stalwart_conn": connection(emu)})
            start_s = startup_seconds(emu, workdir)
        finally:
            emu.stop()
        emu = EmulatorProcess(workdir)
        try:
            emu.reset_stats()
            begin = time.perf_counter()
            FloorClient(emu).run(ops, limits)
            floor_s = time.perf_counter() - begin
            floor_http = counted(emu)[0]
        finally:
            emu.stop()
        rows.append({"apply": round(apply_s, 3), "startup": round(start_s, 3), "floor": round(floor_s, 3),
                     "floor_http_requests": floor_http, "ratio": round(apply_s / floor_s, 3),
                     "ratio_without_startup": round((apply_s - start_s) / floor_s, 3)})
    return rows, statistics.median(r["ratio_without_startup"] for r in rows), statistics.median(r["ratio"] for r in rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--skip-loops", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--pairs", type=int, default=5, help="apply/floor pairs at 10,000 accounts (0: none)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="tm-bench-") as workdir:
        for n in sizes:
            emu = EmulatorProcess(workdir)
            try:
                limits = emu.limits()
                ops, _accounts, _hashed, n_domains = build_plan(n, "a%d" % n)
                plan_path = os.path.join(workdir, "plan-%d.ndjson" % n)
                with open(plan_path, "w") as handle:
                    handle.write("\n".join(json.dumps(op) for op in ops) + "\n")
                counts = {"Domain": n_domains, "Account": n + n_domains * GROUPS_PER_DOMAIN}
                task = [{"name": "apply", "talentmesh.mail.stalwart_apply": {"src": plan_path}}]
                label = "%dk" % (n // 1000) if n >= 1000 else str(n)
                results.append(measure(emu, workdir, "apply-" + label, task, {}, counts, limits))
                results.append(measure(emu, workdir, "apply-%s-rerun" % label, task, {}, counts, limits))
            finally:
                emu.stop()
        if not args.skip_loops:
            n = 1000
            ops, accounts, hashed, n_domains = build_plan(n, "loop")
            domains = sorted({a["domain"] for a in accounts})
            counts = {"Domain": n_domains, "Account": n + n_domains * GROUPS_PER_DOMAIN}
            emu = EmulatorProcess(workdir)
            try:
                limits = emu.limits()
                setup = [{"name": "domains and groups", "talentmesh.mail.stalwart_apply": {"plan": ops[:2]}}]
                run_playbook(workdir, "loop-setup", play(setup), {"stalwart_conn": connection(emu)})
                tasks = [{"name": "account", "talentmesh.mail.stalwart_account": {
                    "email": "{{ item.email }}", "description": "{{ item.description }}",
                    "user_password": hashed, "member_of": ["{{ item.group }}"]},
                    "loop": "{{ accounts }}", "no_log": True}]
                results.append(measure(emu, workdir, "object-loop-1k", tasks, {"accounts": accounts}, counts, limits))
            finally:
                emu.stop()
            emu = EmulatorProcess(workdir)
            try:
                limits = emu.limits()
                run_playbook(workdir, "uri-setup", play(setup), {"stalwart_conn": connection(emu)})
                auth = {"url_username": emu.user, "url_password": emu.password, "force_basic_auth": True,
                        "method": "POST", "body_format": "json", "url": emu.url + "/jmap"}
                using = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]
                tasks = [
                    {"name": "look up domain ids", "ansible.builtin.uri": dict(auth, body={"using": using, "methodCalls": [
                        ["x:Domain/query", {"filter": {}}, "q"],
                        ["x:Domain/get", {"#ids": {"resultOf": "q", "name": "x:Domain/query", "path": "/ids"},
                                          "properties": ["name"]}, "g"]]}), "register": "doms", "no_log": True},
                    {"name": "domain map", "ansible.builtin.set_fact": {
                        "domain_ids": "{{ doms.json.methodResponses[1][1].list | items2dict(key_name='name', value_name='id') }}"}},
                    {"name": "account", "ansible.builtin.uri": dict(auth, body={"using": using, "methodCalls": [
                        ["x:Account/set", {"create": {"a": {
                            "@type": "User", "name": "{{ item.local }}", "domainId": "{{ domain_ids[item.domain] }}",
                            "description": "{{ item.description }}",
                            "credentials": {"0": {"@type": "Password", "secret": hashed}}}}}, "s"]]}),
                     "loop": "{{ accounts }}", "no_log": True},
                ]
                results.append(measure(emu, workdir, "uri-loop-1k", tasks, {"accounts": accounts, "domains": domains},
                                       counts, limits, module_defaults=False))
            finally:
                emu.stop()
        pair_rows = pairs(workdir, 10000, args.pairs) if args.pairs else None
    report(results, args.json, pair_rows)


def report(results, json_path, pair_rows=None):
    print("%-18s %9s %14s %12s %10s %16s" % ("run", "seconds", "http requests", "floor", "set calls", "objects written"))
    for r in results:
        row = (r["run"], r["seconds"], r["http_requests"], r["floor_http_requests"], r["set_calls"], r["objects_written"])
        print("%-18s %9.2f %14d %12d %10d %16d" % row)
    by = {r["run"]: r for r in results}
    checks = []
    if "apply-10k" in by:
        checks.append(("10,000 accounts converge in < 60 s", by["apply-10k"]["seconds"] < 60, "%.1f s" % by["apply-10k"]["seconds"]))
        rerun = by["apply-10k-rerun"]
        checks.append(("10,000 unchanged re-run < 10 s with zero writes", rerun["seconds"] < 10 and rerun["set_calls"] == 0,
                       "%.1f s, %d set calls" % (rerun["seconds"], rerun["set_calls"])))
    for loop in ("uri-loop-1k", "object-loop-1k"):
        if loop in by and "apply-1k" in by:
            ratio = by[loop]["seconds"] / by["apply-1k"]["seconds"]
            target = " (target >= 20x)" if loop == "uri-loop-1k" else ""
            checks.append(("stalwart_apply vs %s%s" % (loop, target), ratio >= 20 or loop != "uri-loop-1k", "%.1fx faster" % ratio))
    if pair_rows:
        rows, median_net, median_gross = pair_rows
        print("\n10,000 accounts, stalwart_apply vs the floor client (session, one read, %d set requests), fresh "
              "emulator each:" % (rows[0]["floor_http_requests"] - 2))
        print("%5s %9s %9s %9s %8s %22s" % ("pair", "apply s", "start-up", "floor s", "ratio", "ratio minus start-up"))
        for n, r in enumerate(rows, 1):
            print("%5d %9.2f %9.2f %9.2f %7.2fx %21.2fx" % (n, r["apply"], r["startup"], r["floor"], r["ratio"],
                                                            r["ratio_without_startup"]))
        checks.append(("10k converge <= 1.1x the floor minus start-up (median of %d)" % len(rows), median_net <= 1.1,
                       "%.2fx (%.2fx with start-up)" % (median_net, median_gross)))
    for what, ok, figure in checks:
        print("%-4s %-52s %s" % ("MET" if ok else "MISS", what, figure))
    if json_path:
        with open(json_path, "w") as handle:
            json.dump({"results": results, "pairs": pair_rows[0] if pair_rows else None,
                       "checks": [{"check": c, "met": ok, "figure": f} for c, ok, f in checks]}, handle, indent=2)


if __name__ == "__main__":
    main()
