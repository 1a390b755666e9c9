"""Unit tests of the dns role's record computation (plugins/module_utils/mail_records.py and the filters), with the
generated SPF, DMARC, MTA-STS and TLS-RPT checked by an independent validator (checkdmarc, offline parsers) and the
DKIM records by dkimpy."""
import base64
import re

import pytest

from ansible_collections.talentmesh.mail.plugins.filter.mail_dns import (
    dns_dkim_from_zone, dns_records, dns_zone_fragment, dns_zone_rrsets,
)
from ansible_collections.talentmesh.mail.plugins.module_utils import mail_records as mr
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart_dns import parse_zone

checkdmarc_mta_sts = pytest.importorskip("checkdmarc.mta_sts")
checkdmarc_tlsrpt = pytest.importorskip("checkdmarc.smtp_tls_reporting")
checkdmarc_spf = pytest.importorskip("checkdmarc.spf")
checkdmarc_dmarc = pytest.importorskip("checkdmarc.dmarc")
dkim = pytest.importorskip("dkim")


def rsa_txt():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    rsa_pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ed_pub = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return ("v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_pub).decode(),
            "v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_pub).decode())


RSA_TXT, ED_TXT = rsa_txt()


def config(**overrides):
    cfg = {
        "domains": [{"name": "example.com"}, {"name": "example.org", "dmarc": {"p": "quarantine", "rua": ["mailto:dmarc@example.com"]}}],
        "defaults": {"mx": [{"host": "mail.example.com", "priority": 10}], "ttl": 3600,
                     "caa": {"issue": ["letsencrypt.org"], "iodef": "mailto:security@example.com"}},
        "hosts": [{"name": "mail.example.com", "ipv4": ["192.0.2.25"], "ipv6": ["2001:db8::25"]}],
        "dkim": {"example.com": [{"selector": "rsa1", "value": RSA_TXT}, {"selector": "ed1", "value": ED_TXT}]},
    }
    cfg.update(overrides)
    return cfg


def find(records, name, rtype):
    found = [r for r in records if r["name"] == name and r["type"] == rtype]
    assert len(found) == 1, (name, rtype, [(r["name"], r["type"]) for r in records])
    return found[0]


def test_every_kind_of_record():
    out = dns_records(config())
    assert out["problems"] == []
    recs = out["records"]
    assert find(recs, "example.com.", "MX")["values"] == ["10 mail.example.com."]
    assert find(recs, "mail.example.com.", "A")["values"] == ["192.0.2.25"]
    assert find(recs, "mail.example.com.", "AAAA")["values"] == ["2001:db8::25"]
    assert find(recs, "mail.example.com.", "TXT")["text"] == ["v=spf1 a -all"]
    assert find(recs, "example.com.", "TXT")["text"] == ["v=spf1 mx -all"]
    assert find(recs, "_dmarc.example.com.", "TXT")["text"] == ["v=DMARC1; p=reject; rua=mailto:postmaster@example.com"]
    # example.org reports to example.com: RFC 7489 7.1 authorisation in the example.com zone
    auth = find(recs, "example.org._report._dmarc.example.com.", "TXT")
    assert auth["zone"] == "example.com." and auth["text"] == ["v=DMARC1"]
    assert find(recs, "mta-sts.example.com.", "CNAME")["values"] == ["mail.example.com."]
    assert find(recs, "_smtp._tls.example.com.", "TXT")["text"] == ["v=TLSRPTv1; rua=mailto:postmaster@example.com"]
    for service, port in (("submissions", 465), ("imaps", 993), ("jmap", 443), ("caldavs", 443), ("carddavs", 443)):
        assert find(recs, "_%s._tcp.example.com." % service, "SRV")["values"] == ["0 1 %d mail.example.com." % port]
    for service in ("submission", "imap", "pop3", "pop3s"):
        assert find(recs, "_%s._tcp.example.com." % service, "SRV")["values"] == ["0 0 0 ."]
    assert find(recs, "autoconfig.example.com.", "CNAME")["values"] == ["mail.example.com."]
    assert find(recs, "autodiscover.example.com.", "CNAME")["values"] == ["mail.example.com."]
    assert find(recs, "example.com.", "CAA")["values"] == ['0 issue "letsencrypt.org"', '0 iodef "mailto:security@example.com"']
    assert find(recs, "rsa1._domainkey.example.com.", "TXT")["text"] == [RSA_TXT]
    assert not [r for r in recs if r["type"] in ("SOA", "NS")]
    # A/AAAA of the mail host are published once, not per domain
    assert len([r for r in recs if r["name"] == "mail.example.com." and r["type"] == "A"]) == 1


def test_long_txt_split_into_255_byte_strings():
    rr = find(dns_records(config())["records"], "rsa1._domainkey.example.com.", "TXT")
    (value,) = rr["values"]
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
    assert len(RSA_TXT) > 255 and all(len(s.encode()) <= 255 for s in strings) and len(strings) == 2
    assert "".join(strings) == RSA_TXT
    assert mr.txt_text(value) == RSA_TXT


def test_mta_sts_id_changes_only_with_the_policy():
    one = dns_records(config())
    two = dns_records(config(defaults=dict(config()["defaults"], dmarc={"p": "none"})))
    three = dns_records(config(defaults=dict(config()["defaults"], mta_sts={"mode": "testing", "max_age": 86400})))

    def sid(out):
        return find(out["records"], "_mta-sts.example.com.", "TXT")["text"]
    assert sid(one) == sid(two) != sid(three)
    assert one["policies"][0]["id"] in sid(one)[0]


def test_dmarc_change_changes_one_record_only():
    before = dns_records(config())["records"]
    after = dns_records(config(defaults=dict(config()["defaults"], dmarc={"p": "quarantine", "rua": ["mailto:postmaster@{domain}"]})))["records"]
    changed = [(a["name"], a["type"]) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and changed == [("_dmarc.example.com.", "TXT")]


@pytest.mark.parametrize("overrides,needle", [
    ({"domains": []}, "dns_domains must list at least one"),
    ({"domains": [{"name": "exa mple.com"}]}, "is not a domain name"),
    ({"defaults": {"mx": [{"host": "192.0.2.1", "priority": 10}]}}, "is an IP address"),
    ({"defaults": {"mx": [{"host": "2001:db8::1", "priority": 10}]}}, "is an IP address"),
    ({"defaults": {"mx": []}}, "must list at least one"),
    ({"defaults": {"mx": [{"host": "mail.example.com", "priority": 70000}]}}, "priority 70000"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "ttl": 5}}, "ttl 5 must be"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "spf": "v=spf1 mx ip4:300.1.1.1 -all"}}, "ip4 needs an IPv4"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "spf": "v=spf1 mx"}}, "must end with an 'all'"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "spf": "v=spf1 mx foo:bar -all"}}, "unknown or malformed term"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}],
                   "spf": "v=spf1 " + " ".join("include:i%d.example.net" % i for i in range(11)) + " -all"}}, "11 DNS lookups"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "dmarc": {"p": "rejct"}}}, "must be none, quarantine or reject"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "dmarc": {"p": "none", "pct": 101}}}, "pct 101"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "dmarc": {"p": "none", "rua": ["dmarc@example.com"]}}}, "must be mailto:"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "dmarc": {"p": "none", "rua": ["mailto:nobody"]}}}, "must be mailto:"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "dmarc": {"p": "none", "sp": "drop"}}}, "sp 'drop'"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "mta_sts": {"mode": "strict"}}}, "mta_sts.mode"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "tlsrpt": {"rua": ["tls@example.com"]}}}, "tlsrpt.rua"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "srv": {"smtp": 25}}}, "unknown service 'smtp'"),
    ({"defaults": {"mx": [{"host": "mail.example.com"}], "extra": [{"name": "example.com.", "type": "NS", "values": ["ns."]}]}},
     "never touches NS"),
    ({"hosts": [{"name": "mail.example.com", "ipv4": ["2001:db8::1"]}]}, "is not an IPv4 address"),
    ({"hosts": [{"name": "mail.elsewhere.net", "ipv4": ["192.0.2.1"]}]}, "is in none of the zones"),
    ({"tlsa_certificates": ["not a certificate"]}, "not a PEM certificate"),
])
def test_bad_input_is_named(overrides, needle):
    problems = dns_records(config(**overrides))["problems"]
    assert any(needle in p for p in problems), problems


