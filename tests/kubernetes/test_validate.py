"""The offline validator: the good fixture set passes, and each schema source and each rule fails on its bad case."""
import copy
import json
import os
import subprocess
import sys

import pytest

from tests.kubernetes import fixtures, policy, schemas
from tests.kubernetes.validate import main, validate_dir

SCRIPT = os.path.join(schemas.TOP, "scripts", "k8s-validate")


def doc(files, name):
    """The first document of a fixture file."""
    return files[name][0]


def render(tmp_path, mutate=None, **kwargs):
    files = copy.deepcopy(fixtures.good_set())
    if mutate is not None:
        mutate(files)
    return validate_dir(fixtures.write_dir(tmp_path / "render", files, **kwargs.pop("write", {})), **kwargs)


def assert_fails(report, rule, kind=None, name=None, contains=None):
    """The report fails, only on `rule`, and a finding names the rule, the kind/name and the file."""
    assert not report.ok, report.format()
    assert report.rules() == {rule}, report.format()
    hits = [item for item in report.findings if item.rule == rule and (kind is None or item.kind == kind) and (name is None or item.name == name)]
    assert hits, report.format()
    if contains is not None:
        assert any(contains in item.message for item in hits), report.format()
    text = report.format()
    assert "[%s]" % rule in text
    assert any(item.path and item.path in text for item in hits)
    return hits


def test_good_set_passes(tmp_path):
    report = render(tmp_path)
    assert report.ok, report.format()
    assert len(report.docs) == 21
    kinds = {item.kind for item in report.docs}
    assert {"Cluster", "Database", "DatabaseRole", "ScheduledBackup", "ObjectStore", "Dragonfly", "Tenant", "Certificate", "Issuer",
            "ClusterIssuer", "Deployment", "StatefulSet", "CronJob", "NetworkPolicy", "PodDisruptionBudget"} <= kinds
    assert report.format().endswith("k8s-validate: 21 documents, 0 schema errors, 0 policy violations")


def test_every_pinned_crd_is_loaded():
    loaded = {(crd.group, crd.kind, crd.version) for crd in schemas.crd_schemas().values()}
    assert loaded == {
        ("postgresql.cnpg.io", "Cluster", "v1"), ("postgresql.cnpg.io", "Database", "v1"), ("postgresql.cnpg.io", "DatabaseRole", "v1"),
        ("postgresql.cnpg.io", "Pooler", "v1"), ("postgresql.cnpg.io", "ScheduledBackup", "v1"), ("barmancloud.cnpg.io", "ObjectStore", "v1"),
        ("dragonflydb.io", "Dragonfly", "v1alpha1"), ("minio.min.io", "Tenant", "v2"), ("cert-manager.io", "Certificate", "v1"),
        ("cert-manager.io", "Issuer", "v1"), ("cert-manager.io", "ClusterIssuer", "v1")}


SHARED_CRDS = os.path.join(os.path.dirname(schemas.TOP), "shared", "schemas", "crds")


@pytest.mark.skipif(not os.path.isdir(SHARED_CRDS), reason="../shared/schemas/crds is not here")
def test_derived_crd_schemas_match_the_shared_conversion():
    """The schema derived at load time equals the shared JSON conversion below the root (which we close as well)."""
    for crd in schemas.crd_schemas().values():
        with open(os.path.join(SHARED_CRDS, crd.group, "%s_%s.json" % (crd.kind.lower(), crd.version)), encoding="utf-8") as handle:
            shared = json.load(handle)
        for part in ("spec", "status"):
            assert crd.validator.schema["properties"].get(part) == shared["properties"].get(part), (crd.kind, part)
        assert crd.validator.schema["additionalProperties"] is False


