"""The Molecule proofs listed in matrix_e2e.yml exist, so that the "works end to end" table cannot rot; and the
matrix harness itself enforces its rules (an unmarked failing role run, a refused input that changed something)."""
import os

import pytest

from tests.roles import harness

ROLES = set(os.listdir(os.path.join(harness.TOP, "roles")))


def test_every_class_and_role_exists():
    e2e = harness.load_e2e()
    assert set(e2e) <= set(harness.CLASSES), set(e2e) - set(harness.CLASSES)
    for name, roles in e2e.items():
        assert roles and set(roles) <= ROLES, (name, set(roles or ()) - ROLES)
        for role, references in roles.items():
            assert references and len(references) == len(set(references)), (name, role)


@pytest.mark.parametrize("reference", sorted({ref for roles in harness.load_e2e().values()
                                              for refs in roles.values() for ref in refs}))
def test_reference_exists(reference):
    assert harness.e2e_reference_problem(reference) is None, harness.e2e_reference_problem(reference)


@pytest.mark.parametrize("reference,problem", [
    ("molecule/valkey/tests/test_valkey.py::test_no_such_test", "no function test_no_such_test"),
    ("molecule/dns/verify.yml::No such task", "no task or play named"),
    ("molecule/nonexistent/tests/test_x.py::test_x", "no file"),
    ("molecule/valkey/tests/test_valkey.py", "not <path>::<test or task name>"),
])
def test_a_missing_reference_is_named(reference, problem):
    assert problem in harness.e2e_reference_problem(reference)


def _run(rc, changed=0, environment_failure=None):
    return {"role": "valkey", "rc": rc, "changed": changed, "environment_failure": environment_failure}


@pytest.mark.parametrize("classes,runs,problem", [
    ([], [_run(2)], "has no defect_class marker"),
    ([], [_run(2, environment_failure="no systemd here")], None),
    ([], [_run(0)], None),
    (["firewall"], [], "must run its role through run_role"),
    (["firewall"], [_run(2, changed=1)], "must fail before any change"),
    (["state"], [_run(2, changed=1)], None),
    (["firewall"], [_run(2)], None),
    (["injection"], [_run(0)], None),
    (["nonsense"], [_run(2)], "defect_class takes exactly one of"),
    (["firewall", "ranges"], [_run(2)], "defect_class takes exactly one of"),
])
def test_matrix_rules(classes, runs, problem):
    found = harness.matrix_problem(classes, runs)
    assert (found is None) if problem is None else (problem in found), found
