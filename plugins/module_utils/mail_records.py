# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DNS records a mail domain needs, computed from the dns role's settings, and their validation.

Pure Python (no Ansible, no network): validate(config) returns every problem found, compute(config) the record sets
(RRsets) to publish, zone_fragment(rrsets) a BIND zone-file fragment. A record set is a dict
{zone, name, type, ttl, values, kind, domain}; names are absolute (trailing dot), values in presentation format
(TXT values as one or more quoted 255-byte strings)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import hashlib
import ipaddress
import re

LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9.-]+)$")
SELECTOR = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$", re.I)
MANAGED_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "TLSA")
SPF_LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
SRV_PORTS = {"submissions": 465, "submission": 587, "imaps": 993, "imap": 143, "pop3s": 995, "pop3": 110,
             "jmap": 443, "caldavs": 443, "caldav": 80, "carddavs": 443, "carddav": 80, "sieve": 4190,
             "autodiscover": 443}
MAX_TTL = 2147483647

DEFAULTS = {
    "ttl": 3600,
    "mx": [],
    "mail_host": "",
    "spf": {"mechanisms": ["mx"], "all": "-all"},
    "dmarc": {"p": "reject", "rua": ["mailto:postmaster@{domain}"]},
    "mta_sts": {"mode": "enforce", "max_age": 604800},
    "tlsrpt": {"rua": ["mailto:postmaster@{domain}"]},
    "srv": {"submissions": 465, "imaps": 993, "jmap": 443, "caldavs": 443, "carddavs": 443},
    "srv_disabled": ["submission", "imap", "pop3", "pop3s"],
    "autoconfig": True,
    "caa": {"issue": [], "issuewild": [], "iodef": ""},
    "dkim": None,
    "apex_txt": [],
    "extra": [],
}


# --- helpers -----------------------------------------------------------------------------------------------------

def fqdn(name):
    name = (name or "").strip().lower()
    return name if name.endswith(".") else name + "."


def is_hostname(name, allow_underscore=False):
    """A DNS name (LDH labels; underscore labels allowed where the record type needs them), not an address."""
    if not isinstance(name, str) or not name or name in (".",):
        return False
    name = name.lower().rstrip(".")
    if len(name) > 253 or is_ip(name):
        return False
    pattern = LABEL if allow_underscore else HOST_LABEL
    labels = name.split(".")
    return all(pattern.match(label) for label in labels)


def is_ip(value):
    try:
        ipaddress.ip_address(str(value))
        return True
    except ValueError:
        return False


def in_zone(name, zone):
    name, zone = fqdn(name), fqdn(zone)
    return name == zone or name.endswith("." + zone)


def txt_strings(text):
    """Presentation form of a TXT value: 255-byte strings, each quoted and escaped."""
    data = text.encode("utf-8")
    chunks = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    out = []
    for chunk in chunks:
        piece = chunk.decode("utf-8", "replace").replace("\\", "\\\\").replace('"', '\\"')
        out.append('"%s"' % piece)
    return " ".join(out)


def txt_text(presentation):
    """The concatenated text of a TXT value in presentation form (inverse of txt_strings)."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', presentation)
    if not parts:
        return presentation
    return "".join(re.sub(r"\\(.)", r"\1", p) for p in parts)


def fill(value, domain):
    if isinstance(value, str):
        return value.replace("{domain}", domain)
    if isinstance(value, list):
        return [fill(v, domain) for v in value]
    if isinstance(value, dict):
        return dict((k, fill(v, domain)) for k, v in value.items())
    return value


def settings_for(config, domain):
    """The effective settings of one domain entry: role defaults, then dns_* globals, then the entry's overrides."""
    merged = dict(DEFAULTS)
    merged.update(dict((k, v) for k, v in (config.get("defaults") or {}).items() if v is not None))
    merged.update(dict((k, v) for k, v in domain.items() if v is not None))
    name = (domain.get("name") or "").lower().rstrip(".")
    merged["name"] = name
    merged.setdefault("zone", name)
    merged["zone"] = (merged.get("zone") or name).lower().rstrip(".")
    merged["state"] = merged.get("state") or "present"
    return fill(merged, name)


