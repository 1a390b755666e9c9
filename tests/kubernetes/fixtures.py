"""A small rendered set that follows every rule (tests mutate copies of it), and a writer for rendered directories."""
import copy
import os

import yaml

NS = "mail"
IMAGE = "registry.example.org/talentmesh/app:1.2.3"
RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}
POD_SC = {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SC = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def container(name="app", image=IMAGE):
    return {"name": name, "image": image, "resources": copy.deepcopy(RESOURCES), "securityContext": copy.deepcopy(CONTAINER_SC),
            "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-db", "key": "password"}}}]}


def pod_template(app):
    return {"metadata": {"labels": {"app.kubernetes.io/name": app}},
            "spec": {"securityContext": copy.deepcopy(POD_SC), "automountServiceAccountToken": False,
                     "initContainers": [container("init")], "containers": [container()],
                     "volumes": [{"name": "tmp", "emptyDir": {}}]}}


def good_set():
    """{file name: [documents]}: core kinds and one CR of each operator."""
    meta = {"namespace": NS}
    return {
        "namespace-mail.yaml": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": NS, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}],
        "networkpolicy-default-deny.yaml": [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                             "metadata": dict(meta, name="default-deny"),
                                             "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}],
        "networkpolicy-app.yaml": [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": dict(meta, name="app"),
                                    "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}, "policyTypes": ["Ingress"],
                                             "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}]}}],
        "configmap-web.yaml": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta, name="web"),
                                "data": {"config.toml": "[store]\npassword = \"%{file:/run/secrets/db/password}%\"\nhost = \"db\"\n",
                                         "password_encryption": "scram-sha-256", "ssl_key_file": "/tls/tls.key"}}],
        "secret-app-db.yaml": [{"apiVersion": "v1", "kind": "Secret", "metadata": dict(meta, name="app-db"),
                                "type": "Opaque", "stringData": {"password": "from-the-vault"}}],
        "deployment-web.yaml": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(meta, name="web"),
                                 "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                                          "template": pod_template("web")}}],
        "poddisruptionbudget-web.yaml": [{"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": dict(meta, name="web"),
                                          "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}}],
        "statefulset-kv.yaml": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                 "metadata": dict(meta, name="kv", annotations={"talentmesh.mail/writable-root-reason": "fixture: writes /data"}),
                                 "spec": {"serviceName": "kv", "selector": {"matchLabels": {"app.kubernetes.io/name": "kv"}},
                                          "template": pod_template("kv")}}],
        "service-kv.yaml": [{"apiVersion": "v1", "kind": "Service", "metadata": dict(meta, name="kv"),
                             "spec": {"selector": {"app.kubernetes.io/name": "kv"}, "ports": [{"name": "redis", "port": 6379, "targetPort": 6379}]}}],
        "cronjob-report.yaml": [{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": dict(meta, name="report"),
                                 "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": dict(
                                     pod_template("report"), spec=dict(pod_template("report")["spec"], restartPolicy="OnFailure"))}}}}],
        "cluster-pg.yaml": [{"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": dict(meta, name="pg"),
                             "spec": {"instances": 3, "imageName": "ghcr.example.org/cloudnative-pg/postgresql:17.5-bookworm",
                                      "resources": copy.deepcopy(RESOURCES), "storage": {"size": "10Gi"},
                                      "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": True,
                                                   "parameters": {"barmanObjectName": "backups"}}]}}],
        "database-stalwart.yaml": [{"apiVersion": "postgresql.cnpg.io/v1", "kind": "Database", "metadata": dict(meta, name="stalwart"),
                                    "spec": {"cluster": {"name": "pg"}, "name": "stalwart", "owner": "stalwart"}}],
        "databaserole-stalwart.yaml": [{"apiVersion": "postgresql.cnpg.io/v1", "kind": "DatabaseRole", "metadata": dict(meta, name="stalwart"),
                                        "spec": {"cluster": {"name": "pg"}, "name": "stalwart", "login": True,
                                                 "passwordSecret": {"name": "app-db"}}}],
        "scheduledbackup-pg.yaml": [{"apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup", "metadata": dict(meta, name="pg-nightly"),
                                     "spec": {"cluster": {"name": "pg"}, "schedule": "0 0 2 * * *", "method": "plugin",
                                              "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}}],
        "objectstore-backups.yaml": [{"apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore", "metadata": dict(meta, name="backups"),
                                      "spec": {"configuration": {"destinationPath": "s3://backups/pg", "endpointURL": "https://s3.mail.svc:9000",
                                                                 "s3Credentials": {"accessKeyId": {"name": "pg-s3", "key": "ACCESS_KEY_ID"},
                                                                                   "secretAccessKey": {"name": "pg-s3", "key": "ACCESS_SECRET_KEY"}}}}}],
        "dragonfly-kv.yaml": [{"apiVersion": "dragonflydb.io/v1alpha1", "kind": "Dragonfly", "metadata": dict(meta, name="dragonfly"),
                               "spec": {"replicas": 2, "image": "docker.example.org/dragonflydb/dragonfly:v1.34.1",
                                        "resources": copy.deepcopy(RESOURCES), "args": ["--maxmemory=200mb", "--requirepass=$(DFLY_PASSWORD)"],
                                        "authentication": {"passwordFromSecret": {"name": "app-db", "key": "password"}}}}],
        "poddisruptionbudget-dragonfly.yaml": [{"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": dict(meta, name="dragonfly"),
                                                "spec": {"minAvailable": 1, "selector": {"matchLabels": {
                                                    "app.kubernetes.io/name": "dragonfly", "app.kubernetes.io/instance": "dragonfly"}}}}],
        "tenant-s3.yaml": [{"apiVersion": "minio.min.io/v2", "kind": "Tenant", "metadata": dict(meta, name="s3"),
                            "spec": {"image": "quay.example.org/minio/minio:RELEASE.2025-04-22T22-12-26Z",
                                     "configuration": {"name": "s3-env"},
                                     "pools": [{"name": "pool-0", "servers": 4, "volumesPerServer": 1, "resources": copy.deepcopy(RESOURCES),
                                                "volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"],
                                                                                 "resources": {"requests": {"storage": "10Gi"}}}}}]}}],
        "certificate-mail.yaml": [{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": dict(meta, name="mail-tls"),
                                   "spec": {"secretName": "mail-tls", "dnsNames": ["mail.example.com"],
                                            "issuerRef": {"name": "lab-ca", "kind": "Issuer"}}}],
        "issuer-lab-ca.yaml": [{"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": dict(meta, name="lab-ca"),
                                "spec": {"ca": {"secretName": "lab-ca"}}}],
        "clusterissuer-selfsigned.yaml": [{"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "selfsigned"},
                                           "spec": {"selfSigned": {}}}],
    }


def write_dir(path, files, listed=None, kustomization_extra=None):
    """Write {name: [documents]} (or raw text) plus a kustomization.yaml listing `listed` (default: every file)."""
    os.makedirs(path, exist_ok=True)
    for name, docs in files.items():
        target = os.path.join(path, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as handle:
            if isinstance(docs, str):
                handle.write(docs)
            else:
                yaml.safe_dump_all(docs, handle, sort_keys=False)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": sorted(files) if listed is None else listed}
    kustomization.update(kustomization_extra or {})
    with open(os.path.join(path, "kustomization.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(kustomization, handle, sort_keys=False)
    return str(path)
