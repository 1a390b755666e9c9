#!/usr/bin/env bash
# CHANGELOG.rst and changelogs/changelog.yaml from changelogs/fragments/ with the pinned antsibull-changelog.
#   scripts/changelog.sh           lint the fragments, fold every fragment into the release named by galaxy.yml's
#                                  version (fragments are kept: keep_fragments is true) and write both files
#   scripts/changelog.sh --check   lint, generate the same in a scratch copy, fail if the committed files differ
# The release date is the one changelog.yaml already records for that version (today for a new version), so a
# re-run changes nothing unless a fragment, a plugin or the version changed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${VENV:-$top/.venv}/bin
mode=${1:-write}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
coll=$work/collections/ansible_collections/talentmesh/mail
mkdir -p "$coll"
cp -a "$top/galaxy.yml" "$top/meta" "$top/plugins" "$top/changelogs" "$coll/"
rm -f "$coll/changelogs/.plugin-cache.yaml"
find "$coll" -name __pycache__ -prune -exec rm -rf {} +
[ ! -f "$top/CHANGELOG.rst" ] || cp "$top/CHANGELOG.rst" "$coll/"
printf "[defaults]\n" > "$work/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH=$work/collections ANSIBLE_CONFIG=$work/ansible.cfg ANSIBLE_NOCOLOR=1 PATH=$bin:$PATH

cd "$coll"
antsibull-changelog lint
read -r version date < <("$bin/python" - <<'PY'
import datetime
import yaml

version = yaml.safe_load(open("galaxy.yml"))["version"]
releases = yaml.safe_load(open("changelogs/changelog.yaml")).get("releases") or {}
print(version, releases.get(version, {}).get("release_date") or datetime.date.today().isoformat())
PY
)
antsibull-changelog release --version "$version" --date "$date" --update-existing --reload-plugins >"$work/log" 2>&1 || {
  cat "$work/log" >&2; echo "changelog: antsibull-changelog release failed" >&2; exit 1; }
# The same data in the layout the repository's yamllint wants (document start, indented sequences); antsibull-changelog
# reads either.
"$bin/python" - changelogs/changelog.yaml <<'PY'
import sys

import yaml


class Dumper(yaml.SafeDumper):
    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


path = sys.argv[1]
data = yaml.safe_load(open(path))
with open(path, "w") as out:
    yaml.dump(data, out, Dumper=Dumper, explicit_start=True, sort_keys=True, width=120, allow_unicode=True)
PY

if [ "$mode" = --check ]; then
  stale=0
  diff -u "$top/changelogs/changelog.yaml" changelogs/changelog.yaml >&2 || stale=1
  diff -u "$top/CHANGELOG.rst" CHANGELOG.rst >&2 || stale=1
  if [ "$stale" = 1 ]; then
    echo "changelog: CHANGELOG.rst or changelogs/changelog.yaml is stale; run 'make docs' and commit them" >&2; exit 1
  fi
  echo "changelog: fragments lint clean; CHANGELOG.rst current ($version, $(find changelogs/fragments -maxdepth 1 -type f | wc -l) fragments)"
else
  cp changelogs/changelog.yaml "$top/changelogs/changelog.yaml"
  cp CHANGELOG.rst "$top/CHANGELOG.rst"
  echo "changelog: wrote CHANGELOG.rst and changelogs/changelog.yaml ($version, $(find changelogs/fragments -maxdepth 1 -type f | wc -l) fragments)"
fi