def test_cname_conflict_is_refused():
    cfg = config(hosts=[{"name": "autoconfig.example.com", "ipv4": ["192.0.2.9"]}])
    problems = dns_records(cfg)["problems"]
    assert any("a CNAME must stand alone" in p for p in problems), problems


def test_absent_domain_records_and_fragment():
    cfg = config(domains=[{"name": "example.com"}, {"name": "example.org", "state": "absent"}])
    out = dns_records(cfg)
    assert not [r for r in out["records"] if r["domain"] == "example.org"]
    assert {r["name"] for r in out["absent"]} >= {"example.org.", "_dmarc.example.org."}
    fragment = dns_zone_fragment(out["records"], "example.com")
    body = [line for line in fragment.splitlines() if not line.startswith(";")]
    assert not [line for line in body if " SOA " in line or " NS " in line]
    assert "example.com. 3600 IN MX 10 mail.example.com." in fragment


def test_tlsa_from_certificate(tmp_path):
    from tests.tlsutil import make_ca_and_cert
    tls = make_ca_and_cert(tmp_path)
    pem = open(tls["cert"], encoding="utf-8").read()
    out = dns_records(config(tlsa_certificates=[pem]))
    rr = find(out["records"], "_25._tcp.mail.example.com.", "TLSA")
    assert rr["values"] == [mr.tlsa_311(pem)] and rr["values"][0].startswith("3 1 1 ") and len(rr["values"][0]) == 6 + 64


