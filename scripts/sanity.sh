#!/usr/bin/env bash
# ansible-test sanity on a copy of the checkout laid out as ansible_collections/talentmesh/mail (ansible-test
# requires that path). Tracked and new, non-ignored files are copied; build artefacts and venvs are not.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$top/.venv}
work=$(mktemp -d "${TMPDIR:-/tmp}/talentmesh-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/talentmesh/mail
mkdir -p "$dest"
(cd "$top" && git ls-files -co --exclude-standard -z | rsync -a --from0 --files-from=- ./ "$dest/")
# ansible-test's pip bootstrap, served from Python's own ensurepip (see the script's docstring).
pip_version=$("$venv/bin/python" -c '
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import NativePythonConfig
print(get_venv_packages(NativePythonConfig(version="3.11"))["pip"])' 2>/dev/null) || pip_version=24.2
mkdir -p "$HOME/.ansible/test/cache"
for v in $pip_version; do
  cp "$top/scripts/ansible-test-get-pip.py" "$HOME/.ansible/test/cache/get_pip_${v//./_}.py"
done
cd "$dest"
"$venv/bin/ansible-test" sanity --python 3.11 --venv --color no "$@"