def _mx_hosts(settings):
    return [fqdn(m.get("host", "")) for m in settings.get("mx") or []]


def mail_host(settings):
    host = settings.get("mail_host") or ""
    if host:
        return fqdn(host)
    hosts = _mx_hosts(settings)
    return hosts[0] if hosts else ""


# --- validation --------------------------------------------------------------------------------------------------

def _check_ttl(errors, where, ttl):
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 60 <= ttl <= 604800:
        errors.append("%s ttl %r must be an integer of seconds between 60 and 604800" % (where, ttl))


def _check_mailto(errors, where, uris):
    if not isinstance(uris, list):
        errors.append("%s must be a list of mailto: URIs (got %r)" % (where, uris))
        return
    for uri in uris:
        ok = isinstance(uri, str) and uri.startswith("mailto:")
        if ok:
            address = uri[len("mailto:"):].split("!", 1)[0]
            match = EMAIL.match(address)
            ok = bool(match) and is_hostname(match.group(1)) and not re.search(r"[\s;,]", uri)
        if not ok:
            errors.append("%s %r must be mailto:<address> with a valid address (optionally !<size>), no ';' or ','"
                          % (where, uri))


def spf_problems(record):
    """Problems of an SPF record (RFC 7208 syntax of the terms this role writes, and the 10-lookup limit)."""
    problems = []
    if not isinstance(record, str) or not record.startswith("v=spf1"):
        return ["must start with v=spf1"]
    terms = record.split()
    if terms[0] != "v=spf1":
        problems.append("must start with 'v=spf1 '")
    lookups = 0
    seen_all = False
    modifiers = set()
    for term in terms[1:]:
        if seen_all:
            problems.append("term %r after 'all' is never evaluated" % term)
        m = re.match(r"^(redirect|exp)=(.+)$", term)
        if m:
            if m.group(1) in modifiers:
                problems.append("modifier %s= given twice" % m.group(1))
            modifiers.add(m.group(1))
            if not is_hostname(m.group(2), allow_underscore=True):
                problems.append("%s= needs a domain (got %r)" % (m.group(1), m.group(2)))
            lookups += m.group(1) == "redirect"
            continue
        m = re.match(r"^([+?~-]?)(all|include|a|mx|ptr|ip4|ip6|exists)(?::([^/]*))?(/\d+)?(//\d+)?$", term)
        if not m:
            problems.append("unknown or malformed term %r" % term)
            continue
        mech, arg, cidr = m.group(2), m.group(3), m.group(4)
        if mech in SPF_LOOKUP_TERMS:
            lookups += 1
        if mech == "all":
            if arg is not None or cidr:
                problems.append("'all' takes no argument")
            seen_all = True
        elif mech in ("include", "exists"):
            if not arg or not is_hostname(arg, allow_underscore=True):
                problems.append("%s needs a domain (got %r)" % (mech, term))
        elif mech in ("ip4", "ip6"):
            try:
                net = ipaddress.ip_network("%s%s" % (arg, cidr or ""), strict=False)
                if (net.version == 4) != (mech == "ip4"):
                    raise ValueError
            except ValueError:
                problems.append("%s needs an IPv%s address or network (got %r)" % (mech, mech[-1], term))
        elif mech == "ptr":
            problems.append("ptr is deprecated (RFC 7208 5.5); do not use it")
        elif arg is not None and not is_hostname(arg, allow_underscore=True):
            problems.append("%s: needs a domain (got %r)" % (mech, term))
    if not seen_all and "redirect" not in modifiers:
        problems.append("must end with an 'all' mechanism (e.g. -all) or a redirect=")
    if seen_all and "redirect" in modifiers:
        problems.append("redirect= is ignored when 'all' is present")
    if lookups > 10:
        problems.append("needs %d DNS lookups, more than the 10 RFC 7208 allows" % lookups)
    return problems


