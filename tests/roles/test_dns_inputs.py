"""Bad input to the dns role fails before any record is sent, with a message naming the problem; the zone-file mode
writes fragments without SOA/NS, re-runs unchanged, and no TSIG secret ever appears in the output.
Runs ansible-playbook against localhost (no DNS server, no containers)."""
import pytest

from tests.roles.harness import case, run_role

SECRET = "c2VjcmV0LXRzaWcta2V5LWZvci10ZXN0cy0wMTIzNDU2Nzg5"
GOOD = {
    "dns_domains": [{"name": "example.com"}],
    "dns_mx": [{"host": "mail.example.com", "priority": 10}],
    "dns_mail_hosts": [{"name": "mail.example.com", "ipv4": ["192.0.2.25"]}],
}


def run(tmp_path, extra, check=False):
    variables = dict(GOOD, dns_zonefile_dir=str(tmp_path / "zones"), mail_tls_lab_ca_dir=str(tmp_path / "ca"))
    variables.update(extra)
    rc, out = run_role("dns", tmp_path, variables, check=check)
    assert SECRET not in out
    return rc, out


@pytest.mark.parametrize("extra,needle", [
    case("required", {"dns_domains": []}, "dns_domains must list at least one mail domain"),
    case("format", {"dns_domains": [{"name": "not a domain"}]}, "is not a domain name"),
    case("format", {"dns_mx": [{"host": "192.0.2.25", "priority": 10}]}, "MX host '192.0.2.25' is an IP address"),
    case("format", {"dns_mx": [{"host": "2001:db8::25", "priority": 10}]}, "is an IP address"),
    case("format", {"dns_spf": "v=spf1 mx ip4:192.0.2.300 -all"}, "ip4 needs an IPv4 address or network"),
    case("format", {"dns_spf": "v=spf1 mx a:"}, "must end with an 'all' mechanism"),
    case("format", {"dns_spf": {"mechanisms": ["mx", "+bogus"], "all": "-all"}}, "unknown or malformed term '+bogus'"),
    case("format", {"dns_dmarc": {"p": "rejct"}}, "dmarc.p 'rejct' must be none, quarantine or reject"),
    case("format", {"dns_dmarc": {"p": "reject", "sp": "nope"}}, "dmarc.sp 'nope'"),
    case("ranges", {"dns_dmarc": {"p": "reject", "pct": 150}}, "dmarc.pct 150 must be an integer 0-100"),
    case("format", {"dns_dmarc": {"p": "reject", "rua": ["dmarc@example.com"]}}, "must be mailto:<address>"),
    case("ranges", {"dns_ttl": 10}, "ttl 10 must be an integer of seconds between 60 and 604800"),
    case("format", {"dns_mta_sts": {"mode": "on"}}, "mta_sts.mode 'on' must be enforce, testing or none"),
    case("format", {"dns_tlsrpt": {"rua": ["reports@example.com"]}}, "tlsrpt.rua"),
    case("format", {"dns_mail_hosts": [{"name": "mail.example.com", "ipv4": ["300.0.0.1"]}]}, "is not an IPv4 address"),
    case("format", {"dns_mail_hosts": [{"name": "mail.elsewhere.net", "ipv4": ["192.0.2.1"]}]}, "is in none of the zones"),
    case("broken-config",
         {"dns_domains": [{"name": "example.com", "extra": [{"name": "example.com.", "type": "SOA", "values": ["x"]}]}]},
         "never touches SOA"),
    case("format", {"dns_publish": "zonefile", "dns_zonefile_dir": "relative/dir"},
         "dns_zonefile_dir must be an absolute directory"),
    case("format", {"dns_publish": "rfc2136", "dns_rfc2136_server": "ns1.example.com", "dns_rfc2136_key_name": "k",
                    "dns_rfc2136_key_secret": SECRET}, "dns_rfc2136_server must be the IP address"),
    case("format", {"dns_publish": "rfc2136", "dns_rfc2136_server": "192.0.2.53", "dns_rfc2136_key_name": "k",
                    "dns_rfc2136_key_secret": "not base64!"}, "dns_rfc2136_key_secret must be the base64 TSIG secret"),
    case("injection", {"dns_publish": "rfc2136", "dns_rfc2136_server": "192.0.2.53", "dns_rfc2136_key_name": "k",
                       "dns_rfc2136_key_secret": SECRET + "\nkey x"}, "dns_rfc2136_key_secret must be the base64 TSIG secret"),
    case("required", {"dns_publish": "rfc2136", "dns_rfc2136_server": "192.0.2.53", "dns_rfc2136_key_name": "",
                      "dns_rfc2136_key_secret": SECRET}, "dns_rfc2136_key_name must be a TSIG key name"),
    case("required", {"dns_publish": "stalwart", "dns_rfc2136_server": "192.0.2.53", "dns_rfc2136_key_name": "k",
                      "dns_rfc2136_key_secret": SECRET}, "dns_stalwart_url must be the http(s) URL of Stalwart"),
    case("format", {"dns_publish": "hook", "dns_hook_tasks": "/nonexistent/hook.yml"},
         "dns_hook_tasks must be an existing task file"),
    case("format", {"dns_publish": "carrier-pigeon"}, "dns_publish"),
])
def test_invalid_input_fails_first(tmp_path, extra, needle):
    rc, out = run(tmp_path, extra)
    assert rc != 0 and needle in out, out[-3000:]
    assert not (tmp_path / "zones").exists()


@pytest.mark.defect_class("format")
def test_every_problem_is_listed_at_once(tmp_path):
    rc, out = run(tmp_path, {"dns_mx": [{"host": "192.0.2.25", "priority": 10}], "dns_dmarc": {"p": "x"}})
    assert rc != 0 and "is an IP address" in out and "dmarc.p 'x'" in out, out[-3000:]


@pytest.mark.defect_class("secrets")
def test_unreachable_server_is_named(tmp_path):
    """RFC 2136 to a server that does not answer: the preflight names it; the secret is never shown."""
    rc, out = run(tmp_path, {"dns_publish": "rfc2136", "dns_rfc2136_server": "127.0.0.1", "dns_rfc2136_port": 9,
                             "dns_rfc2136_key_name": "mail-update", "dns_rfc2136_key_secret": SECRET,
                             "dns_verify_timeout": 1})
    assert rc != 0 and "127.0.0.1 port 9" in out, out[-3000:]


def test_zonefile_fragments_and_rerun_unchanged(tmp_path):
    rc, out = run(tmp_path, {"dns_mta_sts_policy_dir": str(tmp_path / "www")})
    assert rc == 0, out[-3000:]
    fragment = (tmp_path / "zones" / "example.com.mail.zone").read_text()
    lines = [line for line in fragment.splitlines() if not line.startswith(";")]
    assert "example.com. 3600 IN MX 10 mail.example.com." in lines
    assert not [line for line in lines if " SOA " in line or " NS " in line]
    policy = (tmp_path / "www" / "example.com" / ".well-known" / "mta-sts.txt").read_text()
    assert "mode: enforce" in policy and "mx: mail.example.com" in policy
    rc, out = run(tmp_path, {"dns_mta_sts_policy_dir": str(tmp_path / "www")})
    assert rc == 0 and "changed=0" in out, out[-3000:]
