"""Schema sources for the offline manifest validator, each loaded once per process.

Core kinds: the Kubernetes v1.35.0 strict JSON schemas inside the pinned `kubernetes-validate` package
(`v1.35.0-local-strict`, JSON Schema 2020-12, `$ref`s into one `_definitions.json`). No cache is needed.

Custom resources: the upstream CRD YAML files pinned in scripts/upstream.lock, copied into .cache/upstream/crds/ by
scripts/fetch-upstream.sh. The JSON schema of each served version is derived here from its `openAPIV3Schema`."""
import copy
import json
import os
import re
from functools import lru_cache

import importlib_resources
import jsonschema
import yaml
from referencing import Registry, Resource

K8S_VERSION = "1.35.0"
CORE_SCHEMA_DIR = "v%s-local-strict" % K8S_VERSION
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"

# Kinds of the built-in API that are cluster-scoped (every other built-in kind is namespaced); CRDs say their scope.
CLUSTER_SCOPED_CORE = frozenset((
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass", "CSIDriver",
    "CSINode", "PriorityClass", "RuntimeClass", "IngressClass", "CustomResourceDefinition", "APIService",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "VolumeAttachment", "ComponentStatus", "CertificateSigningRequest",
    "FlowSchema", "PriorityLevelConfiguration", "DeviceClass",
))


class SchemaMissing(Exception):
    """No schema is known for a document's apiVersion/kind."""


def upstream_cache():
    """Directory that scripts/fetch-upstream.sh fills (UPSTREAM_CACHE overrides it, as for the script)."""
    return os.environ.get("UPSTREAM_CACHE", os.path.join(TOP, ".cache", "upstream"))


def crd_dir():
    return os.path.join(upstream_cache(), "crds")


def expected_crd_files():
    """The CRD files scripts/upstream.lock pins, as names under .cache/upstream/crds/."""
    names = []
    with open(os.path.join(TOP, "scripts", "upstream.lock"), encoding="utf-8") as lock:
        for line in lock:
            name = line.split("|", 1)[0].strip()
            if name.startswith("crds/"):
                names.append(name[len("crds/"):])
    return names


@lru_cache(maxsize=1)
def _core_files():
    return importlib_resources.files("kubernetes_validate").joinpath("kubernetes-json-schema", CORE_SCHEMA_DIR)


@lru_cache(maxsize=1)
def core_registry():
    with _core_files().joinpath("_definitions.json").open(encoding="utf-8") as handle:
        definitions = json.load(handle)
    return Resource.from_contents(definitions) @ Registry()


def _core_file_name(api_version, kind):
    # kubernetes-validate's naming: rbac.authorization.k8s.io/v1 -> rbac-v1, v1 -> v1.
    return "%s-%s.json" % (kind.lower(), re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version))


@lru_cache(maxsize=None)
def core_validator(api_version, kind):
    """A strict v1.35 validator for a built-in kind, or SchemaMissing. The file must declare the kind and apiVersion
    (kubernetes-validate also ships schemas of nested types such as affinity-v1.json, which are not resources)."""
    ref = _core_files().joinpath(_core_file_name(api_version, kind))
    if not ref.is_file():
        raise SchemaMissing("no Kubernetes v%s schema for %s %s" % (K8S_VERSION, api_version, kind))
    with ref.open(encoding="utf-8") as handle:
        schema = json.load(handle)
    props = schema.get("properties", {})
    if kind not in props.get("kind", {}).get("enum", []) or api_version not in props.get("apiVersion", {}).get("enum", []):
        raise SchemaMissing("no Kubernetes v%s schema for %s %s" % (K8S_VERSION, api_version, kind))
    return jsonschema.Draft202012Validator(schema, registry=core_registry())


@lru_cache(maxsize=1)
def object_meta_validator():
    """ObjectMeta (strict) from the core definitions, applied to custom resources' metadata, which CRDs leave open."""
    schema = {"$ref": "%s#/$defs/%s" % (DEFINITIONS_URI, OBJECT_META)}
    return jsonschema.Draft202012Validator(schema, registry=core_registry())


def _close(node):
    """Reject unknown fields like the API server's strict field validation: every object schema that lists
    properties, has no additionalProperties and does not preserve unknown fields gets additionalProperties false."""
    if isinstance(node, list):
        for item in node:
            _close(item)
        return
    if not isinstance(node, dict):
        return
    if "properties" in node and "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        node["additionalProperties"] = False
    for key, value in node.items():
        if key == "properties":
            for sub in value.values():
                _close(sub)
        elif key in ("items", "additionalProperties", "not") or key in ("allOf", "anyOf", "oneOf"):
            _close(value)


def crd_json_schema(openapi, group, version, kind):
    """JSON schema of one CRD version. The root is closed too (apiVersion, kind, metadata, spec, status), since the
    API server rejects unknown top-level fields; apiVersion and kind are pinned with enums."""
    schema = copy.deepcopy(openapi)
    _close(schema)
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "enum": ["%s/%s" % (group, version)]}
    props["kind"] = {"type": "string", "enum": [kind]}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    schema["$schema"] = "http://json-schema.org/draft-04/schema#"
    return schema


class CrdSchema:
    """One served version of one CRD."""

    def __init__(self, group, version, kind, namespaced, schema, source):
        self.group = group
        self.version = version
        self.kind = kind
        self.namespaced = namespaced
        self.source = source
        # OpenAPI v3.0 schema objects follow JSON Schema draft 4 (boolean exclusiveMinimum/Maximum).
        self.validator = jsonschema.Draft4Validator(schema)


@lru_cache(maxsize=1)
def crd_schemas():
    """{(apiVersion, kind): CrdSchema} for every CRD pinned in upstream.lock. A pinned file that is absent is an
    error: run scripts/fetch-upstream.sh (make upstream) first."""
    result = {}
    missing = [name for name in expected_crd_files() if not os.path.isfile(os.path.join(crd_dir(), name))]
    if missing:
        raise FileNotFoundError("CRD files missing under %s: %s (run scripts/fetch-upstream.sh)" % (crd_dir(), ", ".join(missing)))
    for name in expected_crd_files():
        with open(os.path.join(crd_dir(), name), encoding="utf-8") as handle:
            for crd in yaml.safe_load_all(handle):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                spec = crd["spec"]
                kind = spec["names"]["kind"]
                for version in spec["versions"]:
                    if not version.get("served", True):
                        continue
                    openapi = version["schema"]["openAPIV3Schema"]
                    schema = crd_json_schema(openapi, spec["group"], version["name"], kind)
                    key = ("%s/%s" % (spec["group"], version["name"]), kind)
                    result[key] = CrdSchema(spec["group"], version["name"], kind, spec.get("scope") == "Namespaced", schema, name)
    return result


def crd_groups():
    return {crd.group for crd in crd_schemas().values()}


def group_of(api_version):
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def is_namespaced(api_version, kind):
    crd = crd_schemas().get((api_version, kind))
    if crd is not None:
        return crd.namespaced
    return kind not in CLUSTER_SCOPED_CORE


def validator_for(api_version, kind):
    """(source, validator) for a document; source is 'crd' or 'core'. Raises SchemaMissing when neither knows it:
    a kind of a CRD group that the pinned CRD does not define, or a built-in kind with no v1.35 schema."""
    crd = crd_schemas().get((api_version, kind))
    if crd is not None:
        return "crd", crd.validator
    if group_of(api_version) in crd_groups():
        raise SchemaMissing("no pinned CRD defines %s %s" % (api_version, kind))
    return "core", core_validator(api_version, kind)