def spf_record(settings):
    spf = settings.get("spf")
    if isinstance(spf, str):
        return spf.strip()
    spf = spf or {}
    terms = ["v=spf1"] + [str(t) for t in spf.get("mechanisms") or []]
    if spf.get("redirect"):
        terms.append("redirect=" + spf["redirect"])
    elif spf.get("all", "-all"):
        terms.append(spf.get("all", "-all"))
    return " ".join(terms)


def _check_dmarc(errors, where, dmarc):
    if not isinstance(dmarc, dict):
        errors.append("%s must be a dict (p, sp, pct, rua, ruf, adkim, aspf, fo, ri)" % where)
        return
    unknown = set(dmarc) - {"p", "sp", "pct", "rua", "ruf", "adkim", "aspf", "fo", "ri", "np"}
    if unknown:
        errors.append("%s has unknown keys %s" % (where, ", ".join(sorted(unknown))))
    for key in ("p", "sp", "np"):
        if key in dmarc and dmarc[key] not in ("none", "quarantine", "reject"):
            errors.append("%s.%s %r must be none, quarantine or reject" % (where, key, dmarc[key]))
    if "p" not in dmarc:
        errors.append("%s.p is required (none, quarantine or reject)" % where)
    if "pct" in dmarc and (isinstance(dmarc["pct"], bool) or not isinstance(dmarc["pct"], int)
                           or not 0 <= dmarc["pct"] <= 100):
        errors.append("%s.pct %r must be an integer 0-100" % (where, dmarc["pct"]))
    for key in ("adkim", "aspf"):
        if key in dmarc and dmarc[key] not in ("r", "s"):
            errors.append("%s.%s %r must be r (relaxed) or s (strict)" % (where, key, dmarc[key]))
    if "fo" in dmarc and not re.match(r"^[01ds](:[01ds])*$", str(dmarc["fo"])):
        errors.append("%s.fo %r must be a colon-separated list of 0, 1, d, s" % (where, dmarc["fo"]))
    if "ri" in dmarc and (not isinstance(dmarc["ri"], int) or dmarc["ri"] < 3600):
        errors.append("%s.ri %r must be an integer of at least 3600 seconds" % (where, dmarc["ri"]))
    for key in ("rua", "ruf"):
        if key in dmarc:
            _check_mailto(errors, "%s.%s" % (where, key), dmarc[key])


