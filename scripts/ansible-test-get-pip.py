"""Offline bootstrap for ansible-test's virtual environments.

ansible-test --venv downloads get-pip.py from a host this machine cannot reach; it first looks for a cached copy at
~/.ansible/test/cache/get_pip_<pip version>.py. This replacement installs pip from Python's bundled ensurepip wheel
and passes the remaining arguments (minus get-pip's own flags) to `pip install`."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
