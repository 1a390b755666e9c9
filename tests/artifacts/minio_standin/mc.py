"""TEST STAND-IN for MinIO's client `mc`: NOT mc.

Provides the mc commands the talentmesh.mail minio role runs, with mc's argument shapes and --json output:

    mc --version                                (global flags: --json --quiet --no-color --config-dir DIR)
    mc ls ALIAS --json                          mc mb ALIAS/BUCKET
    mc admin policy create ALIAS NAME FILE      mc admin policy info ALIAS NAME --json
    mc admin user add ALIAS ACCESS [SECRET]     mc admin user info ALIAS ACCESS --json
    mc admin policy attach ALIAS POLICY --user ACCESS

ALIAS comes, as with mc, from the config directory's config.json (`aliases.<ALIAS>.url/accessKey/secretKey`,
--config-dir or ~/.mc) or from MC_HOST_<ALIAS>=https://ACCESS:SECRET@HOST:PORT in the environment; the root
credentials in it must match the stand-in server's. As with mc, `admin user add` without SECRET reads it from
standard input (one line; mc prompts when stdin is a terminal). For the tests, every invocation's arguments are
appended to MC_STANDIN_ARGV_LOG (default /var/log/mc-standin-argv.log) when that file's directory exists, so a test
can prove that no secret was ever on a command line. It runs ON THE SERVER HOST and talks to the MinIO stand-in's
SeaweedFS through `weed shell` on loopback -- not over MinIO's admin API or S3, so TLS and mc's wire protocol are not
exercised. Policies are stored with `s3.policy`; attaching one translates its statements into SeaweedFS's bucket-scoped
actions (s3:GetObject -> Read, s3:PutObject/DeleteObject -> Write, s3:ListBucket -> List, *Tagging -> Tagging).
"""
import json
import os
import re
import subprocess
import sys
from urllib.parse import unquote, urlsplit

VERSION = "RELEASE.2025-08-13T08-35-41Z"
WEED = os.environ.get("MINIO_STANDIN_WEED", "/usr/local/lib/minio-standin/weed")
STANDIN_PORTS = {"master": 19340, "filer": 19342}
ACTIONS = {"s3:GetObject": "Read", "s3:GetObjectVersion": "Read", "s3:PutObject": "Write",
           "s3:DeleteObject": "Write", "s3:AbortMultipartUpload": "Write", "s3:ListBucket": "List",
           "s3:ListBucketMultipartUploads": "List", "s3:ListMultipartUploadParts": "List",
           "s3:GetObjectTagging": "Tagging", "s3:PutObjectTagging": "Tagging", "s3:*": "Admin"}


class McError(Exception):
    pass


def out(payload, as_json):
    print(json.dumps(payload) if as_json else payload.get("message", payload))


def shell(command):
    proc = subprocess.run(
        [WEED, "shell", "-master=127.0.0.1:%d" % STANDIN_PORTS["master"],
         "-filer=127.0.0.1:%d" % STANDIN_PORTS["filer"]],
        input=command + "\n", capture_output=True, text=True, timeout=60, check=False)
    text = proc.stdout
    if proc.returncode != 0 or re.search(r"^error:", text, re.MULTILINE):
        raise McError("weed shell %r failed: %s %s" % (command.split()[0], text.strip()[-300:], proc.stderr[-300:]))
    return text


CONFIG_DIR = [os.path.expanduser("~/.mc")]
ARGV_LOG = os.environ.get("MC_STANDIN_ARGV_LOG", "/var/log/mc-standin-argv.log")


def alias(name):
    try:
        with open(os.path.join(CONFIG_DIR[0], "config.json"), encoding="utf-8") as handle:
            entry = json.load(handle).get("aliases", {}).get(name)
    except (OSError, ValueError):
        entry = None
    if entry:
        return entry.get("accessKey", ""), entry.get("secretKey", "")
    url = os.environ.get("MC_HOST_%s" % name)
    if not url:
        raise McError("alias %s is not defined (config.json in %s, or MC_HOST_%s)" % (name, CONFIG_DIR[0], name))
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")


def iam():
    text = shell("s3.iam.export")
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


def check_root(name):
    user, password = alias(name)
    for ident in iam().get("identities", []):
        if "Admin" in ident.get("actions", []):
            for cred in ident.get("credentials", []):
                if cred.get("accessKey") == user and cred.get("secretKey") == password:
                    return
    raise McError("The Access Key Id you provided does not exist in our records (alias %s)." % name)


def find_user(access):
    for ident in iam().get("identities", []):
        if ident.get("name") == access:
            return ident
    return None


def policy_doc(name):
    try:
        text = shell("s3.policy -get -name %s" % name)
    except McError:
        return None
    if "{" not in text:
        return None
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