def validate(config):
    """Every problem of the configuration, each naming the variable; an empty list means it can be published."""
    errors = []
    domains = config.get("domains")
    if not isinstance(domains, list) or not domains:
        return ["dns_domains must list at least one mail domain ({name: example.com, ...})"]
    seen = set()
    zones = set()
    for index, domain in enumerate(domains):
        if not isinstance(domain, dict) or not domain.get("name"):
            errors.append("dns_domains[%d] must be a dict with a name" % index)
            continue
        settings = settings_for(config, domain)
        name = settings["name"]
        where = "dns_domains[%s]" % name
        if not is_hostname(name):
            errors.append("%s: %r is not a domain name (letters, digits, hyphens; A-labels for IDN)" % (where, domain["name"]))
            continue
        if name in seen:
            errors.append("%s is listed twice" % where)
        seen.add(name)
        if settings["state"] not in ("present", "absent"):
            errors.append("%s.state %r must be present or absent" % (where, settings["state"]))
        if not is_hostname(settings["zone"]) or not in_zone(name, settings["zone"]):
            errors.append("%s.zone %r must be the domain itself or a parent zone of it" % (where, settings["zone"]))
        zones.add(settings["zone"])
        _check_ttl(errors, where, settings["ttl"])
        mx = settings.get("mx")
        if not isinstance(mx, list) or not mx:
            errors.append("%s: dns_mx (or the domain's mx) must list at least one {host, priority}" % where)
            mx = []
        for entry in mx:
            host = entry.get("host") if isinstance(entry, dict) else entry
            prio = entry.get("priority", 10) if isinstance(entry, dict) else None
            if isinstance(host, str) and is_ip(host.rstrip(".")):
                errors.append("%s: MX host %r is an IP address; an MX must name a host (RFC 5321 5.1) that has A/AAAA records"
                              % (where, host))
            elif not is_hostname(host):
                errors.append("%s: MX host %r is not a host name" % (where, host))
            if not isinstance(prio, int) or isinstance(prio, bool) or not 0 <= prio <= 65535:
                errors.append("%s: MX priority %r of %r must be an integer 0-65535" % (where, prio, host))
        if settings.get("mail_host") and not is_hostname(settings["mail_host"]):
            errors.append("%s: mail_host %r is not a host name" % (where, settings["mail_host"]))
        for problem in spf_problems(spf_record(settings)):
            errors.append("%s: SPF %r %s" % (where, spf_record(settings), problem))
        _check_dmarc(errors, where + ".dmarc", settings.get("dmarc"))
        sts = settings.get("mta_sts")
        if sts:
            if not isinstance(sts, dict) or sts.get("mode") not in ("enforce", "testing", "none"):
                errors.append("%s.mta_sts.mode %r must be enforce, testing or none" % (where, (sts or {}).get("mode")))
            else:
                age = sts.get("max_age", 604800)
                if not isinstance(age, int) or isinstance(age, bool) or not 0 <= age <= 31557600:
                    errors.append("%s.mta_sts.max_age %r must be 0-31557600 seconds" % (where, age))
                for pattern in sts.get("mx") or []:
                    if not is_hostname(str(pattern).replace("*.", "x.", 1)):
                        errors.append("%s.mta_sts.mx %r is not a host name or *.pattern" % (where, pattern))
                if sts.get("host") and not is_hostname(sts["host"]):
                    errors.append("%s.mta_sts.host %r is not a host name" % (where, sts["host"]))
        tlsrpt = settings.get("tlsrpt")
        if tlsrpt:
            rua = tlsrpt.get("rua") if isinstance(tlsrpt, dict) else None
            if not rua:
                errors.append("%s.tlsrpt.rua must list mailto: or https: URIs" % where)
            for uri in rua or []:
                if isinstance(uri, str) and uri.startswith("https://"):
                    if re.search(r"[\s;,]", uri):
                        errors.append("%s.tlsrpt.rua %r may not hold spaces, ';' or ','" % (where, uri))
                else:
                    _check_mailto(errors, where + ".tlsrpt.rua", [uri])
        srv = settings.get("srv") or {}
        if not isinstance(srv, dict):
            errors.append("%s.srv must map service names to ports" % where)
            srv = {}
        for service, port in srv.items():
            if service not in SRV_PORTS:
                errors.append("%s.srv: unknown service %r (one of %s)" % (where, service, ", ".join(sorted(SRV_PORTS))))
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                errors.append("%s.srv.%s port %r must be 1-65535" % (where, service, port))
        for service in settings.get("srv_disabled") or []:
            if service not in SRV_PORTS:
                errors.append("%s.srv_disabled: unknown service %r" % (where, service))
            elif service in srv:
                errors.append("%s: service %r is both in srv and srv_disabled" % (where, service))
        if (srv or settings.get("autoconfig") or sts) and not mail_host(settings):
            errors.append("%s: mail_host (or an MX) is needed as the target of SRV, autoconfig and mta-sts names" % where)
        caa = settings.get("caa") or {}
        for key in ("issue", "issuewild"):
            for issuer in caa.get(key) or []:
                if not (issuer == ";" or is_hostname(str(issuer).split(";", 1)[0].strip())):
                    errors.append("%s.caa.%s %r must be a CA domain (e.g. letsencrypt.org) or ';'" % (where, key, issuer))
        if caa.get("iodef") and not re.match(r"^(mailto:[^@\s]+@[^@\s]+|https://\S+)$", caa["iodef"]):
            errors.append("%s.caa.iodef %r must be a mailto: or https: URI" % (where, caa["iodef"]))
        for entry in settings.get("dkim") or []:
            if not isinstance(entry, dict) or not SELECTOR.match(str(entry.get("selector", ""))) \
                    or not str(entry.get("value", "")).startswith("v=DKIM1"):
                errors.append("%s.dkim entries need a selector (letters, digits, . _ -) and a value starting v=DKIM1"
                              % where)
        for value in settings.get("apex_txt") or []:
            if not isinstance(value, str) or value.startswith("v=spf1"):
                errors.append("%s.apex_txt %r must be a string and not a second SPF record" % (where, value))
        for rec in settings.get("extra") or []:
            rtype = str((rec or {}).get("type", "")).upper()
            if rtype in ("SOA", "NS"):
                errors.append("%s.extra: the role never touches %s records" % (where, rtype))
            elif rtype not in MANAGED_TYPES:
                errors.append("%s.extra: type %r must be one of %s" % (where, rtype, ", ".join(MANAGED_TYPES)))
            elif not is_hostname((rec or {}).get("name", ""), allow_underscore=True) or not (rec or {}).get("values"):
                errors.append("%s.extra: %r needs an absolute name and values" % (where, rec))
            elif not in_zone(rec["name"], settings["zone"]):
                errors.append("%s.extra: %s is outside the zone %s" % (where, rec["name"], settings["zone"]))
    for index, host in enumerate(config.get("hosts") or []):
        where = "dns_mail_hosts[%d]" % index
        if not isinstance(host, dict) or not is_hostname(host.get("name", "")):
            errors.append("%s must be a dict whose name is a host name (got %r)" % (where, host))
            continue
        for key, version in (("ipv4", 4), ("ipv6", 6)):
            for addr in host.get(key) or []:
                try:
                    if ipaddress.ip_address(str(addr)).version != version:
                        raise ValueError
                except ValueError:
                    errors.append("%s (%s).%s %r is not an IPv%d address" % (where, host["name"], key, addr, version))
        if not host.get("ipv4") and not host.get("ipv6"):
            errors.append("%s (%s) needs ipv4 and/or ipv6 addresses" % (where, host["name"]))
        zone = host.get("zone") or _zone_of(host["name"], zones)
        if host.get("publish", True) and not zone:
            errors.append("%s (%s) is in none of the zones of dns_domains; set its zone or publish: false"
                          % (where, host["name"]))
    for pem in config.get("tlsa_certificates") or []:
        if tlsa_311(pem) is None:
            errors.append("dns_tlsa_certificates: an entry is not a PEM certificate")
    return errors


