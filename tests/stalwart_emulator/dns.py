"""Domain.dnsZoneFile: the BIND-style records the server wants published for a domain (computed on /get)."""
import zlib

from . import dkim

TTL = 3600
# SystemSettings.services (ServiceProtocol, cleartext) -> SRV records (RFC 6186, RFC 6764, RFC 8620, RFC 5804)
SRV = {
    ("imap", False): [("_imaps._tcp", 993)], ("imap", True): [("_imaps._tcp", 993), ("_imap._tcp", 143)],
    ("pop3", False): [("_pop3s._tcp", 995)], ("pop3", True): [("_pop3s._tcp", 995), ("_pop3._tcp", 110)],
    ("smtp", False): [("_submissions._tcp", 465)], ("smtp", True): [("_submissions._tcp", 465), ("_submission._tcp", 587)],
    ("jmap", False): [("_jmap._tcp", 443)], ("jmap", True): [("_jmap._tcp", 443)],
    ("caldav", False): [("_caldavs._tcp", 443)], ("caldav", True): [("_caldavs._tcp", 443), ("_caldav._tcp", 80)],
    ("carddav", False): [("_carddavs._tcp", 443)], ("carddav", True): [("_carddavs._tcp", 443), ("_carddav._tcp", 80)],
    ("managesieve", False): [("_sieve._tcp", 4190)], ("managesieve", True): [("_sieve._tcp", 4190)],
}


def _txt(value):
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"%s"' % c.replace('"', '\\"') for c in chunks)


def zone_file(registry, tx, domain_id, domain):
    settings = registry.singleton(tx, "x:SystemSettings")
    host = (settings.get("defaultHostname") or registry.hostname).rstrip(".")
    name = domain["name"]
    origin = name + "."
    report = (domain.get("reportAddressUri") or "mailto:postmaster").replace("mailto:postmaster", "mailto:postmaster@" + name)
    lines = ["; Zone records for %s suggested by the Stalwart management emulator" % name]
    for i, mx in enumerate((settings.get("mailExchangers") or {"0": {"priority": 10}}).values()):
        target = (mx.get("hostname") or host).rstrip(".") + "."
        lines.append("%s %d IN MX %d %s" % (origin, TTL, mx.get("priority", 10 + i), target))
    lines.append("%s %d IN TXT %s" % (origin, TTL, _txt("v=spf1 mx -all")))
    if host.endswith("." + name):
        lines.append("%s. %d IN TXT %s" % (host, TTL, _txt("v=spf1 a -all")))
    for sig in sorted(tx.all("x:DkimSignature").values(), key=lambda s: s["selector"]):
        if sig.get("domainId") != domain_id or sig.get("stage") == "retired":
            continue
        value = dkim.dns_value(dkim.public_key_of(sig["privateKey"], sig["@type"]), sig["@type"])
        lines.append("%s._domainkey.%s %d IN TXT %s" % (sig["selector"], origin, TTL, _txt(value)))
    lines.append("_dmarc.%s %d IN TXT %s" % (origin, TTL, _txt("v=DMARC1; p=reject; rua=%s; ruf=%s" % (report, report))))
    lines.append("_smtp._tls.%s %d IN TXT %s" % (origin, TTL, _txt("v=TLSRPTv1; rua=%s" % report)))
    lines.append("mta-sts.%s %d IN CNAME %s." % (origin, TTL, host))
    lines.append("_mta-sts.%s %d IN TXT %s" % (origin, TTL, _txt("v=STSv1; id=%s" % zlib.crc32(("%s|%s" % (name, host)).encode()))))
    services = settings.get("services") or {}
    for protocol in sorted(services):
        entry = services[protocol] or {}
        target = (entry.get("hostname") or host).rstrip(".")
        for label, port in SRV.get((protocol, bool(entry.get("cleartext"))), ()):
            lines.append("%s.%s %d IN SRV 0 1 %d %s." % (label, origin, TTL, port, target))
    lines.append("autoconfig.%s %d IN CNAME %s." % (origin, TTL, host))
    lines.append("autodiscover.%s %d IN CNAME %s." % (origin, TTL, host))
    lines.append("ua-auto-config.%s %d IN CNAME %s." % (origin, TTL, host))
    lines.append("_ua-auto-config.%s %d IN TXT %s" % (origin, TTL, _txt("v=UAAC1; a=sha256; d=%s" % host)))
    return "\n".join(lines) + "\n"
