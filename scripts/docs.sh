#!/usr/bin/env bash
# Role and plugin reference pages from the collection's own metadata (meta/argument_specs.yml of every role, the
# DOCUMENTATION of every module and filter), rendered with the pinned antsibull-docs (simplified RST, offline).
#   scripts/docs.sh           write docs/roles/, docs/plugins/ and docs/reference.rst
#   scripts/docs.sh --check   render into a scratch directory and fail if the committed pages differ (stale)
# antsibull-docs reads a scratch copy of the collection (roles/, plugins/, meta/, galaxy.yml), never the checkout's
# .build link, so the pages depend only on committed files.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${VENV:-$top/.venv}/bin
mode=${1:-write}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
coll=$work/collections/ansible_collections/talentmesh/mail
mkdir -p "$coll" "$work/out" "$work/pages/roles" "$work/pages/plugins"
cp -a "$top/galaxy.yml" "$top/meta" "$top/roles" "$top/plugins" "$coll/"
find "$coll" -name __pycache__ -prune -exec rm -rf {} +

# antsibull-docs requires a `description` on every entry point; ansible-core does not. An entry point that has only a
# short_description (the internal shared role's) is documented with its short_description as the description, in
# the scratch copy only.
"$bin/python" - "$coll/roles" <<'PY'
import pathlib
import sys

import yaml

for spec in sorted(pathlib.Path(sys.argv[1]).glob("*/meta/argument_specs.yml")):
    data = yaml.safe_load(spec.read_text())
    missing = [name for name, entry in data["argument_specs"].items() if "description" not in entry]
    for name in missing:
        entry = data["argument_specs"][name]
        entry["description"] = [entry.get("short_description", name)]
    if missing:
        spec.write_text(yaml.safe_dump(data, sort_keys=False))
PY

printf "[defaults]\n" > "$work/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH=$work/collections ANSIBLE_CONFIG=$work/ansible.cfg ANSIBLE_NOCOLOR=1
export PATH=$bin:$PATH
antsibull-docs collection --use-current --squash-hierarchy --output-format simplified-rst --fail-on-error \
  --no-add-antsibull-docs-version --dest-dir "$work/out" talentmesh.mail >"$work/log" 2>&1 || {
  cat "$work/log" >&2; echo "docs: antsibull-docs failed" >&2; exit 1; }

# Layout: roles/<role>_role.rst, plugins/<name>_<type>.rst, reference.rst (the collection index). The template's
# link to a public collection registry is replaced by the plain collection name (this collection is installed from
# its own tarball).
"$bin/python" - "$work/out" "$work/pages" <<'PY'
import pathlib
import re
import sys

out, pages = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
registry = re.compile(r"`talentmesh\.mail collection <https?://[^>]+>`_")
for page in sorted(out.glob("*.rst")):
    text = registry.sub("talentmesh.mail collection", page.read_text())
    if page.name == "index.rst":
        text = re.sub(r"<([a-z0-9_]+)_role\.rst>", r"<roles/\1_role.rst>", text)
        text = re.sub(r"<([a-z0-9_]+)_(module|filter)\.rst>", r"<plugins/\1_\2.rst>", text)
        (pages / "reference.rst").write_text(text)
    elif page.name.endswith("_role.rst"):
        (pages / "roles" / page.name).write_text(text)
    else:
        (pages / "plugins" / page.name).write_text(text)
PY

roles=$(ls "$top/roles"); for r in $roles; do
  test -s "$work/pages/roles/${r}_role.rst" || { echo "docs: no page for role $r" >&2; exit 1; }
done
if [ "$mode" = --check ]; then
  stale=0
  for d in roles plugins; do
    diff -ru "$top/docs/$d" "$work/pages/$d" >"$work/diff-$d" 2>&1 || { stale=1; head -40 "$work/diff-$d" >&2; }
  done
  diff -u "$top/docs/reference.rst" "$work/pages/reference.rst" >&2 || stale=1
  if [ "$stale" = 1 ]; then
    echo "docs: docs/roles, docs/plugins or docs/reference.rst are stale; run 'make docs' and commit them" >&2; exit 1
  fi
  echo "docs: reference pages current ($(find "$work/pages/roles" -maxdepth 1 -type f | wc -l) roles, $(find "$work/pages/plugins" -maxdepth 1 -type f | wc -l) plugins)"
else
  rm -rf "$top/docs/roles" "$top/docs/plugins"
  cp -r "$work/pages/roles" "$work/pages/plugins" "$top/docs/"
  cp "$work/pages/reference.rst" "$top/docs/reference.rst"
  echo "docs: wrote docs/roles ($(find "$top/docs/roles" -maxdepth 1 -type f | wc -l) pages), docs/plugins ($(find "$top/docs/plugins" -maxdepth 1 -type f | wc -l)), docs/reference.rst"
fi
