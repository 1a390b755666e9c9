"""TEST STAND-IN for the Stalwart binary: NOT Stalwart.

The entry point of the zipapp `stalwart` that tests/artifacts/build_stalwart.sh packages as a release-shaped
`stalwart-x86_64-unknown-linux-gnu.tar.gz`. It carries the project's emulator of Stalwart v0.16's management surface
(tests/stalwart_emulator) and the schema it loads, unpacks them into a private temporary directory at each start and
runs the emulator with the real binary's command line (`--config PATH`, `--version`, `--help`) and environment
(STALWART_HOSTNAME, STALWART_ROLE, STALWART_RECOVERY_MODE, STALWART_RECOVERY_MODE_PORT, STALWART_RECOVERY_ADMIN and
the variables named by EnvironmentVariable secrets). State lives in the PostgreSQL database config.json names.

Like the real server it verifies the datastore's TLS certificate against the system trust store (libpq would
otherwise look in ~/.postgresql/root.crt).
"""
import atexit
import os
import shutil
import sys
import tempfile
import zipfile


def main():
    archive = os.path.abspath(sys.argv[0])
    work = tempfile.mkdtemp(prefix="stalwart-standin-")
    atexit.register(shutil.rmtree, work, True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(work, [n for n in zipped.namelist() if n.startswith(("tests/", ".cache/"))])
    sys.path.insert(0, work)
    os.environ.setdefault("PGSSLROOTCERT", "/etc/ssl/certs/ca-certificates.crt")
    from tests.stalwart_emulator.__main__ import main as emulator_main  # pylint: disable=import-outside-toplevel
    return emulator_main()


if __name__ == "__main__":
    sys.exit(main())
