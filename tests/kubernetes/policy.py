"""The project's policy on rendered Kubernetes manifests (tests/kubernetes/README.md lists every rule).

Each check takes the list of documents of one rendered directory and yields (doc, rule, message) tuples."""
import re

WRITABLE_ROOT_ANNOTATION = "talentmesh.mail/writable-root-reason"
PSS_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ALLOWED_ADDED_CAPABILITIES = frozenset(("NET_BIND_SERVICE",))
# Pod Security "restricted" volume types (everything else, hostPath above all, is refused at admission).
RESTRICTED_VOLUME_TYPES = frozenset(("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"))

# Where each built-in workload kind keeps its pod template spec, and whether it has spec.replicas.
POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
REPLICATED_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController")

# Secret-looking names, by words (split on separators and camelCase). A name is secret-like when one of its words is
# in SECRET_WORDS, or it has two or more words and the last is "key" (apiKey, s3_secret_key, tls.key, DKIM_KEY), unless
# its last word says it is a reference or a setting rather than the value (secretName, password_file, keyRef,
# password_encryption). A lone "key" is a reference (secretKeyRef.key, CNPG's {name, key}) and is not secret-like.
SECRET_WORDS = frozenset(("password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "credential", "credentials",
                          "privatekey", "requirepass", "masterauth", "auth"))
REFERENCE_WORDS = frozenset(("name", "names", "ref", "refs", "file", "files", "path", "dir", "selector", "id", "from", "secret",
                             "encryption", "policy", "method", "algorithm", "type", "length", "size", "bits", "usages", "usage",
                             "format", "encoding", "mode", "enabled", "ttl", "lifetime", "expiry", "rotation", "hash",
                             "scheme", "command", "env", "template", "store", "storage", "source", "provider"))
# Values that refer to a secret instead of being one: empty, a path, a shell or Stalwart macro, a Jinja2 expression.
PLACEHOLDER_VALUE = re.compile(r"^(|/.*|\$\{[^}]*\}|\$\([^)]*\)|\$[A-Za-z_][A-Za-z0-9_]*|%\{(env|file):[^}]*\}%|\{\{.*\}\}|\*+)$")
PRIVATE_KEY_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# key = value / key: value lines in configuration files carried by ConfigMap values, and --flag=value arguments.
CONFIG_LINE = re.compile(r"""^\s*["']?([A-Za-z0-9_.\-]+)["']?\s*[:=]\s*(.*?)\s*[,;]?\s*$""")
REDIS_DIRECTIVE = re.compile(r"^\s*(requirepass|masterauth)\s+(\S.*?)\s*$", re.IGNORECASE)
FLAG_ARG = re.compile(r"^--?([A-Za-z0-9_.\-]+)=(.*)$")

# Image references: [registry[:port]/]path[:tag][@sha256:digest], path components as the distribution spec says.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REPOSITORY = re.compile(r"^(?:(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|localhost)(?::[0-9]+)?/)?%s(?:/%s)*$" % (_COMPONENT, _COMPONENT))
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def name_words(name):
    """Words of a field or key name: separators and camelCase split, lower-cased."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if word]


# Kubernetes API fields whose names end in "key" but hold no key material.
API_KEY_FIELDS = frozenset(("topologykey", "matchlabelkeys", "mismatchlabelkeys"))


def secret_like_name(name):
    words = name_words(name)
    if not words or words[-1] in REFERENCE_WORDS or "".join(words) in API_KEY_FIELDS:
        return False
    if any(word in SECRET_WORDS for word in words):
        return True
    return len(words) > 1 and words[-1] == "key"


def secret_like_value(value):
    """A scalar is treated as a secret value unless it is a placeholder that refers to one."""
    text = str(value).strip().strip("'\"")
    return not PLACEHOLDER_VALUE.match(text)


def secret_assignments(text):
    """(name, reason) for every secret-looking assignment in a text (configuration file content or one argument)."""
    found = []
    if PRIVATE_KEY_PEM.search(text):
        found.append(("PEM", "contains a PEM private key"))
    for line in str(text).splitlines():
        match = REDIS_DIRECTIVE.match(line) or FLAG_ARG.match(line.strip()) or CONFIG_LINE.match(line)
        if match and secret_like_name(match.group(1)) and secret_like_value(match.group(2)):
            found.append((match.group(1), "sets %s to a literal value" % match.group(1)))
    return found


def get_path(data, path):
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def api_group_of(data):
    """The API group of a document's apiVersion ('' for the core group)."""
    api_version = str(data.get("apiVersion", ""))
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def annotations(data):
    return (get_path(data, ("metadata", "annotations")) or {}) if isinstance(data, dict) else {}


