"""Host checks the service scenarios share; imported with the tests directory's ../../shared on sys.path."""
import re


def exposure(host, unit):
    """`systemd-analyze security` of unit on host: (overall exposure level, full output). Fails without a level."""
    out = host.check_output("systemd-analyze security --no-pager %s", unit)
    match = re.search(r"Overall exposure level for %s: ([0-9.]+)" % re.escape(unit), out)
    assert match, out
    print("systemd-analyze security %s: %s" % (unit, match.group(1)))
    return float(match.group(1)), out
