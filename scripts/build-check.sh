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
