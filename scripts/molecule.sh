#!/usr/bin/env bash
# Run Molecule scenarios on the Debian releases each one declares.
#   scripts/molecule.sh                 every scenario under molecule/ (except shared)
#   scripts/molecule.sh common dragonfly
# A scenario lists its releases in molecule/<name>/debian-releases ("12 13"); default 12. In the
# environment DEBIAN_RELEASES_OVERRIDE replaces every scenario's list (e.g. =13 for a trixie-only run).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
export PATH=$top/.venv/bin:$PATH
export CONTAINERS_CONF=${CONTAINERS_CONF:-$top/testbed/containers.conf}
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$top/.build/collections}
if [ $# -gt 0 ]; then scenarios=("$@"); else
  mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | grep -v '^shared$' | sort)
fi
declare -a summary
failed=0
for s in "${scenarios[@]}"; do
  [ -f "molecule/$s/molecule.yml" ] || { echo "molecule.sh: no scenario '$s'" >&2; failed=1; continue; }
  releases=${DEBIAN_RELEASES_OVERRIDE:-$(cat "molecule/$s/debian-releases" 2>/dev/null || echo 12)}
  for r in $releases; do
    log=$top/.cache/molecule/$s-d$r.log
    mkdir -p "$(dirname "$log")"
    t0=$SECONDS
    echo "=== molecule test -s $s (Debian $r)"
    if MOLECULE_DEBIAN=$r molecule test -s "$s" >"$log" 2>&1; then
      result=ok
    else
      result=FAILED; failed=1
      sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E -A25 'fatal:|FAILED|Error|ERROR' | tail -n 80
    fi
    summary+=("$(printf '%-14s debian %-3s %-7s %4ss  (%s)' "$s" "$r" "$result" "$((SECONDS - t0))" "${log#"$top"/}")")
  done
done
printf '%s\n' "--- molecule summary" "${summary[@]}"
exit $failed