def policy_actions(doc):
    actions = set()
    for statement in doc.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        wanted = statement.get("Action", [])
        resources = statement.get("Resource", [])
        for action in [wanted] if isinstance(wanted, str) else wanted:
            for resource in [resources] if isinstance(resources, str) else resources:
                bucket = resource.replace("arn:aws:s3:::", "").split("/")[0]
                if action in ACTIONS and bucket and bucket != "*":
                    actions.add("%s:%s" % (ACTIONS[action], bucket))
    return sorted(actions)


def run(argv):
    as_json = "--json" in argv
    args = []
    pending = list(argv)
    while pending:
        arg = pending.pop(0)
        if arg in ("--config-dir", "-C"):
            CONFIG_DIR[0] = pending.pop(0)
        elif arg not in ("--json", "--quiet", "--no-color", "--disable-pager"):
            args.append(arg)
    if args[:1] in (["--version"], ["-v"]):
        print("mc version %s (talentmesh.mail TEST STAND-IN over SeaweedFS; not mc)" % VERSION)
        return 0
    if args[:1] == ["ls"] and len(args) == 2:
        check_root(args[1])
        for line in shell("s3.bucket.list").splitlines():
            if line.strip() and not line.startswith(">"):
                out({"status": "success", "type": "folder", "key": line.split()[0] + "/"}, as_json)
        return 0
    if args[:1] == ["mb"] and len(args) == 2 and "/" in args[1]:
        name, bucket = args[1].split("/", 1)
        check_root(name)
        shell("s3.bucket.create -name %s" % bucket)
        out({"status": "success", "bucket": args[1], "message": "Bucket created successfully `%s`." % args[1]}, as_json)
        return 0
    if args[:3] == ["admin", "policy", "create"] and len(args) == 6:
        check_root(args[3])
        with open(args[5], encoding="utf-8") as handle:
            json.load(handle)
        shell("s3.policy -put -name %s -file %s" % (args[4], args[5]))
        out({"status": "success", "policy": args[4], "message": "Created policy `%s` successfully." % args[4]}, as_json)
        return 0
    if args[:3] == ["admin", "policy", "info"] and len(args) == 5:
        check_root(args[3])
        doc = policy_doc(args[4])
        if doc is None:
            raise McError("The canned policy does not exist. (Specified canned policy does not exist)")
        out({"status": "success", "policy": args[4], "policyInfo": {"PolicyName": args[4], "Policy": doc}}, as_json)
        return 0
    if args[:3] == ["admin", "user", "add"] and len(args) in (5, 6):
        check_root(args[3])
        access = args[4]
        secret = args[5] if len(args) == 6 else sys.stdin.readline().rstrip("\n")
        if not secret:
            raise McError("no secret key given (argument or standard input)")
        ident = find_user(access)
        if ident and any(c.get("secretKey") != secret for c in ident.get("credentials", [])):
            shell("s3.configure -user=%s -access_key=%s -delete -apply" % (access, access))
        shell("s3.configure -user=%s -access_key=%s -secret_key=%s -apply" % (access, access, secret))
        out({"status": "success", "accessKey": access, "userStatus": "enabled",
             "message": "Added user `%s` successfully." % access}, as_json)
        return 0
    if args[:3] == ["admin", "user", "info"] and len(args) == 5:
        check_root(args[3])
        ident = find_user(args[4])
        if ident is None:
            raise McError("The specified user does not exist. (Specified user does not exist)")
        out({"status": "success", "accessKey": args[4], "policyName": ",".join(ident.get("policyNames") or []),
             "userStatus": "disabled" if ident.get("disabled") else "enabled"}, as_json)
        return 0
    if args[:3] == ["admin", "policy", "attach"] and len(args) == 7 and args[5] == "--user":
        check_root(args[3])
        doc = policy_doc(args[4])
        ident = find_user(args[6])
        if doc is None or ident is None:
            raise McError("policy %s or user %s does not exist" % (args[4], args[6]))
        names = sorted(set(ident.get("policyNames") or []) | {args[4]})
        actions = set(ident.get("actions") or [])
        for name in names:
            actions |= set(policy_actions(policy_doc(name) or {}))
        shell("s3.configure -user=%s -actions=%s -policies=%s -apply" % (args[6], ",".join(sorted(actions)), ",".join(names)))
        out({"status": "success", "policies": args[4], "user": args[6],
             "message": "Attached Policies: [%s] To User: %s" % (args[4], args[6])}, as_json)
        return 0
    raise McError("stand-in mc does not provide: mc %s" % " ".join(args[:3]))


def log_argv():
    if os.path.isdir(os.path.dirname(ARGV_LOG)):
        with open(ARGV_LOG, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(sys.argv[1:]) + "\n")


def main():
    log_argv()
    try:
        return run(sys.argv[1:])
    except (McError, OSError, ValueError, subprocess.SubprocessError) as exc:
        if "--json" in sys.argv:
            print(json.dumps({"status": "error", "error": {"message": str(exc)}}))
        else:
            sys.stderr.write("mc: <ERROR> %s\n" % exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