def _zone_of(name, zones):
    matches = [z for z in zones if in_zone(name, z)]
    return max(matches, key=len) if matches else ""


# --- records -----------------------------------------------------------------------------------------------------

def tlsa_311(pem):
    """TLSA 3 1 1 data (SHA-256 of the certificate's SubjectPublicKeyInfo), or None when the PEM is not a certificate."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
    except ImportError:  # pragma: no cover
        raise RuntimeError("TLSA records need the python cryptography library on the controller")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    except (ValueError, TypeError, AttributeError):
        return None
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "3 1 1 " + hashlib.sha256(spki).hexdigest()


def mta_sts_policy(settings):
    """The policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 3.2), CRLF lines."""
    sts = settings.get("mta_sts") or {}
    patterns = sts.get("mx") or [h.rstrip(".") for h in _mx_hosts(settings)]
    lines = ["version: STSv1", "mode: %s" % sts.get("mode", "enforce")]
    lines += ["mx: %s" % p.rstrip(".").lower() for p in patterns]
    lines.append("max_age: %d" % int(sts.get("max_age", 604800)))
    return "\r\n".join(lines) + "\r\n"


def mta_sts_id(policy):
    """The record's id: derived from the policy content, so it changes exactly when the policy does."""
    return hashlib.sha256(policy.encode()).hexdigest()[:20]


def dmarc_record(dmarc):
    tags = ["v=DMARC1", "p=%s" % dmarc["p"]]
    for key in ("sp", "np", "pct", "adkim", "aspf", "fo", "ri"):
        if key in dmarc:
            tags.append("%s=%s" % (key, dmarc[key]))
    for key in ("rua", "ruf"):
        if dmarc.get(key):
            tags.append("%s=%s" % (key, ",".join(dmarc[key])))
    return "; ".join(tags)