@pytest.mark.parametrize("api_version, kind", [
    ("v1", "ServiceAccount"), ("v1", "PersistentVolumeClaim"), ("apps/v1", "DaemonSet"), ("batch/v1", "Job"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("networking.k8s.io/v1", "Ingress"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"), ("storage.k8s.io/v1", "StorageClass"),
])
def test_core_kinds_the_roles_may_render_have_schemas(api_version, kind):
    assert schemas.core_validator(api_version, kind) is not None


# --------------------------------------------------------------------------------------------------- schemas


def test_core_unknown_field_in_statefulset(tmp_path):
    def mutate(files):
        doc(files, "statefulset-kv.yaml")["spec"]["replica"] = 3
    hits = assert_fails(render(tmp_path, mutate), "schema-core", "StatefulSet", "kv")
    assert "replica" in hits[0].message


def test_core_unknown_field_deep_in_pod_template(tmp_path):
    def mutate(files):
        doc(files, "deployment-web.yaml")["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRoot"] = True
    assert_fails(render(tmp_path, mutate), "schema-core", "Deployment", "web", "readOnlyRoot")


def test_core_wrong_type(tmp_path):
    def mutate(files):
        doc(files, "service-kv.yaml")["spec"]["ports"][0]["port"] = "redis"
    assert_fails(render(tmp_path, mutate), "schema-core", "Service", "kv")


def test_core_wrong_api_version(tmp_path):
    def mutate(files):
        doc(files, "cronjob-report.yaml")["apiVersion"] = "batch/v1beta1"
    assert_fails(render(tmp_path, mutate), "schema-missing", "CronJob", "report")


@pytest.mark.parametrize("api_version, kind", [
    ("v1", "Affinity"),                        # a nested type kubernetes-validate ships, not a resource
    ("monitoring.coreos.com/v1", "ServiceMonitor"),  # a CRD that is not pinned
    ("postgresql.cnpg.io/v1", "Backupz"),      # a pinned CRD group, a kind it does not define
])
def test_kind_without_schema_fails(tmp_path, api_version, kind):
    def mutate(files):
        files["extra.yaml"] = [{"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": fixtures.NS}, "spec": {}}]
    assert_fails(render(tmp_path, mutate), "schema-missing", kind, "x")


@pytest.mark.parametrize("name", ["cluster-pg.yaml", "database-stalwart.yaml", "databaserole-stalwart.yaml", "scheduledbackup-pg.yaml",
                                  "objectstore-backups.yaml", "dragonfly-kv.yaml", "tenant-s3.yaml", "certificate-mail.yaml",
                                  "issuer-lab-ca.yaml", "clusterissuer-selfsigned.yaml"])
def test_crd_unknown_spec_field(tmp_path, name):
    def mutate(files):
        doc(files, name)["spec"]["unknownField"] = "x"
    kind = fixtures.good_set()[name][0]["kind"]
    assert_fails(render(tmp_path, mutate), "schema-crd", kind, contains="unknownField")


def test_crd_wrong_field_in_cnpg_cluster(tmp_path):
    def mutate(files):
        spec = doc(files, "cluster-pg.yaml")["spec"]
        spec["storage"]["sizee"] = spec["storage"].pop("size")
    assert_fails(render(tmp_path, mutate), "schema-crd", "Cluster", "pg", "sizee")


def test_crd_wrong_type_and_enum(tmp_path):
    def mutate(files):
        doc(files, "cluster-pg.yaml")["spec"]["instances"] = "three"
        doc(files, "scheduledbackup-pg.yaml")["spec"]["method"] = "barmanObjectStorez"
    report = render(tmp_path, mutate)
    assert_fails(report, "schema-crd")
    assert {item.kind for item in report.findings} == {"Cluster", "ScheduledBackup"}


def test_crd_missing_required(tmp_path):
    def mutate(files):
        del doc(files, "database-stalwart.yaml")["spec"]["owner"]
    assert_fails(render(tmp_path, mutate), "schema-crd", "Database", "stalwart", "owner")


def test_crd_unknown_root_and_metadata_fields(tmp_path):
    def mutate(files):
        doc(files, "tenant-s3.yaml")["specs"] = {}
        doc(files, "dragonfly-kv.yaml")["metadata"]["label"] = {"a": "b"}
    report = render(tmp_path, mutate)
    assert_fails(report, "schema-crd")
    assert {item.kind for item in report.findings} == {"Tenant", "Dragonfly"}


def test_crd_preserve_unknown_fields_are_open(tmp_path):
    """The Tenant's and others' free-form maps stay open: int-or-string and additionalProperties maps accept values."""
    def mutate(files):
        doc(files, "dragonfly-kv.yaml")["spec"]["pdb"] = {"maxUnavailable": "50%"}
        doc(files, "cluster-pg.yaml")["spec"]["postgresql"] = {"parameters": {"max_connections": "200"}}
    assert render(tmp_path, mutate).ok


# --------------------------------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("name, new, why", [
    ("configmap-web.yaml", "Web_Config", "DNS-1123 subdomain"),
    ("service-kv.yaml", "1kv", "DNS-1035 label"),
    ("statefulset-kv.yaml", "kv.main", "DNS-1123 label"),
    ("cronjob-report.yaml", "r" * 53, "52 characters"),
    ("cluster-pg.yaml", "pg.main", "DNS-1035 label"),
])
def test_metadata_name(tmp_path, name, new, why):
    def mutate(files):
        doc(files, name)["metadata"]["name"] = new
    # The name is also used by other rules' selectors; keep the finding set to the name rule by checking it is present.
    report = render(tmp_path, mutate)
    hits = [item for item in report.findings if item.rule == "metadata-name"]
    assert hits and why in hits[0].message, report.format()


