"""The operator guides in docs/ stay true to the code: every variable they name exists in a role's defaults or
argument_specs (or an example inventory), every repository path they name exists, every relative link resolves,
and the index links every guide."""
import glob
import os
import re

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUIDES = ["dns.md", "tls.md", "upgrades.md", "backup-restore.md", "clients.md", "day2.md"]
PAGES = [os.path.join(TOP, "docs", g) for g in GUIDES + ["README.md"]] + [
    os.path.join(TOP, "inventories", i, "README.md") for i in ("production", "production-k8s")]
PREFIXES = ("mail", "stalwart", "dns", "postgresql", "dragonfly", "valkey", "seaweedfs", "minio", "roundcube",
            "common", "k8s_prerequisites")
VARIABLE = re.compile(r"^(%s)_[a-z0-9_]+$" % "|".join(PREFIXES))
PATH = re.compile(r"^(roles|playbooks|inventories|tests|scripts|plugins|changelogs|bench|docs|meta)/[\w./<>*-]+$")
# Names in code spans that look like variables but are the variables a dns hook task file receives.
NOT_VARIABLES = {"dns_records", "dns_zones", "dns_records_absent", "dns_changed"}


def _known_names():
    text = []
    for pattern in ("roles/*/defaults/main.yml", "roles/*/meta/argument_specs.yml", "roles/*/vars/main.yml",
                    "inventories/production*/group_vars/*/*.yml", "inventories/production*/host_vars/*.yml"):
        for path in glob.glob(os.path.join(TOP, pattern)):
            with open(path) as f:
                text.append(f.read())
    names = set(re.findall(r"\b[a-z][a-z0-9_]*\b", "\n".join(text)))
    # Modules and filters of the collection (named as talentmesh.mail.<name>).
    for path in glob.glob(os.path.join(TOP, "plugins", "modules", "*.py")) + glob.glob(
            os.path.join(TOP, "plugins", "filter", "*.yml")):
        names.add(os.path.splitext(os.path.basename(path))[0])
    return names


KNOWN = _known_names()


def _code_spans(text):
    # Inline code spans outside fenced blocks.
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"`([^`\n]+)`", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: os.path.relpath(p, TOP))
def test_named_variables_exist(page):
    with open(page) as f:
        spans = _code_spans(f.read())
    missing = set()
    for span in spans:
        if "/" in span:
            continue
        for token in re.findall(r"[a-z][a-z0-9_]+", span.split(":")[0].split("=")[0]):
            if not VARIABLE.match(token) or token in NOT_VARIABLES or token in KNOWN:
                continue
            # A family of variables written as a prefix (`stalwart_mta_sts_*`).
            if not (token.endswith("_") and any(name.startswith(token) for name in KNOWN)):
                missing.add(token)
    assert not missing, "%s names variables no role or example inventory defines: %s" % (page, sorted(missing))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: os.path.relpath(p, TOP))
def test_named_paths_and_links_exist(page):
    with open(page) as f:
        text = f.read()
    missing = []
    for span in _code_spans(text):
        span = span.strip()
        if PATH.match(span) and "<" not in span:
            if not glob.glob(os.path.join(TOP, span.rstrip("/"))):
                missing.append(span)
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"^[a-z]+://", target):
            continue
        if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(page), target))):
            missing.append(target)
    assert not missing, "%s names paths that do not exist: %s" % (page, missing)


def test_index_links_every_guide():
    with open(os.path.join(TOP, "docs", "README.md")) as f:
        index = f.read()
    assert all("](%s)" % guide in index for guide in GUIDES)


def test_the_checks_catch_a_wrong_name(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("Set `stalwart_no_such_knob` and see `playbooks/no-such.yml` and [x](missing.md).\n")
    with pytest.raises(AssertionError, match="stalwart_no_such_knob"):
        test_named_variables_exist(str(page))
    with pytest.raises(AssertionError, match="no-such.yml"):
        test_named_paths_and_links_exist(str(page))