def test_dkim_and_rrsets_from_stalwart_zone():
    zone = ("example.com. 3600 IN MX 10 mail.example.com.\n"
            "rsa1._domainkey.example.com. 3600 IN TXT %s\n"
            "_dmarc.example.com. 3600 IN TXT \"v=DMARC1; p=reject\"\n"
            "_submissions._tcp.example.com. 3600 IN SRV 0 1 465 mail.example.com.\n") % mr.txt_strings(RSA_TXT)
    parsed = parse_zone(zone)
    assert dns_dkim_from_zone(parsed, "example.com") == [{"selector": "rsa1", "value": RSA_TXT}]
    kinds = {(r["name"], r["kind"]) for r in dns_zone_rrsets(parsed, "example.com")}
    assert kinds == {("example.com.", "mx"), ("rsa1._domainkey.example.com.", "dkim"), ("_dmarc.example.com.", "dmarc"),
                     ("_submissions._tcp.example.com.", "srv")}


# --- independent validators ---------------------------------------------------------------------------------

def test_mta_sts_record_and_policy_pass_checkdmarc():
    out = dns_records(config())
    record = find(out["records"], "_mta-sts.example.com.", "TXT")["text"][0]
    parsed = checkdmarc_mta_sts.parse_mta_sts_record(record)
    assert parsed["tags"]["v"] == "STSv1" and parsed["warnings"] == []
    policy = checkdmarc_mta_sts.parse_mta_sts_policy(out["policies"][0]["policy"])
    assert policy["policy"] == {"version": "STSv1", "mode": "enforce", "max_age": 604800, "mx": ["mail.example.com"]}
    assert policy["warnings"] == []


def test_tlsrpt_passes_checkdmarc():
    record = find(dns_records(config())["records"], "_smtp._tls.example.com.", "TXT")["text"][0]
    parsed = checkdmarc_tlsrpt.parse_smtp_tls_reporting_record(record)
    assert parsed["tags"]["rua"]["value"] == ["mailto:postmaster@example.com"]


def test_dmarc_syntax_passes_checkdmarc_offline():
    record = find(dns_records(config(defaults=dict(config()["defaults"], dmarc={
        "p": "quarantine", "sp": "reject", "pct": 50, "adkim": "s", "aspf": "r", "fo": "1:d",
        "rua": ["mailto:postmaster@{domain}"], "ruf": ["mailto:forensic@{domain}"]})))["records"],
        "_dmarc.example.com.", "TXT")["text"][0]
    # No server answers here: checkdmarc still parses every tag (it only warns that it could not look up the MX of
    # the report domains).
    parsed = checkdmarc_dmarc.parse_dmarc_record(record, "example.com", nameservers=["127.0.0.1"], timeout=0.2)
    tags = dict((k, v["value"]) for k, v in parsed["tags"].items())
    assert tags["p"] == "quarantine" and tags["sp"] == "reject" and tags["adkim"] == "s" and tags["fo"] in ("1:d", ["1", "d"])
    assert [u["address"] for u in tags["rua"]] == ["postmaster@example.com"]
    assert not [w for w in parsed["warnings"] if "Failed to retrieve MX" not in w and "pct" not in w], parsed["warnings"]


def test_spf_passes_checkdmarc_offline():
    record = "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"
    out = dns_records(config(defaults=dict(config()["defaults"], spf=record)))
    assert out["problems"] == []
    # only address mechanisms: checkdmarc needs no lookup to parse it
    parsed = checkdmarc_spf.parse_spf_record(find(out["records"], "example.com.", "TXT")["text"][0], "example.com",
                                             nameservers=["127.0.0.1"], timeout=0.5)
    assert parsed["parsed"]["all"] == "fail" and parsed["dns_lookups"] == 0


def test_dkim_records_parse_with_dkimpy():
    recs = dns_records(config())["records"]
    for selector, ktag in (("rsa1", b"rsa"), ("ed1", b"ed25519")):
        rr = find(recs, "%s._domainkey.example.com." % selector, "TXT")
        txt = mr.txt_text(rr["values"][0]).encode()
        pk, keysize, got, dummy = dkim.load_pk_from_dns(rr["name"].encode(), dnsfunc=lambda name, timeout=5, t=txt: t)
        assert pk is not None and got == ktag
        assert keysize == (2048 if ktag == b"rsa" else 256)