def test_metadata_namespace_required_and_forbidden(tmp_path):
    def mutate(files):
        del doc(files, "certificate-mail.yaml")["metadata"]["namespace"]
        doc(files, "clusterissuer-selfsigned.yaml")["metadata"]["namespace"] = fixtures.NS
    report = render(tmp_path, mutate)
    assert_fails(report, "metadata-namespace")
    assert {item.kind for item in report.findings} == {"Certificate", "ClusterIssuer"}


# --------------------------------------------------------------------------------------------------- images


@pytest.mark.parametrize("image", ["registry.example.org/app:latest", "registry.example.org/app", "app",
                                   "registry.example.org:5000/app", "registry.example.org/app@sha256:" + "a" * 64,
                                   "registry.example.org/app:1.0@sha256:short", "Registry.example.org/App:1.0"])
def test_image_not_pinned(tmp_path, image):
    def mutate(files):
        doc(files, "deployment-web.yaml")["spec"]["template"]["spec"]["initContainers"][0]["image"] = image
    assert_fails(render(tmp_path, mutate), "image-pinned", "Deployment", "web", "initContainers[0](init)")


@pytest.mark.parametrize("image", ["app:1.0", "registry.example.org:5000/team/app:v1.2.3", "localhost/app:1",
                                   "registry.example.org/app:1.0@sha256:" + "a" * 64])
def test_image_pinned_forms(image):
    assert policy.image_problem(image) is None


@pytest.mark.parametrize("name, path", [
    ("cluster-pg.yaml", ("spec", "imageName")),
    ("dragonfly-kv.yaml", ("spec", "image")),
    ("tenant-s3.yaml", ("spec", "image")),
    ("cronjob-report.yaml", ("spec", "jobTemplate", "spec", "template", "spec", "containers", 0, "image")),
])
def test_image_latest_in_operator_crs_and_cronjob(tmp_path, name, path):
    def mutate(files):
        node = doc(files, name)
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = "registry.example.org/thing:latest"
    assert_fails(render(tmp_path, mutate), "image-pinned", contains="latest")


def test_operator_cr_without_image_fails(tmp_path):
    def mutate(files):
        del doc(files, "cluster-pg.yaml")["spec"]["imageName"]
    assert_fails(render(tmp_path, mutate), "image-pinned", "Cluster", "pg")


# --------------------------------------------------------------------------------------------------- resources


