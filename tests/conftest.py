"""Shared fixtures: a Stalwart endpoint for the contract and module tests.

By default the project's emulator is started on loopback. With STALWART_URL and STALWART_USER/STALWART_PASSWORD set,
the contract tests run against that (real) server instead and emulator-only tests are skipped."""
import base64
import os

import pytest

from tests.stalwart_emulator.harness import EmulatorProcess


class RemoteServer:
    """The same interface as EmulatorProcess, over a real server given by the environment."""

    def __init__(self):
        self.url = os.environ["STALWART_URL"].rstrip("/")
        self.user = os.environ.get("STALWART_USER", "")
        self.password = os.environ.get("STALWART_PASSWORD", "")
        self.token = os.environ.get("STALWART_TOKEN")

    def auth_header(self, user=None, password=None):
        if self.token and user is None:
            return "Bearer " + self.token
        return "Basic " + base64.b64encode(("%s:%s" % (user or self.user, password or self.password)).encode()).decode()

    raw = EmulatorProcess.raw
    jmap = EmulatorProcess.jmap
    limits = EmulatorProcess.limits

    def stop(self):
        pass


REAL = bool(os.environ.get("STALWART_URL"))
emulator_only = pytest.mark.skipif(REAL, reason="emulator-only behaviour (STALWART_URL points at a real server)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RemoteServer() if REAL else EmulatorProcess(str(tmp_path_factory.mktemp("stalwart")))
    yield srv
    srv.stop()
