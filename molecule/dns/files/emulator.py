"""Start or stop the project's Stalwart emulator on the controller for the dns scenario (DKIM records and
dns_publish: stalwart). `start DIR` writes DIR/stalwart.json (url, username, password) and DIR/emulator.pid."""
import json
import os
import signal
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, TOP)

from tests.stalwart_emulator.harness import EmulatorProcess  # noqa: E402  pylint: disable=wrong-import-position


def start(workdir):
    os.makedirs(workdir, exist_ok=True)
    stop(workdir)
    emu = EmulatorProcess(workdir)
    with open(os.path.join(workdir, "emulator.pid"), "w", encoding="utf-8") as handle:
        handle.write(str(emu.proc.pid))
    fd = os.open(os.path.join(workdir, "stalwart.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": emu.url, "username": emu.user, "password": emu.password}, handle)
    emu.log.close()  # the child keeps its own descriptor; the process outlives this script


def stop(workdir):
    pidfile = os.path.join(workdir, "emulator.pid")
    if os.path.exists(pidfile):
        with open(pidfile, encoding="utf-8") as handle:
            pid = int(handle.read().strip() or 0)
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        os.remove(pidfile)


if __name__ == "__main__":
    {"start": start, "stop": stop}[sys.argv[1]](sys.argv[2])
