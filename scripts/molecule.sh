#!/usr/bin/env bash
# Run Molecule scenarios on the Debian releases each one declares.
#   scripts/molecule.sh                 every scenario under molecule/ (except shared)
#   scripts/molecule.sh common dragonfly
# A scenario lists its releases in molecule/<name>/debian-releases ("12 13"); default 12. In the
# environment DEBIAN_RELEASES_OVERRIDE replaces every scenario's list (e.g. =13 for a trixie-only run).
# MOLECULE_JOBS runs that many scenarios at once (default 2: most of a run waits on systemd, apt and network round
# trips, not on the two cores). Scenarios have their own networks and containers; the releases of one scenario run
# one after the other, since Molecule keeps one state directory per scenario.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
export PATH=$top/.venv/bin:$PATH
export CONTAINERS_CONF=${CONTAINERS_CONF:-$top/testbed/containers.conf}
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$top/.build/collections}
jobs=${MOLECULE_JOBS:-2}
# The longest scenarios start first (measured: platform, postgresql's two releases, roundcube), so the run does
# not end waiting on one long scenario started last; the others follow in name order.
LONGEST_FIRST="platform postgresql roundcube seaweedfs"
if [ $# -gt 0 ]; then scenarios=("$@"); else
  mapfile -t found < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | grep -v '^shared$' | sort)
  scenarios=()
  for s in $LONGEST_FIRST; do [[ " ${found[*]} " == *" $s "* ]] && scenarios+=("$s"); done
  for s in "${found[@]}"; do [[ " $LONGEST_FIRST " == *" $s "* ]] || scenarios+=("$s"); done
fi
results=$top/.cache/molecule/results.$$
mkdir -p "$top/.cache/molecule" "$results"
failed=0
run_one() {  # scenario release
  local s=$1 r=$2 log=$top/.cache/molecule/$1-d$2.log t0=$SECONDS result
  echo "=== molecule test -s $s (Debian $r)"
  if MOLECULE_DEBIAN=$r molecule test -s "$s" >"$log" 2>&1; then result=ok; else result=FAILED; fi
  printf '%-14s debian %-3s %-7s %4ss  (%s)\n' "$s" "$r" "$result" "$((SECONDS - t0))" "${log#"$top"/}" >"$results/$s-d$r"
}
run_releases() {  # scenario releases...: one after the other (Molecule keeps one state directory per scenario)
  local s=$1 r
  shift
  for r in "$@"; do run_one "$s" "$r"; done
}
declare -a order
for s in "${scenarios[@]}"; do
  [ -f "molecule/$s/molecule.yml" ] || { echo "molecule.sh: no scenario '$s'" >&2; failed=1; continue; }
  releases=${DEBIAN_RELEASES_OVERRIDE:-$(cat "molecule/$s/debian-releases" 2>/dev/null || echo 12)}
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  # shellcheck disable=SC2086  # the release list splits on purpose
  run_releases "$s" $releases &
  for r in $releases; do order+=("$s-d$r"); done
done
wait
declare -a summary
for key in "${order[@]}"; do
  line=$(cat "$results/$key" 2>/dev/null || echo "$key did not report")
  summary+=("$line")
  case $line in *" ok "*) ;; *)
    failed=1
    sed 's/\x1b\[[0-9;]*m//g' "$top/.cache/molecule/$key.log" | grep -E -A25 'fatal:|FAILED|Error|ERROR' | tail -n 80 ;;
  esac
done
rm -rf "$results"
printf '%s\n' "--- molecule summary" "${summary[@]}"
exit $failed