def image_problem(image):
    """None when the image reference has an explicit tag other than latest (a digest may follow), else why not."""
    if not isinstance(image, str) or not image:
        return "no image set"
    ref, _sep, digest = image.partition("@")
    head, _slash, last = ref.rpartition("/")
    repository, colon, tag = last.partition(":")
    repository = "%s/%s" % (head, repository) if head else repository
    if (digest or _sep) and not IMAGE_DIGEST.match(digest):
        return "image %r has a malformed digest" % image
    if not colon:
        return "image %r has no explicit tag" % image
    if not IMAGE_TAG.match(tag) or not IMAGE_REPOSITORY.match(repository):
        return "image %r is not a valid reference" % image
    if tag == "latest":
        return "image %r uses the latest tag" % image
    return None


def resources_problem(resources):
    missing = []
    for section in ("requests", "limits"):
        values = (resources or {}).get(section) or {}
        for res in ("cpu", "memory"):
            if values.get(res) in (None, ""):
                missing.append("%s.%s" % (section, res))
    return ("missing resources " + ", ".join(missing)) if missing else None


# ---------------------------------------------------------------------------------------------------------------
# workloads


def pod_specs(doc):
    """(where, pod spec, pod template metadata) for built-in workloads."""
    data = doc.data
    path = POD_SPEC_PATHS.get(data.get("kind"))
    if path is None or not isinstance(get_path(data, path), dict):
        return []
    template_meta = get_path(data, path[:-1] + ("metadata",))
    return [(".".join(path), get_path(data, path), template_meta or {})]


def _containers(spec, where):
    for field in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(field) or []):
            if isinstance(container, dict):
                yield "%s.%s[%d](%s)" % (where, field, index, container.get("name", "?")), container


