"""Independent validators over what BIND serves: checkdmarc (SPF with its lookups against this BIND, DMARC, MTA-STS
record and policy file, TLS-RPT) and dkimpy (every DKIM key). Usage: check_records.py SERVER POLICY_DIR DOMAIN...
Prints one line per check and exits non-zero on the first failure."""
import os
import sys

import checkdmarc.dmarc
import checkdmarc.mta_sts
import checkdmarc.smtp_tls_reporting
import checkdmarc.spf
import dkim
import dns.message
import dns.query
import dns.rdatatype


def txt(server, name):
    resp = dns.query.udp(dns.message.make_query(name, "TXT"), server, timeout=5)
    return [b"".join(r.strings).decode() for rrset in resp.answer if rrset.rdtype == dns.rdatatype.TXT for r in rrset]


def main(server, policy_dir, domains):
    for domain in domains:
        spf = [t for t in txt(server, domain) if t.startswith("v=spf1")]
        assert len(spf) == 1, (domain, spf)
        parsed = checkdmarc.spf.parse_spf_record(spf[0], domain, nameservers=[server])
        print("spf ok", domain, parsed["parsed"]["all"], "lookups", parsed["dns_lookups"])
        dmarc = txt(server, "_dmarc." + domain)
        assert len(dmarc) == 1, dmarc
        parsed = checkdmarc.dmarc.parse_dmarc_record(dmarc[0], domain, nameservers=[server])
        print("dmarc ok", domain, parsed["tags"]["p"]["value"], [u["address"] for u in parsed["tags"]["rua"]["value"]])
        sts = txt(server, "_mta-sts." + domain)
        parsed = checkdmarc.mta_sts.parse_mta_sts_record(sts[0])
        policy_file = os.path.join(policy_dir, domain, ".well-known", "mta-sts.txt")
        with open(policy_file, encoding="utf-8", newline="") as handle:
            policy = checkdmarc.mta_sts.parse_mta_sts_policy(handle.read())
        assert policy["policy"]["mode"] == "enforce", policy
        print("mta-sts ok", domain, parsed["tags"]["id"], policy["policy"])
        parsed = checkdmarc.smtp_tls_reporting.parse_smtp_tls_reporting_record(txt(server, "_smtp._tls." + domain)[0])
        print("tlsrpt ok", domain, parsed["tags"]["rua"]["value"])
    for name in sys.stdin.read().split():
        pk, keysize, ktag, dummy = dkim.load_pk_from_dns(
            name.encode(), dnsfunc=lambda n, timeout=5: txt(server, n.decode())[0].encode(), timeout=5)
        assert pk is not None
        print("dkim ok", name, ktag.decode(), keysize)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
