"""Benchmark: provision accounts, domains and groups with stalwart_apply versus naive loops (see README.md)."""
import argparse
import base64
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time

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


def minimum_requests(n_objects_by_type, limits, writes):
    """Session + reads of every type (all objects, maxObjectsInGet per /get) + the writes, packed per request."""
    max_calls, max_get, max_set = limits
    get_calls = sum(max(1, math.ceil(n / max_get)) for n in n_objects_by_type.values())
    set_calls = sum(math.ceil(n / max_set) for n in n_objects_by_type.values()) if writes else 0
    return 1 + math.ceil(get_calls / max_calls) + math.ceil(set_calls / max_calls)


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


def measure(emu, workdir, name, tasks, extra, n_objects, limits, module_defaults=True):
    emu.reset_stats()
    seconds = run_playbook(workdir, name, play(tasks, module_defaults), dict(extra, stalwart_conn=connection(emu)))
    stats = emu.stats()
    writes = sum(count for method, count in stats.get("methods", {}).items() if method.endswith("/set"))
    http = sum(stats.get("http", {}).values())
    return {"run": name, "seconds": round(seconds, 2), "http_requests": http, "set_calls": writes,
            "objects_written": sum(stats.get("objects", {}).values()),
            "min_http_requests": minimum_requests(n_objects, limits, writes > 0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--skip-loops", action="store_true")
    parser.add_argument("--json")
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
    report(results, args.json)


def report(results, json_path):
    print("%-18s %9s %14s %12s %10s %16s" % ("run", "seconds", "http requests", "min needed", "set calls", "objects written"))
    for r in results:
        row = (r["run"], r["seconds"], r["http_requests"], r["min_http_requests"], r["set_calls"], r["objects_written"])
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
    for what, ok, figure in checks:
        print("%-4s %-52s %s" % ("MET" if ok else "MISS", what, figure))
    if json_path:
        with open(json_path, "w") as handle:
            json.dump({"results": results, "checks": [{"check": c, "met": ok, "figure": f} for c, ok, f in checks]}, handle, indent=2)


if __name__ == "__main__":
    main()