def check_container_security(doc, spec, where, template_meta):
    pod_sc = spec.get("securityContext") or {}
    writable_ok = any(str(annotations(meta).get(WRITABLE_ROOT_ANNOTATION, "")).strip()
                      for meta in (doc.data, {"metadata": template_meta}))
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            yield "security-context", "%s: %s is true" % (where, flag)
    for volume in spec.get("volumes") or []:
        kinds = [key for key in volume if key != "name"]
        if any(key not in RESTRICTED_VOLUME_TYPES for key in kinds):
            yield "security-context", "%s: volume %s uses %s (not allowed by Pod Security restricted)" % (where, volume.get("name"), ",".join(kinds))
    if pod_sc.get("runAsUser") == 0:
        yield "security-context", "%s: securityContext.runAsUser is 0" % where
    for place, container in _containers(spec, where):
        csc = container.get("securityContext") or {}
        if csc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            yield "security-context", "%s: runAsNonRoot is not true (pod or container)" % place
        if csc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            yield "security-context", "%s: runAsUser is 0" % place
        if csc.get("privileged"):
            yield "security-context", "%s: privileged is true" % place
        if csc.get("allowPrivilegeEscalation") is not False:
            yield "security-context", "%s: allowPrivilegeEscalation is not false" % place
        caps = csc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            yield "security-context", "%s: capabilities.drop does not contain ALL" % place
        extra = sorted(set(caps.get("add") or []) - ALLOWED_ADDED_CAPABILITIES)
        if extra:
            yield "security-context", "%s: capabilities.add %s (only NET_BIND_SERVICE may be added)" % (place, ",".join(extra))
        seccomp = (csc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp != "RuntimeDefault":
            yield "security-context", "%s: seccompProfile.type is %s, not RuntimeDefault (pod or container)" % (place, seccomp)
        if csc.get("readOnlyRootFilesystem") is not True and not writable_ok:
            yield "security-context", "%s: readOnlyRootFilesystem is not true and no %s annotation says why" % (place, WRITABLE_ROOT_ANNOTATION)
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                yield "security-context", "%s: hostPort %s" % (place, port.get("hostPort"))


def check_workload(doc):
    for where, spec, template_meta in pod_specs(doc):
        for place, container in _containers(spec, where):
            problem = image_problem(container.get("image"))
            if problem:
                yield "image-pinned", "%s: %s" % (place, problem)
            problem = resources_problem(container.get("resources"))
            if problem:
                yield "resources", "%s: %s" % (place, problem)
        yield from check_container_security(doc, spec, where, template_meta)


# Operator custom resources: (image field, resources locations) of the pods they become.
OPERATOR_POD_FIELDS = {
    ("postgresql.cnpg.io", "Cluster"): ("imageName", lambda spec: [("spec.resources", spec.get("resources"))]),
    ("dragonflydb.io", "Dragonfly"): ("image", lambda spec: [("spec.resources", spec.get("resources"))]),
    ("minio.min.io", "Tenant"): ("image", lambda spec: [("spec.pools[%d](%s).resources" % (index, pool.get("name", "?")), pool.get("resources"))
                                                        for index, pool in enumerate(spec.get("pools") or [])]),
}


def check_operator_cr(doc):
    """Operator custom resources: the fields that become the pods' image and resources."""
    data = doc.data
    fields = OPERATOR_POD_FIELDS.get((api_group_of(data), data.get("kind")))
    if fields is None:
        return
    image_field, resource_places = fields
    spec = data.get("spec") or {}
    # A CNPG Cluster may take its image from an ImageCatalog instead.
    if "imageCatalogRef" not in spec:
        problem = image_problem(spec.get(image_field))
        if problem:
            yield "image-pinned", "spec.%s: %s" % (image_field, problem)
    for where, resources in resource_places(spec):
        problem = resources_problem(resources)
        if problem:
            yield "resources", "%s: %s" % (where, problem)


# ---------------------------------------------------------------------------------------------------------------
# secrets


def _walk(node, path=""):
    """(path, key, value) for every mapping entry, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = "%s.%s" % (path, key) if path else str(key)
            yield sub, key, value
            yield from _walk(value, sub)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, "%s[%d]" % (path, index))


def check_secrets(doc):
    """Secret values live in kind Secret only: no stringData/embedded Secret elsewhere, no literal env values or
    arguments with secret-like names, no secret-like scalar fields, and (ConfigMap) no secret-like keys or lines."""
    data = doc.data
    kind = data.get("kind")
    if kind == "Secret":
        return
    if kind == "ConfigMap":
        for section in ("data", "binaryData"):
            for key, value in (data.get(section) or {}).items():
                if secret_like_name(key) and secret_like_value(value):
                    yield "configmap-secret", "%s.%s: the key looks like a secret and has a value" % (section, key)
                for name, reason in secret_assignments(str(value)):
                    yield "configmap-secret", "%s.%s: %s" % (section, key, reason)
        return
    for path, key, value in _walk(data):
        if path.startswith("metadata."):
            continue
        if key == "stringData" or (key == "kind" and value == "Secret"):
            yield "secret-outside-secret", "%s: Secret data in a %s" % (path, kind)
        elif isinstance(value, str) and key not in ("value", "name") and secret_like_name(key) and secret_like_value(value):
            yield "secret-outside-secret", "%s: %s looks like a secret value" % (path, key)
        elif key == "env" and isinstance(value, list):
            for index, var in enumerate(value):
                if isinstance(var, dict) and "value" in var and secret_like_name(var.get("name", "")) and secret_like_value(var["value"]):
                    yield "secret-outside-secret", "%s[%d](%s): literal value; use valueFrom.secretKeyRef" % (path, index, var.get("name"))
        elif key in ("args", "command") and isinstance(value, list):
            for index, arg in enumerate(value):
                for name, reason in secret_assignments(str(arg)):
                    yield "secret-outside-secret", "%s[%d]: %s" % (path, index, reason)
        elif isinstance(value, str) and PRIVATE_KEY_PEM.search(value):
            yield "secret-outside-secret", "%s: contains a PEM private key" % path


# ---------------------------------------------------------------------------------------------------------------
# nulls


def check_nulls(doc):
    def walk(node, path):
        if node is None:
            yield path or "(document)"
        elif isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, "%s.%s" % (path, key) if path else str(key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, "%s[%d]" % (path, index))
    for path in walk(doc.data, ""):
        yield "no-null", "%s is null (leave empty optional fields out)" % path


# ---------------------------------------------------------------------------------------------------------------
# set-wide rules


def selector_matches(selector, labels):
    """A metav1.LabelSelector against a label map (an empty selector matches everything)."""
    if not isinstance(selector, dict):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _is_kind(doc, api_group, kind):
    return doc.data.get("kind") == kind and api_group_of(doc.data) == api_group


def replicated_pod_labels(doc):
    """(replicas, pod labels) for workloads that need a PDB of ours when replicated; None for the rest. CNPG Cluster is
    exempt (its operator creates the PDBs); Dragonfly's pods carry the operator's labels plus spec.labels and
    spec.podMetadata.labels, and a Dragonfly with spec.pdb gets its PDB from the operator."""
    data = doc.data
    spec = data.get("spec") or {}
    name = get_path(data, ("metadata", "name"))
    if data.get("kind") in REPLICATED_KINDS and data.get("apiVersion") in ("apps/v1", "v1"):
        replicas = spec.get("replicas", 1)
        return replicas, get_path(spec, ("template", "metadata", "labels")) or {}
    if _is_kind(doc, "dragonflydb.io", "Dragonfly") and not spec.get("pdb"):
        # The operator's labels (internal/resources/const.go): app=<name> plus the recommended app.kubernetes.io set.
        labels = {"app": name, "app.kubernetes.io/name": "dragonfly", "app.kubernetes.io/instance": name, "app.kubernetes.io/component": "dragonfly",
                  "app.kubernetes.io/part-of": "dragonfly", "app.kubernetes.io/managed-by": "dragonfly-operator"}
        labels.update(spec.get("labels") or {})
        labels.update(get_path(spec, ("podMetadata", "labels")) or {})
        return spec.get("replicas", 1), labels
    return None


def check_pdbs(docs):
    pdbs = [doc for doc in docs if doc.data.get("kind") == "PodDisruptionBudget"]
    for doc in docs:
        found = replicated_pod_labels(doc)
        if found is None:
            continue
        replicas, labels = found
        if not isinstance(replicas, int) or replicas <= 1:
            continue
        namespace = doc.namespace
        if not any(pdb.namespace == namespace and selector_matches(get_path(pdb.data, ("spec", "selector")), labels) for pdb in pdbs):
            yield doc, "pdb", "%d replicas and no PodDisruptionBudget in namespace %s selects its pods" % (replicas, namespace)


def _is_default_deny(policy):
    spec = policy.data.get("spec") or {}
    return (spec.get("podSelector") == {} and sorted(spec.get("policyTypes") or []) == ["Egress", "Ingress"]
            and not spec.get("ingress") and not spec.get("egress"))


def _has_rules(policy):
    spec = policy.data.get("spec") or {}
    return bool(spec.get("ingress") or spec.get("egress"))


def check_namespaces(docs, external_namespaces=()):
    """Every namespace of the set: a Namespace document with the Pod Security restricted enforce label (unless it is
    declared external), one default-deny NetworkPolicy and at least one explicit allow policy."""
    declared = {}
    for doc in docs:
        if doc.data.get("kind") == "Namespace" and doc.data.get("apiVersion") == "v1":
            declared[get_path(doc.data, ("metadata", "name"))] = doc
    used = {}
    for doc in docs:
        if doc.namespace:
            used.setdefault(doc.namespace, doc)
    for name, doc in sorted(declared.items(), key=lambda item: str(item[0])):
        labels = get_path(doc.data, ("metadata", "labels")) or {}
        if labels.get(PSS_ENFORCE_LABEL) != "restricted":
            yield doc, "pod-security-label", "namespace %s lacks label %s: restricted" % (name, PSS_ENFORCE_LABEL)
    for name in sorted(set(declared) | set(used), key=str):
        anchor = declared.get(name) or used[name]
        if name not in declared and name not in external_namespaces:
            yield anchor, "namespace-declared", ("namespace %s is used but no Namespace document declares it "
                                                 "(--external-namespace if another render creates it)" % name)
        policies = [doc for doc in docs if doc.data.get("kind") == "NetworkPolicy" and doc.namespace == name]
        denies = [doc for doc in policies if _is_default_deny(doc)]
        if not denies:
            yield anchor, "default-deny", ("namespace %s has no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, "
                                           "no rules)" % name)
        if not [doc for doc in policies if doc not in denies and _has_rules(doc)]:
            yield anchor, "allow-policy", "namespace %s has no explicit allow NetworkPolicy (one with ingress or egress rules)" % name


def check_document(doc):
    """Per-document rules, as (rule, message)."""
    for check in (check_nulls, check_workload, check_operator_cr, check_secrets):
        yield from check(doc)


def check_set(docs, external_namespaces=()):
    """Rules over the whole rendered set, as (doc, rule, message)."""
    yield from check_pdbs(docs)
    yield from check_namespaces(docs, external_namespaces)