def test_missing_limits(tmp_path):
    def mutate(files):
        del doc(files, "statefulset-kv.yaml")["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert_fails(render(tmp_path, mutate), "resources", "StatefulSet", "kv", "limits.cpu, limits.memory")


def test_missing_request_on_init_container(tmp_path):
    def mutate(files):
        del doc(files, "deployment-web.yaml")["spec"]["template"]["spec"]["initContainers"][0]["resources"]["requests"]["memory"]
    assert_fails(render(tmp_path, mutate), "resources", "Deployment", "web", "requests.memory")


@pytest.mark.parametrize("name, mutate_spec", [
    ("dragonfly-kv.yaml", lambda spec: spec.pop("resources")),
    ("tenant-s3.yaml", lambda spec: spec["pools"][0]["resources"].pop("limits")),
    ("cluster-pg.yaml", lambda spec: spec["resources"]["limits"].pop("memory")),
])
def test_missing_resources_in_operator_crs(tmp_path, name, mutate_spec):
    def mutate(files):
        mutate_spec(doc(files, name)["spec"])
    assert_fails(render(tmp_path, mutate), "resources", fixtures.good_set()[name][0]["kind"])


# --------------------------------------------------------------------------------------------------- securityContext


def _web_spec(files):
    return doc(files, "deployment-web.yaml")["spec"]["template"]["spec"]


@pytest.mark.parametrize("change, message", [
    (lambda spec: spec["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
    (lambda spec: spec["containers"][0]["securityContext"].update(runAsNonRoot=False), "runAsNonRoot"),
    (lambda spec: spec["containers"][0]["securityContext"].update(runAsUser=0), "runAsUser is 0"),
    (lambda spec: spec["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
    (lambda spec: spec["containers"][0]["securityContext"].update(privileged=True), "privileged"),
    (lambda spec: spec["containers"][0]["securityContext"]["capabilities"].update(drop=["NET_RAW"]), "drop does not contain ALL"),
    (lambda spec: spec["containers"][0]["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]), "SYS_ADMIN"),
    (lambda spec: spec["securityContext"].pop("seccompProfile"), "seccompProfile"),
    (lambda spec: spec["initContainers"][0]["securityContext"].update(seccompProfile={"type": "Unconfined"}), "Unconfined"),
    (lambda spec: spec["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
    (lambda spec: spec.update(hostNetwork=True), "hostNetwork"),
    (lambda spec: spec["volumes"].append({"name": "host", "hostPath": {"path": "/var"}}), "hostPath"),
])
def test_security_context(tmp_path, change, message):
    def mutate(files):
        change(_web_spec(files))
    assert_fails(render(tmp_path, mutate), "security-context", "Deployment", "web", message)


def test_security_context_allowed_variants(tmp_path):
    def mutate(files):
        spec = _web_spec(files)
        seccomp = spec["securityContext"].pop("seccompProfile")
        for item in spec["containers"] + spec["initContainers"]:
            item["securityContext"]["seccompProfile"] = seccomp
        spec["containers"][0]["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert render(tmp_path, mutate).ok


def test_writable_root_needs_the_annotation(tmp_path):
    def mutate(files):
        sts = doc(files, "statefulset-kv.yaml")
        sts["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    assert render(tmp_path, mutate).ok

    def mutate_without(files):
        mutate(files)
        del doc(files, "statefulset-kv.yaml")["metadata"]["annotations"]
    assert_fails(render(tmp_path / "b", mutate_without), "security-context", "StatefulSet", "kv", policy.WRITABLE_ROOT_ANNOTATION)


# --------------------------------------------------------------------------------------------------- secrets


def test_secret_in_configmap_key(tmp_path):
    def mutate(files):
        doc(files, "configmap-web.yaml")["data"]["api_token"] = "s3cr3t-value"
    assert_fails(render(tmp_path, mutate), "configmap-secret", "ConfigMap", "web", "api_token")


@pytest.mark.parametrize("content, what", [
    ("[store]\npassword = \"hunter2\"\n", "password"),
    ("requirepass hunter2\n", "requirepass"),
    ("s3:\n  secret_key: abcd1234\n", "secret_key"),
    ("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "PEM"),
])
def test_secret_in_configmap_content(tmp_path, content, what):
    def mutate(files):
        doc(files, "configmap-web.yaml")["data"]["app.conf"] = content
    assert_fails(render(tmp_path, mutate), "configmap-secret", "ConfigMap", "web", what)


def test_secret_literal_env_value(tmp_path):
    def mutate(files):
        _web_spec(files)["containers"][0]["env"] = [{"name": "DB_PASSWORD", "value": "hunter2"}]
    assert_fails(render(tmp_path, mutate), "secret-outside-secret", "Deployment", "web", "DB_PASSWORD")


@pytest.mark.parametrize("change, what", [
    (lambda files: doc(files, "dragonfly-kv.yaml")["spec"]["args"].append("--requirepass=hunter2"), "requirepass"),
    (lambda files: doc(files, "cluster-pg.yaml")["spec"].update(postgresql={"parameters": {"my_secret_token": "abc123"}}), "my_secret_token"),
])
def test_secret_in_other_kinds(tmp_path, change, what):
    assert_fails(render(tmp_path, change), "secret-outside-secret", contains=what)


@pytest.mark.parametrize("name, secret", [
    ("password", True), ("DB_PASSWORD", True), ("apiKey", True), ("s3_secret_key", True), ("tls.key", True), ("requirepass", True),
    ("key", False), ("secretName", False), ("password_file", False), ("passwordSecret", False), ("password_encryption", False),
    ("ssl_key_file", False), ("keyspace", False), ("accessKeyId", False), ("host", False),
])
def test_secret_name_heuristic(name, secret):
    assert policy.secret_like_name(name) is secret


@pytest.mark.parametrize("value, secret", [
    ("hunter2", True), ("", False), ("/run/secrets/x", False), ("${PASSWORD}", False), ("$(DFLY_PASSWORD)", False),
    ("%{file:/run/secrets/db}%", False), ("%{env:DB_PASSWORD}%", False),
])
def test_secret_value_heuristic(value, secret):
    assert policy.secret_like_value(value) is secret


# --------------------------------------------------------------------------------------------------- nulls


def test_null_value(tmp_path):
    def mutate(files):
        _web_spec(files)["nodeSelector"] = None
    assert_fails(render(tmp_path, mutate), "no-null", "Deployment", "web", "spec.template.spec.nodeSelector")


def test_null_value_in_cr_is_also_a_schema_error(tmp_path):
    def mutate(files):
        doc(files, "tenant-s3.yaml")["spec"]["features"] = None
    report = render(tmp_path, mutate)
    assert report.rules() == {"no-null", "schema-crd"}, report.format()


# --------------------------------------------------------------------------------------------------- namespaces, NetworkPolicies


def test_missing_default_deny(tmp_path):
    def mutate(files):
        del files["networkpolicy-default-deny.yaml"]
    assert_fails(render(tmp_path, mutate), "default-deny", "Namespace", fixtures.NS)


def test_default_deny_with_rules_is_not_default_deny(tmp_path):
    def mutate(files):
        doc(files, "networkpolicy-default-deny.yaml")["spec"]["ingress"] = [{}]
    assert_fails(render(tmp_path, mutate), "default-deny")


def test_default_deny_ingress_only_is_not_enough(tmp_path):
    def mutate(files):
        doc(files, "networkpolicy-default-deny.yaml")["spec"]["policyTypes"] = ["Ingress"]
    assert_fails(render(tmp_path, mutate), "default-deny")


def test_missing_allow_policy(tmp_path):
    def mutate(files):
        del files["networkpolicy-app.yaml"]
    assert_fails(render(tmp_path, mutate), "allow-policy", "Namespace", fixtures.NS)


def test_namespace_without_pod_security_label(tmp_path):
    def mutate(files):
        doc(files, "namespace-mail.yaml")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"
    assert_fails(render(tmp_path, mutate), "pod-security-label", "Namespace", fixtures.NS)


def test_second_namespace_needs_its_own_policies(tmp_path):
    def mutate(files):
        files["namespace-ops.yaml"] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "ops", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}]
    report = render(tmp_path, mutate)
    assert report.rules() == {"default-deny", "allow-policy"}, report.format()
    assert {item.name for item in report.findings} == {"ops"}


def test_undeclared_namespace(tmp_path):
    def mutate(files):
        del files["namespace-mail.yaml"]
    assert_fails(render(tmp_path, mutate), "namespace-declared", contains=fixtures.NS)
    assert render(tmp_path / "b", mutate, external_namespaces=[fixtures.NS]).ok


# --------------------------------------------------------------------------------------------------- PDBs


def test_missing_pdb(tmp_path):
    def mutate(files):
        del files["poddisruptionbudget-web.yaml"]
    assert_fails(render(tmp_path, mutate), "pdb", "Deployment", "web", "2 replicas")


def test_pdb_selecting_other_pods_does_not_count(tmp_path):
    def mutate(files):
        doc(files, "poddisruptionbudget-web.yaml")["spec"]["selector"] = {"matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["web"]}]}
    assert_fails(render(tmp_path, mutate), "pdb", "Deployment", "web")


def test_dragonfly_needs_pdb_or_spec_pdb(tmp_path):
    def mutate(files):
        del files["poddisruptionbudget-dragonfly.yaml"]
    assert_fails(render(tmp_path, mutate), "pdb", "Dragonfly", "dragonfly")

    def mutate_operator_pdb(files):
        mutate(files)
        doc(files, "dragonfly-kv.yaml")["spec"]["pdb"] = {"maxUnavailable": 1}
    assert render(tmp_path / "b", mutate_operator_pdb).ok


def test_single_replica_and_cnpg_need_no_pdb(tmp_path):
    def mutate(files):
        del files["poddisruptionbudget-dragonfly.yaml"]
        doc(files, "dragonfly-kv.yaml")["spec"]["replicas"] = 1
        doc(files, "statefulset-kv.yaml")["spec"]["replicas"] = 1
    report = render(tmp_path, mutate)
    assert report.ok, report.format()
    assert doc(fixtures.good_set(), "cluster-pg.yaml")["spec"]["instances"] == 3


# --------------------------------------------------------------------------------------------------- kustomize


def test_file_not_listed_in_kustomization(tmp_path):
    files = fixtures.good_set()
    listed = sorted(name for name in files if name != "service-kv.yaml")
    report = render(tmp_path, write={"listed": listed})
    assert_fails(report, "kustomize-listed", contains="service-kv.yaml")


def test_listed_file_missing(tmp_path):
    listed = sorted(fixtures.good_set()) + ["service-gone.yaml"]
    report = render(tmp_path, write={"listed": listed})
    assert {"kustomize-missing", "kustomize-build"} == report.rules(), report.format()


def test_kustomize_build_failure(tmp_path):
    def mutate(files):
        files["configmap-web-again.yaml"] = copy.deepcopy(files["configmap-web.yaml"])
    report = render(tmp_path, mutate)
    assert_fails(report, "kustomize-build", contains="kubectl kustomize failed")


def test_subdirectories_are_recursed(tmp_path):
    def mutate(files):
        files["extra/configmap-other.yaml"] = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": fixtures.NS},
                                                "data": {"password": "hunter2"}}]
    report = render(tmp_path, mutate)
    assert_fails(report, "configmap-secret", "ConfigMap", "other")


def test_yaml_parse_error(tmp_path):
    def mutate(files):
        files["broken.yaml"] = "kind: [unclosed\n"
    report = render(tmp_path, mutate, kustomize=False)
    assert_fails(report, "yaml")


# --------------------------------------------------------------------------------------------------- command line


def test_main_exit_codes(tmp_path, capsys):
    good = fixtures.write_dir(tmp_path / "good", fixtures.good_set())
    assert main([good]) == 0
    assert capsys.readouterr().out.rstrip().endswith("k8s-validate: 21 documents, 0 schema errors, 0 policy violations")
    files = fixtures.good_set()
    doc(files, "deployment-web.yaml")["spec"]["template"]["spec"]["containers"][0]["image"] = "web:latest"
    del files["poddisruptionbudget-web.yaml"]
    bad = fixtures.write_dir(tmp_path / "bad", files)
    assert main([bad]) == 1
    out = capsys.readouterr().out
    assert "POLICY deployment-web.yaml Deployment/web [image-pinned]" in out
    assert "[pdb]" in out
    assert out.rstrip().endswith("20 documents, 0 schema errors, 2 policy violations")
    assert main([str(tmp_path / "nowhere")]) == 2


def test_script_entry_point(tmp_path):
    good = fixtures.write_dir(tmp_path / "good", fixtures.good_set())
    result = subprocess.run([SCRIPT, good], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 schema errors, 0 policy violations" in result.stdout
    result = subprocess.run([sys.executable, "-m", "tests.kubernetes.validate", "--no-kustomize", good], capture_output=True, text=True,
                            check=False, cwd=schemas.TOP)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name,secret", [("topologyKey", False), ("matchLabelKeys", False), ("apiKey", True),
                                         ("s3_secret_key", True), ("key", False)])
def test_api_fields_ending_in_key(name, secret):
    from tests.kubernetes.policy import secret_like_name
    assert secret_like_name(name) is secret
