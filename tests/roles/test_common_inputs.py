"""Bad input to the common role fails in its argument spec, before anything changes on the host, naming the variable.
Runs ansible-playbook against localhost in check mode; no containers."""
import pytest

from tests.roles.harness import case, run_role


@pytest.mark.parametrize("value", [
    case("format", "maybe", id="word"),
    case("format", ["true"], id="list"),
    case("format", {"nftables": True}, id="per-unit-mapping"),
])
def test_harden_units_must_be_a_boolean(tmp_path, value):
    rc, out = run_role("common", tmp_path, {"common_harden_units": value}, check=True)
    assert rc != 0
    assert "common_harden_units" in out and "bool" in out, out[-2000:]
