"""Range and size validation (item counts of sets/lists are reported as MinLength/MaxLength) driven by the
schema's `min`, `max`, `minItems` and `maxLength` (Stalwart's generated `validate()`): failures are `validationFailed` with typed
`validationErrors`, collected for the whole object."""


def _error(kind, prop, required):
    return {"type": kind, "property": prop, "required": required}


def check_value(ptype, value, path, errors):
    """Append validation errors for one already-coerced value of schema type `ptype`."""
    if value is None:
        return
    kind = ptype["type"]
    if kind == "number" and not isinstance(value, bool):
        if "min" in ptype and value < ptype["min"]:
            errors.append(_error("MinValue", path, ptype["min"]))
        if "max" in ptype and value > ptype["max"]:
            errors.append(_error("MaxValue", path, ptype["max"]))
    elif kind == "string" and isinstance(value, str):
        if "min" in ptype and len(value) < ptype["min"]:
            errors.append(_error("MinLength", path, ptype["min"]))
        limit = ptype.get("maxLength", ptype.get("max"))
        if limit is not None and len(value) > limit:
            errors.append(_error("MaxLength", path, limit))
    elif kind in ("set", "objectList", "map") and isinstance(value, dict):
        if "minItems" in ptype and len(value) < ptype["minItems"]:
            errors.append(_error("MinLength", path, ptype["minItems"]))
        if "maxItems" in ptype and len(value) > ptype["maxItems"]:
            errors.append(_error("MaxLength", path, ptype["maxItems"]))


def check_object(catalog, schema_name, value, path=""):
    """Every validation error inside an object (recursing into embedded objects and lists)."""
    errors = []
    _walk(catalog, schema_name, value, path, errors)
    return errors


def _walk(catalog, schema_name, value, path, errors):
    if not isinstance(value, dict):
        return
    variants = dict(catalog.variants(schema_name))
    field_schema = variants.get(value.get("@type")) if catalog.is_multi(schema_name) else next(iter(variants.values()), None)
    for prop, spec in catalog.properties(field_schema).items():
        if spec.get("update") == "serverSet" or prop not in value:
            continue
        sub = (path + "/" + prop).lstrip("/")
        ptype, item = spec["type"], value[prop]
        check_value(ptype, item, sub, errors)
        if ptype["type"] == "object":
            _walk(catalog, ptype["objectName"], item, sub, errors)
        elif ptype["type"] == "objectList" and isinstance(item, dict):
            for pos, entry in item.items():
                _walk(catalog, ptype["objectName"], entry, "%s/%s" % (sub, pos), errors)
