"""Fixtures and pytest hooks of the role input tests; the harness itself (run_role, case, the defect classes, the
Molecule proofs file) is tests/roles/harness.py, re-exported here for the tests that import it from conftest.

The hooks keep the bad-input matrix of issue 10: they fail a test in which a role run failed but that carries no
defect_class marker, fail a refused bad input whose run changed something, and print the matrix at the end of the
run (see harness.py's docstring for the rules)."""
import re

import pytest
import yaml

from tests.roles import harness
from tests.roles.harness import Served, case, mismatched_tls, run_role  # noqa: F401  pylint: disable=unused-import


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An HTTP server on loopback for throwaway artifacts (module-scoped)."""
    server = Served(tmp_path_factory.mktemp("served"))
    yield server
    server.server.shutdown()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "defect_class(name): a bad-input case of issue 10's matrix; name is one of " + ", ".join(harness.CLASSES))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # pylint: disable=unused-argument
    item.stash[harness.RUNS] = []
    harness.current["item"] = item
    try:
        yield
    finally:
        harness.current["item"] = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when != "call":
        return
    classes = [arg for mark in item.iter_markers("defect_class") for arg in mark.args]
    runs = item.stash.get(harness.RUNS, [])
    if classes:
        roles = sorted({run["role"] for run in runs}) or [_role_of(item.nodeid)]
        kind = "refused" if any(run["rc"] != 0 for run in runs) else "works"
        report.user_properties.extend([("defect_class", classes[0]), ("defect_role", roles[0]), ("defect_kind", kind)])
    if report.passed:
        problem = harness.matrix_problem(classes, runs)
        if problem:
            report.outcome = "failed"
            report.longrepr = "bad-input matrix: " + problem


def _role_of(nodeid):
    match = re.search(r"test_(\w+?)_inputs\.py", nodeid)
    return match.group(1) if match else "?"


def pytest_terminal_summary(terminalreporter):
    cells, failed, defects = {}, {}, {}
    kinds = {"refused": 0, "works": 0}
    for key in ("passed", "failed", "xfailed", "xpassed", "error"):
        for report in terminalreporter.stats.get(key, []):
            props = dict(getattr(report, "user_properties", ()) or ())
            if "defect_class" not in props or getattr(report, "when", "call") != "call":
                continue
            cell = (props["defect_class"], props["defect_role"])
            if key == "passed":
                cells[cell] = cells.get(cell, 0) + 1
                kinds[props["defect_kind"]] += 1
            elif key == "xfailed":
                defects[cell] = defects.get(cell, 0) + 1
            else:
                failed[cell] = failed.get(cell, 0) + 1
    if not (cells or failed or defects):
        return
    write = terminalreporter.write_line
    roles = sorted({role for _cls, role in list(cells) + list(failed) + list(defects)})
    width = max(len(name) for name in harness.CLASSES) + 2
    terminalreporter.section("bad-input matrix (issue 10): passed cases per class and role")
    write("".ljust(width) + "".join(role[:10].rjust(11) for role in roles) + "total".rjust(8))
    for name in harness.CLASSES:
        row = [cells.get((name, role), 0) for role in roles]
        write(name.ljust(width) + "".join(_cell(count, defects.get((name, role)), failed.get((name, role)))
                                          for count, role in zip(row, roles)) + str(sum(row)).rjust(8))
    totals = [sum(cells.get((name, role), 0) for name in harness.CLASSES) for role in roles]
    write("total".ljust(width) + "".join(str(count).rjust(11) for count in totals) + str(sum(totals)).rjust(8))
    write("%d bad-input cases passed: %d refused before any change naming the variable, %d worked end to end; "
          "%d failed; %d known defects (xfail, strict)"
          % (sum(totals), kinds["refused"], kinds["works"], sum(failed.values()), sum(defects.values())))
    write("(+Nx: N known defects of that cell, expected to fail; !N: N failed)")
    try:
        e2e = harness.load_e2e()
    except (OSError, yaml.YAMLError) as exc:
        write("matrix_e2e.yml unreadable: %s" % exc)
        return
    terminalreporter.section("works end to end (Molecule proofs, tests/roles/matrix_e2e.yml)")
    for name in harness.CLASSES:
        entries = e2e.get(name) or {}
        if not entries:
            write("%s-" % name.ljust(width))
            continue
        for index, (role, refs) in enumerate(sorted(entries.items())):
            by_file = {}
            for ref in refs:
                path, _sep, test = ref.partition("::")
                by_file.setdefault(path.replace("molecule/", "", 1), []).append(test)
            proofs = "; ".join("%s: %s" % (path, ", ".join(tests)) for path, tests in by_file.items())
            write("%s%s %s" % ((name if index == 0 else "").ljust(width), role.ljust(11), proofs))


def _cell(count, defects, failed):
    text = str(count) if count else "."
    if defects:
        text += "+%dx" % defects
    if failed:
        text += "!%d" % failed
    return text.rjust(11)
