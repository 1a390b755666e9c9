#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: dns_check
short_description: Compare DNS records with what the authoritative servers answer (drift check)
version_added: 0.1.0
description:
  - Queries the authoritative servers directly (no recursion, no cache) for every record set in O(records) and
    reports each one that is missing or whose values differ; fails listing all of them unless O(fail_on_drift=false).
  - With O(zones), first checks that each zone is served authoritatively (its SOA answers with the AA flag) and,
    with a TSIG key, that the server accepts the key, so a wrong secret or a zone the server does not serve is
    named before any update is sent.
  - Without O(server), the authoritative servers of each zone are found from its NS records through the system
    resolver and every one of them is checked.
  - Reads only; it never changes anything.
author: talentmesh platform engineering (@talentmesh)
requirements:
  - dnspython >= 2.0 on the host that runs the module (the controller)
options:
  records:
    description:
      - Record sets to check, as the P(talentmesh.mail.dns_records#filter) filter returns them, each a dict with
        C(name) (absolute owner name), C(type), C(values) (record data in presentation format; TXT values compare by
        their concatenated text), and optionally C(ttl) (compared with O(check_ttl=true)) and C(zone) (needed
        without O(server)). Other keys are ignored.
    type: list
    elements: dict
    default: []
  absent:
    description: Record sets (C(name), C(type)) that must not exist, for example those of a pruned domain.
    type: list
    elements: dict
    default: []
  zones:
    description: Zones that must be served authoritatively.
    type: list
    elements: str
    default: []
  server:
    description: Address or name of the authoritative server to ask; empty means every NS of each zone.
    type: str
    default: ''
  port:
    description: DNS port of O(server).
    type: int
    default: 53
  protocol:
    description: Transport of the queries.
    type: str
    choices: [tcp, udp]
    default: udp
  key_name:
    description: TSIG key name to sign the queries with (optional).
    type: str
  key_secret:
    description: Base64 TSIG secret of O(key_name).
    type: str
  key_algorithm:
    description: TSIG algorithm.
    type: str
    default: hmac-sha256
    choices: [hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512]
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 5
  check_ttl:
    description: Report a record set whose TTL differs as different.
    type: bool
    default: false
  fail_on_drift:
    description: Fail when anything is missing or different; otherwise only report.
    type: bool
    default: true
attributes:
  check_mode:
    description: The module only reads.
    support: full
  diff_mode:
    description: Nothing changes.
    support: none
'''

EXAMPLES = r'''
- name: Drift check of the computed records against the primary
  talentmesh.mail.dns_check:
    records: "{{ computed.records }}"
    server: 192.0.2.53

- name: Check that the zone is served and the TSIG key is accepted before updating
  talentmesh.mail.dns_check:
    zones: [example.com]
    server: 192.0.2.53
    key_name: mail-update
    key_secret: "{{ vault_tsig_secret }}"
    key_algorithm: hmac-sha256
'''

RETURN = r'''
problems:
  description: One line per record set missing or different, zone not served or server not answering.
  returned: always
  type: list
  elements: str
  sample: ["_dmarc.example.com. TXT is missing on 192.0.2.53"]
missing:
  description: Record sets not found (name, type, server).
  returned: always
  type: list
  elements: dict
different:
  description: Record sets whose values (or TTL) differ (name, type, server, expected, actual).
  returned: always
  type: list
  elements: dict
checked:
  description: Number of record sets checked per server.
  returned: always
  type: int
servers:
  description: The servers that were asked.
  returned: always
  type: list
  elements: str
'''

import re
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.resolver
    import dns.tsig
    import dns.tsigkeyring
    HAS_DNS = True
    DNS_IMPORT_ERROR = None
except ImportError:
    HAS_DNS = False
    DNS_IMPORT_ERROR = traceback.format_exc()


class Checker(object):
    def __init__(self, module):
        self.module = module
        p = module.params
        self.keyring = None
        self.key_name = p["key_name"]
        if p["key_name"]:
            if not p["key_secret"]:
                module.fail_json(msg="key_secret is required with key_name")
            try:
                self.keyring = dns.tsigkeyring.from_text({p["key_name"]: p["key_secret"]})
            except Exception:  # pylint: disable=broad-except
                module.fail_json(msg="TSIG key %s: the secret is not valid base64" % p["key_name"])
        self.problems = []
        self.missing = []
        self.different = []
        self.ns_cache = {}

    def query(self, server, name, rtype):
        p = self.module.params
        msg = dns.message.make_query(name, rtype)
        msg.flags &= ~dns.flags.RD
        if self.keyring:
            msg.use_tsig(self.keyring, keyname=self.key_name, algorithm=p["key_algorithm"])
        where = "%s port %d" % (server, p["port"])
        try:
            if p["protocol"] == "tcp":
                return dns.query.tcp(msg, server, timeout=p["timeout"], port=p["port"])
            return dns.query.udp(msg, server, timeout=p["timeout"], port=p["port"])
        except (dns.tsig.PeerBadKey, dns.tsig.PeerBadSignature, dns.tsig.PeerBadTime, dns.tsig.PeerBadTruncation) as err:
            self.module.fail_json(msg="TSIG key %s was rejected by %s (%s): the key name, secret or algorithm does not "
                                      "match the server's" % (self.key_name, where, err.__class__.__name__))
        except dns.exception.Timeout:
            self.module.fail_json(msg="no answer from %s within %ss (asking %s %s)" % (where, p["timeout"], name, rtype))
        except (OSError, dns.exception.DNSException) as err:
            self.module.fail_json(msg="cannot query %s for %s %s: %s" % (where, name, rtype, err))
        return None

    def servers_for(self, zone):
        if self.module.params["server"]:
            return [self.module.params["server"]]
        if not zone:
            self.module.fail_json(msg="without server, every record needs its zone")
        if zone not in self.ns_cache:
            try:
                names = [r.target.to_text() for r in dns.resolver.resolve(zone, "NS")]
                addrs = []
                for ns in sorted(names):
                    for rtype in ("A", "AAAA"):
                        try:
                            addrs.extend(a.to_text() for a in dns.resolver.resolve(ns, rtype))
                        except dns.exception.DNSException:
                            pass
            except dns.exception.DNSException as err:
                self.module.fail_json(msg="cannot find the authoritative servers of %s: %s" % (zone, err))
            if not addrs:
                self.module.fail_json(msg="the NS of %s have no addresses" % zone)
            self.ns_cache[zone] = addrs
        return self.ns_cache[zone]

    def check_zone(self, zone, server):
        zone = zone if zone.endswith(".") else zone + "."
        resp = self.query(server, zone, "SOA")
        rcode = resp.rcode()
        if rcode != dns.rcode.NOERROR:
            self.problems.append("zone %s is not served by %s (%s)" % (zone, server, dns.rcode.to_text(rcode)))
        apex = any(r.rdtype == dns.rdatatype.SOA and r.name.to_text().lower() == zone.lower() for r in resp.answer)
        if rcode == dns.rcode.NOERROR and (not resp.flags & dns.flags.AA or not apex):
            self.problems.append("zone %s is not served by %s (no authoritative SOA: it is not a zone apex there)"
                                 % (zone, server))

    @staticmethod
    def normalise(rtype, value):
        if rtype == "TXT":
            parts = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
            return "".join(re.sub(r"\\(.)", r"\1", x) for x in parts) if parts else value
        rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), value)
        return rd.to_text().lower()

    def actual(self, rtype, rdata):
        if rtype == "TXT":
            return b"".join(rdata.strings).decode("utf-8", "replace")
        return rdata.to_text().lower()

    def check_record(self, rec, server):
        name = rec["name"] if rec["name"].endswith(".") else rec["name"] + "."
        rtype = rec["type"].upper()
        resp = self.query(server, name, rtype)
        rcode = resp.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            self.problems.append("%s %s: %s answered %s" % (name, rtype, server, dns.rcode.to_text(rcode)))
            return
        if not resp.flags & dns.flags.AA:
            self.problems.append("%s %s: %s is not authoritative for it" % (name, rtype, server))
            return
        rrset = None
        for answer in resp.answer:
            if answer.rdtype == dns.rdatatype.from_text(rtype) and answer.name == dns.name.from_text(name):
                rrset = answer
        if rrset is None:
            self.missing.append({"name": name, "type": rtype, "server": server})
            self.problems.append("%s %s is missing on %s" % (name, rtype, server))
            return
        try:
            want = sorted(set(self.normalise(rtype, v) for v in rec["values"]))
        except dns.exception.DNSException as err:
            self.module.fail_json(msg="%s %s: a declared value is malformed: %s" % (name, rtype, err))
        have = sorted(set(self.actual(rtype, r) for r in rrset))
        if want != have:
            self.different.append({"name": name, "type": rtype, "server": server, "expected": want, "actual": have})
            self.problems.append("%s %s differs on %s: expected %s, found %s" % (name, rtype, server, want, have))
        elif self.module.params["check_ttl"] and rec.get("ttl") and rrset.ttl != rec["ttl"]:
            self.different.append({"name": name, "type": rtype, "server": server, "expected_ttl": rec["ttl"],
                                   "actual_ttl": rrset.ttl})
            self.problems.append("%s %s has TTL %d on %s, expected %d" % (name, rtype, rrset.ttl, server, rec["ttl"]))

    def check_absent(self, rec, server):
        name = rec["name"] if rec["name"].endswith(".") else rec["name"] + "."
        rtype = rec["type"].upper()
        resp = self.query(server, name, rtype)
        if any(a.rdtype == dns.rdatatype.from_text(rtype) and a.name == dns.name.from_text(name) for a in resp.answer):
            self.different.append({"name": name, "type": rtype, "server": server, "expected": [], "actual": "present"})
            self.problems.append("%s %s should be absent but is still on %s" % (name, rtype, server))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            records=dict(type="list", elements="dict", default=[]),
            absent=dict(type="list", elements="dict", default=[]),
            zones=dict(type="list", elements="str", default=[]),
            server=dict(type="str", default=""),
            port=dict(type="int", default=53),
            protocol=dict(type="str", choices=["tcp", "udp"], default="udp"),
            key_name=dict(type="str"),
            key_secret=dict(type="str", no_log=True),
            key_algorithm=dict(type="str", default="hmac-sha256",
                               choices=["hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"]),
            timeout=dict(type="float", default=5),
            check_ttl=dict(type="bool", default=False),
            fail_on_drift=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_DNS:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNS_IMPORT_ERROR)
    p = module.params
    for rec in p["records"] + p["absent"]:
        if not isinstance(rec.get("name"), str) or not isinstance(rec.get("type"), str):
            module.fail_json(msg="every record needs a name and a type (got %r)" % (rec,))
    for rec in p["records"]:
        if not isinstance(rec.get("values"), list):
            module.fail_json(msg="record %s %s needs a list of values" % (rec["name"], rec["type"]))
    checker = Checker(module)
    servers = set()
    for zone in p["zones"]:
        for server in checker.servers_for(zone.rstrip(".") + "."):
            servers.add(server)
            checker.check_zone(zone, server)
    if not checker.problems:
        for rec in p["records"]:
            for server in checker.servers_for(rec.get("zone")):
                servers.add(server)
                checker.check_record(rec, server)
        for rec in p["absent"]:
            for server in checker.servers_for(rec.get("zone")):
                servers.add(server)
                checker.check_absent(rec, server)
    result = dict(changed=False, problems=checker.problems, missing=checker.missing, different=checker.different,
                  checked=len(p["records"]), servers=sorted(servers))
    if checker.problems and p["fail_on_drift"]:
        module.fail_json(msg="DNS check found %d problem(s): %s" % (len(checker.problems), "; ".join(checker.problems)),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
