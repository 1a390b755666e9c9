"""The registry catalogue, loaded from the schema file Stalwart ships (never re-typed by hand)."""
import gzip
import json
import os

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(TOP, ".cache", "upstream", "stalwart-schema")
# Stalwart version lines the emulator can load a schema for, and the release each emulates. The schema of a line lives
# at .cache/upstream/stalwart-schema/<line>/schema.json.gz (scripts/upstream.lock); 0.16 also at the original path.
LINES = {"0.16": "0.16.18"}
DEFAULT_LINE = "0.16"


def schema_path(line):
    """The cached schema of a Stalwart version line; SystemExit naming what is missing."""
    if line not in LINES:
        raise SystemExit("the emulator knows no Stalwart %s schema (known lines: %s); Stalwart 1.0 and later are not "
                         "emulated" % (line, ", ".join(sorted(LINES))))
    for path in (os.path.join(CACHE, "v" + line, "schema.json.gz"), os.path.join(CACHE, "schema.json.gz")):
        if os.path.exists(path):
            return path
    raise SystemExit("no schema for Stalwart %s in %s: run `make upstream` (scripts/fetch-upstream.sh)" % (line, CACHE))


# Types whose ids come from a per-type counter (small ids); all others get 64-bit snowflake ids.
SEQUENTIAL = {"x:Account", "x:Domain", "x:Tenant", "x:Role", "x:MailingList", "x:OAuthClient"}
# Unique keys beyond the special cases handled in registry.py (domain names, email addresses).
UNIQUE = {
    "x:NetworkListener": ("name",), "x:ClusterRole": ("name",), "x:OAuthClient": ("clientId",),
    "x:AllowedIp": ("address",), "x:BlockedIp": ("address",), "x:SpamRule": ("name",), "x:SpamDnsblServer": ("name",),
    "x:SpamTag": ("tag",), "x:SpamFileExtension": ("extension",), "x:MemoryLookupKey": ("namespace", "key"),
    "x:SieveSystemScript": ("name",),
}


class Catalog:
    def __init__(self, path=None, line=None):
        self.line = line or os.environ.get("STALWART_EMULATOR_LINE") or DEFAULT_LINE
        self.release = LINES.get(self.line, self.line)
        self.path = path or os.environ.get("STALWART_SCHEMA") or schema_path(self.line)
        with open(self.path, "rb") as handle:
            self.raw_gz = handle.read()
        data = json.loads(gzip.decompress(self.raw_gz))
        self.objects = data["objects"]
        self.schemas = data["schemas"]
        self.fields = data["fields"]
        self.lists = data["lists"]
        self.enums = {name: {v["name"] for v in values} for name, values in data["enums"].items()}
        self._filters = {}
        # every Mta* collection with a `name` is unique on it (MtaRoute, MtaVirtualQueue, MtaMilter, ...)
        self.unique = dict(UNIQUE)
        for obj_type, info in self.objects.items():
            if obj_type.startswith("x:Mta") and info.get("type") == "object" and obj_type not in self.unique:
                if all("name" in self.properties(fs) for dummy, fs in self.variants(obj_type) if fs):
                    if any(fs for dummy, fs in self.variants(obj_type)):
                        self.unique[obj_type] = ("name",)

    # --- object types -------------------------------------------------------------------------------------------
    def kind(self, obj_type):
        """'object' (collection), 'singleton', or None for unknown/non-management types."""
        info = self.objects.get(obj_type)
        if not info or not obj_type.startswith("x:") or info.get("type") == "view":
            return None
        return info.get("type")

    def variants(self, schema_name):
        """[(variant name or None, field schema name or None)] for a schema."""
        sch = self.schemas.get(schema_name)
        if sch is None:
            return [(None, schema_name if schema_name in self.fields else None)]
        if sch["type"] == "single":
            return [(None, sch["schemaName"])]
        return [(v["name"], v.get("schemaName")) for v in sch["variants"]]

    def is_multi(self, schema_name):
        sch = self.schemas.get(schema_name)
        return bool(sch) and sch["type"] == "multiple"

    def properties(self, field_schema):
        if not field_schema:
            return {}
        return self.fields.get(field_schema, {}).get("properties", {})

    def defaults(self, field_schema):
        if not field_schema:
            return {}
        return self.fields.get(field_schema, {}).get("defaults", {})

    def field_schema_for(self, obj_type, variant):
        for name, field_schema in self.variants(obj_type):
            if name == variant:
                return field_schema
        return None

    def label_property(self, obj_type):
        for key in (obj_type, obj_type + "/User"):
            if key in self.lists and self.lists[key].get("labelProperty"):
                return self.lists[key]["labelProperty"]
        return None

    def filters(self, obj_type):
        """Filterable properties (from the list views of the type): {field: filter type}."""
        if obj_type not in self._filters:
            out = {}
            for key, view in self.lists.items():
                if key == obj_type or key.startswith(obj_type + "/"):
                    for flt in view.get("filters", []):
                        out[flt["field"]] = flt["type"]
            if obj_type == "x:Account":
                out["@type"] = "enum"
            self._filters[obj_type] = out
        return self._filters[obj_type]

    @staticmethod
    def target_type(object_name):
        """x:Account/Group -> (x:Account, 'Group'); x:Domain -> (x:Domain, None)."""
        if object_name.count("/") == 1 and object_name.startswith("x:"):
            base, variant = object_name.split("/")
            return base, variant
        return object_name, None
