"""Known-values scan of a rendered Kubernetes platform: a known secret may appear only in a Secret's data or stringData.

Known secrets are the same as the leak check's (tests/leaks/leak_check.py): the lab's generated secrets (every file in
--secrets-dir) and the private keys in --ca-dir, each as it is and base64-encoded. Every YAML document of every file
under the render directories is walked, every key and string checked; a document of kind Secret may carry a secret
only under data (base64; the decoded value is what counts) and stringData. Anything else (a ConfigMap, a Job's
environment or arguments, annotations, a Secret's metadata, kustomization.yaml) is a leak: one line per hit naming
the file, the object, the path inside it and the secret with the inventory variables that carry it (from
--inventory's group_vars), never the value. Exit status 1 on a leak; 2 when no known secret is in any Secret at all
(the scan would prove nothing: wrong secrets or render directory).

Usage: render_scan.py --secrets-dir DIR [--ca-dir DIR] [--inventory DIR] RENDER_DIR [RENDER_DIR...]
"""
import argparse
import base64
import binascii
import os
import re
import sys

import yaml

try:
    from tests.leaks.leak_check import forms, known_secrets
except ImportError:  # run as a script: the module next to this one
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from leak_check import forms, known_secrets  # pylint: disable=import-error

LOOKUP = re.compile(r"""lookup\(\s*'ansible\.builtin\.password',\s*\w+\s*~\s*'/([^' ]+)[ ']""")
TOP_LEVEL = re.compile(r"^(\w+):")


def carriers(inventory):
    """Secret file name -> inventory variables carrying its value (the password lookup's variable first, then every
    top-level variable whose value refers to one already found, transitively), from the inventory's group_vars."""
    assignments = []  # (top-level variable, one line of its value)
    for root, _dirs, files in os.walk(os.path.join(inventory, "group_vars"), followlinks=True):
        for name in sorted(files):
            if name.endswith((".yml", ".yaml")):
                with open(os.path.join(root, name), encoding="utf-8") as handle:
                    variable = None
                    for line in handle.read().splitlines():
                        match = TOP_LEVEL.match(line)
                        variable = match.group(1) if match else variable
                        if variable and not line.lstrip().startswith("#"):
                            assignments.append((variable, line[match.end():] if match else line))
    names = {}
    for variable, value in assignments:
        match = LOOKUP.search(value)
        if match:
            names.setdefault(match.group(1), [variable])
    for variables in names.values():
        grown = True
        while grown:
            grown = False
            for variable, value in assignments:
                if variable not in variables and any(re.search(r"\b%s\b" % re.escape(v), value) for v in variables):
                    variables.append(variable)
                    grown = True
    return names


def describe(label, names):
    kind, _space, name = label.partition(" ")
    if kind == "secret" and name in names:
        return "%s (%s)" % (label, ", ".join(names[name]))
    return label


def strings(node, path=""):
    """Every key and string scalar of a YAML document, with its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = "%s.%s" % (path, key)
            yield sub + " (key)", str(key)
            yield from strings(value, sub)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, "%s[%d]" % (path, index))
    elif isinstance(node, (str, bytes)):
        yield path or ".", node.decode("utf-8", "replace") if isinstance(node, bytes) else node


def found(text, secrets):
    return [(label, form) for label, value in secrets.items() for form, needle in forms(value) if needle in text]


def secret_payloads(doc):
    """(path, text) of a Secret's data (decoded) and stringData values."""
    for key, value in (doc.get("data") or {}).items():
        try:
            yield ".data.%s" % key, base64.b64decode(str(value), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            yield ".data.%s (not base64)" % key, str(value)
    for key, value in (doc.get("stringData") or {}).items():
        yield ".stringData.%s" % key, str(value)


def scan_file(path, secrets):
    """(leaks as (place, secret label, form), labels found inside Secrets) of one rendered file."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return [("%s (not YAML)" % path, label, form) for label, form in found(text, secrets)], set()
    leaks, inside = [], set()
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        obj = "document %d" % index
        rest = doc
        if isinstance(doc, dict):
            obj = "%s %s" % (doc.get("kind", "(no kind)"), (doc.get("metadata") or {}).get("name", "(no name)"))
            if doc.get("kind") == "Secret":
                for _where, payload in secret_payloads(doc):
                    inside.update(label for label, _form in found(payload, secrets))
                rest = {key: value for key, value in doc.items() if key not in ("data", "stringData")}
        for where, value in strings(rest):
            leaks += [("%s: %s %s" % (path, obj, where), label, form) for label, form in found(value, secrets)]
    return leaks, inside


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets-dir", required=True)
    parser.add_argument("--ca-dir")
    parser.add_argument("--inventory", help="inventory directory whose group_vars name the secrets' variables")
    parser.add_argument("render_dirs", nargs="+")
    args = parser.parse_args(argv)
    secrets = known_secrets(args.secrets_dir, args.ca_dir)
    if not secrets:
        print("render-scan: no known secrets in %s: nothing to look for" % args.secrets_dir)
        return 2
    names = carriers(args.inventory) if args.inventory else {}
    leaks, inside, count = [], set(), 0
    for top in args.render_dirs:
        if not os.path.isdir(top):
            print("render-scan: no render directory %s" % top)
            return 2
        for root, _dirs, files in os.walk(top):
            for name in sorted(files):
                count += 1
                file_leaks, file_inside = scan_file(os.path.join(root, name), secrets)
                leaks += file_leaks
                inside |= file_inside
    for place, label, form in leaks:
        print("LEAK %s: %s found (%s)" % (place, describe(label, names), form))
    print("render-scan: %d known secrets, %d files in %s: %d in Secrets' data (%s), %d leaks"
          % (len(secrets), count, ", ".join(args.render_dirs), len(inside), ", ".join(sorted(inside)), len(leaks)))
    if leaks:
        return 1
    if not inside:
        print("render-scan: no known secret in any Secret: the scan proves nothing (wrong secrets or render directory)")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