def _rr(zone, name, rtype, ttl, values, kind, domain):
    return {"zone": fqdn(zone), "name": fqdn(name), "type": rtype, "ttl": int(ttl), "values": list(values),
            "kind": kind, "domain": domain}


def _txt(zone, name, ttl, texts, kind, domain):
    rr = _rr(zone, name, "TXT", ttl, [txt_strings(t) for t in texts], kind, domain)
    rr["text"] = list(texts)
    return rr


def domain_records(config, settings, zones):
    """Record sets of one domain (without the shared host records)."""
    d, z, ttl = settings["name"], settings["zone"], settings["ttl"]
    apex = fqdn(d)
    host = mail_host(settings)
    out = []
    mx = sorted(((m.get("priority", 10), fqdn(m["host"])) for m in settings["mx"]))
    out.append(_rr(z, apex, "MX", ttl, ["%d %s" % pm for pm in mx], "mx", d))
    out.append(_txt(z, apex, ttl, [spf_record(settings)] + list(settings.get("apex_txt") or []), "spf", d))
    dkim = settings.get("dkim")
    if dkim is None:
        dkim = (config.get("dkim") or {}).get(d) or []
    for entry in sorted(dkim, key=lambda e: e["selector"]):
        out.append(_txt(z, "%s._domainkey.%s" % (entry["selector"], apex), ttl, [entry["value"]], "dkim", d))
    dmarc = settings.get("dmarc")
    if dmarc:
        out.append(_txt(z, "_dmarc." + apex, ttl, [dmarc_record(dmarc)], "dmarc", d))
        # RFC 7489 7.1: a report address outside the domain must authorise it at <domain>._report._dmarc.<rua-domain>.
        for uri in sorted(set((dmarc.get("rua") or []) + (dmarc.get("ruf") or []))):
            target = uri.split("@", 1)[1].split("!", 1)[0].lower()
            if target != d and not in_zone(apex, target):
                zone = _zone_of(target, zones)
                if zone:
                    out.append(_txt(zone, "%s._report._dmarc.%s" % (d, fqdn(target)), ttl, ["v=DMARC1"], "dmarc-report", d))
    sts = settings.get("mta_sts")
    if sts:
        policy = mta_sts_policy(settings)
        out.append(_txt(z, "_mta-sts." + apex, ttl, ["v=STSv1; id=%s" % mta_sts_id(policy)], "mta-sts", d))
        out.append(_rr(z, "mta-sts." + apex, "CNAME", ttl, [fqdn(sts.get("host") or host)], "mta-sts", d))
    tlsrpt = settings.get("tlsrpt")
    if tlsrpt:
        out.append(_txt(z, "_smtp._tls." + apex, ttl, ["v=TLSRPTv1; rua=%s" % ",".join(tlsrpt["rua"])], "tlsrpt", d))
    for service, port in sorted((settings.get("srv") or {}).items()):
        out.append(_rr(z, "_%s._tcp.%s" % (service, apex), "SRV", ttl, ["0 1 %d %s" % (port, host)], "srv", d))
    for service in sorted(settings.get("srv_disabled") or []):
        out.append(_rr(z, "_%s._tcp.%s" % (service, apex), "SRV", ttl, ["0 0 0 ."], "srv", d))
    if settings.get("autoconfig"):
        out.append(_rr(z, "autoconfig." + apex, "CNAME", ttl, [host], "autoconfig", d))
        out.append(_rr(z, "autodiscover." + apex, "CNAME", ttl, [host], "autoconfig", d))
        if "autodiscover" not in (settings.get("srv") or {}):
            out.append(_rr(z, "_autodiscover._tcp." + apex, "SRV", ttl, ["0 1 443 %s" % host], "autoconfig", d))
    caa = settings.get("caa") or {}
    caa_values = ['0 issue "%s"' % i for i in caa.get("issue") or []]
    caa_values += ['0 issuewild "%s"' % i for i in caa.get("issuewild") or []]
    if caa_values and caa.get("iodef"):
        caa_values.append('0 iodef "%s"' % caa["iodef"])
    if caa_values:
        out.append(_rr(z, apex, "CAA", ttl, caa_values, "caa", d))
    for rec in settings.get("extra") or []:
        rtype = rec["type"].upper()
        values = rec["values"]
        if rtype == "TXT":
            out.append(_txt(z, rec["name"], rec.get("ttl", ttl), [txt_text(v) for v in values], "extra", d))
        else:
            out.append(_rr(z, rec["name"], rtype, rec.get("ttl", ttl), values, "extra", d))
    return out


