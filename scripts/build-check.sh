#!/usr/bin/env bash
# Build the collection tarball, install it into an empty collections path, and prove that roles and modules resolve
# by FQCN from the installed copy (not from the checkout).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${VENV:-$top/.venv}/bin
dist=$top/.build/dist
rm -rf "$dist"; mkdir -p "$dist"
"$bin/ansible-galaxy" collection build "$top" --output-path "$dist" --force >/dev/null
tarball=$(ls "$dist"/talentmesh-mail-*.tar.gz)
echo "build-check: built $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"
if tar -tzf "$tarball" | grep -qE '^(\.venv|\.build|\.cache|molecule|bench|tests/output)/'; then
  echo "build-check: tarball contains development files" >&2; exit 1
fi
inst=$(mktemp -d); trap 'rm -rf "$inst"' EXIT
# Only the fresh install path (and the bundled collections on the venv's sys.path) may be visible.
printf "[defaults]\n" > "$inst/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH=$inst ANSIBLE_CONFIG=$inst/ansible.cfg
"$bin/ansible-galaxy" collection install --force --no-deps -p "$inst" "$tarball" >/dev/null
test -d "$inst/ansible_collections/talentmesh/mail/roles/common"
mapfile -t roles < <(ls "$inst/ansible_collections/talentmesh/mail/roles")
cat > "$inst/play.yml" <<PLAY
- name: Resolve every role by FQCN from the installed collection
  hosts: localhost
  gather_facts: false
  tasks:
$(for r in "${roles[@]}"; do printf '    - name: Resolve %s\n      ansible.builtin.import_role:\n        name: talentmesh.mail.%s\n      when: false\n' "$r" "$r"; done)
PLAY
"$bin/ansible-playbook" --syntax-check -i localhost, "$inst/play.yml" >/dev/null
for r in "${roles[@]}"; do "$bin/ansible-doc" -t role "talentmesh.mail.$r" >/dev/null; done
mods=$(find "$inst/ansible_collections/talentmesh/mail/plugins/modules" -name "*.py" -printf "%f\n" 2>/dev/null | sed "s/\.py$//" | sort || true)
for m in $mods; do "$bin/ansible-doc" -t module "talentmesh.mail.$m" >/dev/null; done
echo "build-check: installed; roles resolve by FQCN: ${roles[*]}; modules documented: ${mods:-none}"

# The tarball carries what an execution environment's introspection reads.
tar -tzf "$tarball" > "$inst/contents.txt"
for f in meta/execution-environment.yml requirements.txt bindep.txt CHANGELOG.rst changelogs/changelog.yaml; do
  grep -qx "$f" "$inst/contents.txt" || { echo "build-check: $f missing from the tarball" >&2; exit 1; }
done
# Execution environment: `ansible-builder create` turns execution-environment.yml into a build context holding this
# tarball (no image is built here: no container registry is reachable). Its pins must be the tested ones, and the
# installed collection's dependencies must be what ansible-builder's own introspection finds.
ee=$top/.build/ee
rm -rf "$ee"
(cd "$top" && "$bin/ansible-builder" create -f execution-environment.yml -c "$ee" >/dev/null)
test -s "$ee/Containerfile"
test -s "$ee/_build/collection/$(basename "$tarball")" || {
  echo "build-check: the EE build context lacks $(basename "$tarball")" >&2; exit 1; }
"$bin/python" "$ee/_build/scripts/introspect.py" introspect "$inst" >"$inst/introspect.txt"
"$bin/python" - "$top" "$tarball" "$ee" "$inst/introspect.txt" "$bin" <<'PY'
import os
import re
import subprocess
import sys

import yaml

top, tarball, ee, introspected, bindir = sys.argv[1:]
errors = []
ee_def = yaml.safe_load(open(os.path.join(top, "execution-environment.yml")))
pins = dict(re.match(r"([A-Za-z0-9_.\[\]-]+)==(\S+)", line).groups()
            for line in open(os.path.join(top, "constraints.txt")) if "==" in line)
pins = {name.lower().replace("_", "-"): version for name, version in pins.items()}
for key in ("ansible_core", "ansible_runner"):
    name, _, version = ee_def["dependencies"][key]["package_pip"].partition("==")
    if key == "ansible_core" and pins.get(name) != version:
        errors.append("execution-environment.yml pins %s==%s, constraints.txt %s" % (name, version, pins.get(name)))
for line in open(os.path.join(top, "requirements.txt")):
    line = line.split("#")[0].strip()
    if line:
        name, _, version = line.partition("==")
        if pins.get(name.lower().replace("_", "-")) != version:
            errors.append("requirements.txt pins %s, constraints.txt %s" % (line, pins.get(name.lower())))
requirements = yaml.safe_load(open(os.path.join(ee, "_build", "requirements.yml")))["collections"]
if ("collection/" + os.path.basename(tarball)) not in [c["name"] for c in requirements]:
    errors.append("execution-environment.yml does not install collection/%s" % os.path.basename(tarball))
listed = subprocess.run([os.path.join(bindir, "ansible-galaxy"), "collection", "list", "--format", "json"],
                        capture_output=True, text=True, check=True,
                        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH="/nonexistent")).stdout
tested = {}
for path_entries in yaml.safe_load(listed).values():
    for name, info in path_entries.items():
        tested.setdefault(name, info["version"])
for c in requirements:
    if "version" in c and tested.get(c["name"]) != str(c["version"]):
        errors.append("execution-environment.yml pins %s %s, the tests ran %s" % (c["name"], c["version"], tested.get(c["name"])))
found = open(introspected).read()
for needle in ("netaddr==1.3.0", "dnspython==2.9.2", "kubernetes==37.0.1", "openssh-clients [platform:rpm]"):
    if needle not in found:
        errors.append("ansible-builder introspection of the installed collection misses %s" % needle)
if errors:
    sys.exit("build-check: " + "\n  ".join(errors))
PY
echo "build-check: ansible-builder create wrote a build context ($ee) with $(basename "$tarball"); image not built here"

# Generated documentation is current: reference pages from argument_specs/DOCUMENTATION, CHANGELOG.rst from the
# fragments (antsibull-changelog lint included).
bash "$top/scripts/docs.sh" --check
bash "$top/scripts/changelog.sh" --check