def compute(config):
    """All record sets, sorted by zone, name and type; raises ValueError listing problems if the config is invalid."""
    errors = validate(config)
    if errors:
        raise ValueError("; ".join(errors))
    present = [settings_for(config, d) for d in config["domains"]]
    zones = set(s["zone"] for s in present if s["state"] == "present")
    rrsets = []
    for settings in present:
        if settings["state"] == "present":
            rrsets.extend(domain_records(config, settings, zones))
    ttl = int((config.get("defaults") or {}).get("ttl") or DEFAULTS["ttl"])
    tlsa = [tlsa_311(pem) for pem in config.get("tlsa_certificates") or []]
    tlsa_ports = config.get("tlsa_ports") or [25]
    for host in config.get("hosts") or []:
        zone = host.get("zone") or _zone_of(host["name"], zones)
        if not host.get("publish", True) or not zone:
            continue
        name = fqdn(host["name"])
        if host.get("ipv4"):
            rrsets.append(_rr(zone, name, "A", ttl, sorted(set(host["ipv4"])), "host", ""))
        if host.get("ipv6"):
            rrsets.append(_rr(zone, name, "AAAA", ttl, sorted(set(str(ipaddress.ip_address(a)) for a in host["ipv6"])),
                              "host", ""))
        if config.get("spf_helo", True):
            rrsets.append(_txt(zone, name, ttl, ["v=spf1 a -all"], "spf-helo", ""))
    if tlsa:
        mx_hosts = sorted(set(h for s in present if s["state"] == "present" for h in _mx_hosts(s)))
        for mx in mx_hosts:
            zone = _zone_of(mx, zones)
            if zone:
                for port in tlsa_ports:
                    rrsets.append(_rr(zone, "_%d._tcp.%s" % (int(port), mx), "TLSA", ttl, sorted(set(tlsa)), "tlsa", ""))
    return merge(rrsets)


def merge(rrsets):
    """One record set per (name, type): identical duplicates collapse; conflicting ones are an error."""
    by_key = {}
    problems = []
    for rr in rrsets:
        key = (rr["name"], rr["type"])
        if key in by_key:
            if sorted(by_key[key]["values"]) != sorted(rr["values"]):
                problems.append("%s %s is computed twice with different values (%s and %s)"
                                % (rr["name"], rr["type"], by_key[key]["domain"] or "hosts", rr["domain"] or "hosts"))
            continue
        by_key[key] = rr
    names = {}
    for (name, rtype) in by_key:
        names.setdefault(name, set()).add(rtype)
    for name, types in sorted(names.items()):
        if "CNAME" in types and len(types) > 1:
            problems.append("%s has a CNAME and other records (%s); a CNAME must stand alone"
                            % (name, ", ".join(sorted(types - {"CNAME"}))))
    if problems:
        raise ValueError("; ".join(problems))
    return sorted(by_key.values(), key=lambda r: (r["zone"], _sort_name(r["name"]), r["type"]))


def _sort_name(name):
    return list(reversed(name.rstrip(".").split(".")))


def absent_records(config):
    """Record sets of the domains marked state: absent (for pruning), computed as if they were present."""
    out = []
    every = [settings_for(config, d) for d in config.get("domains") or []]
    zones = set(s["zone"] for s in every)
    for settings in every:
        if settings["state"] == "absent":
            out.extend(domain_records(config, settings, zones))
    return out


def zone_fragment(rrsets, zone=None):
    """A zone-file fragment (absolute names; for $INCLUDE in a zone that has its own SOA and NS)."""
    lines = ["; Mail records managed by talentmesh.mail.dns - generated, do not edit.",
             "; No SOA or NS: $INCLUDE this file from the zone that has them."]
    for rr in rrsets:
        if zone and rr["zone"] != fqdn(zone):
            continue
        for value in rr["values"]:
            lines.append("%s %d IN %s %s" % (rr["name"], rr["ttl"], rr["type"], value))
    return "\n".join(lines) + "\n"


def dkim_from_zone(records, domain):
    """DKIM entries {selector, value} from parsed Stalwart zone records (stalwart_info dns_records)."""
    out = []
    apex = fqdn(domain)
    for rec in records or []:
        if (rec.get("type") or "").upper() != "TXT":
            continue
        name = (rec.get("name") or "").lower()
        if not name.endswith("."):
            name = name + "." + apex if name not in ("@", "") else apex
        m = re.match(r"^(.+)\._domainkey\.%s$" % re.escape(apex), name)
        if m and str(rec.get("value", "")).startswith("v=DKIM1"):
            out.append({"selector": m.group(1), "value": rec["value"]})
    return out


def _stalwart_kind(name, rtype, text, apex):
    label = name[:-len(apex)] if name.endswith(apex) else name
    if rtype == "MX":
        return "mx"
    if rtype == "CAA":
        return "caa"
    if rtype == "TLSA":
        return "tlsa"
    if rtype == "SRV":
        return "autoDiscover" if label.startswith("_autodiscover.") else "srv"
    if rtype == "TXT":
        if text.startswith("v=spf1"):
            return "spf"
        if "._domainkey." in name:
            return "dkim"
        if label.startswith("_dmarc."):
            return "dmarc"
        if label.startswith("_mta-sts."):
            return "mtaSts"
        if label.startswith("_smtp._tls."):
            return "tlsRpt"
        if label.startswith("_ua-auto-config."):
            return "autoConfig"
    if rtype == "CNAME":
        first = label.split(".", 1)[0]
        return {"mta-sts": "mtaSts", "autoconfig": "autoConfigLegacy", "autodiscover": "autoDiscover",
                "ua-auto-config": "autoConfig"}.get(first, "other")
    return "other"


def rrsets_from_zone(records, domain):
    """Record sets (as compute() returns them, kind = Stalwart's DnsRecordType) from Stalwart's parsed zone."""
    apex = fqdn(domain)
    groups = {}
    for rec in records or []:
        rtype = (rec.get("type") or "").upper()
        if rtype not in MANAGED_TYPES:
            continue
        name = (rec.get("name") or "").lower()
        if not name.endswith("."):
            name = apex if name in ("@", "") else name + "." + apex
        if rtype == "MX":
            value = "%d %s" % (rec.get("priority", 10), fqdn(rec["value"]))
        elif rtype == "SRV":
            value = "%d %d %d %s" % (rec.get("priority", 0), rec.get("weight", 0), rec.get("port", 0), fqdn(rec["value"]))
        elif rtype == "TXT":
            value = txt_strings(rec.get("value") or "")
        else:
            value = rec.get("value") or ""
        key = (name, rtype)
        if key not in groups:
            groups[key] = _rr(domain, name, rtype, rec.get("ttl") or DEFAULTS["ttl"], [], "", domain.rstrip("."))
            groups[key]["kind"] = _stalwart_kind(name, rtype, rec.get("value") or "", apex)
        groups[key]["values"].append(value)
    return sorted(groups.values(), key=lambda r: (_sort_name(r["name"]), r["type"]))


def dkim_public_key(value):
    """The raw public key bytes of a DKIM TXT value (p= tag), for tests and checks."""
    tags = dict(t.strip().split("=", 1) for t in value.split(";") if "=" in t)
    return base64.b64decode(tags.get("p", ""))
