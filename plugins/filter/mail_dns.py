# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the dns role: compute and validate a mail platform's records, render a zone-file fragment, take DKIM
records from Stalwart's suggested zone. Documented in dns_records.yml, dns_zone_fragment.yml, dns_dkim_from_zone.yml,
dns_zone_rrsets.yml."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.talentmesh.mail.plugins.module_utils import mail_records


def dns_records(config):
    """{records, absent, problems, policies} for the dns role's settings (problems instead of an exception)."""
    if not isinstance(config, dict):
        raise AnsibleFilterError("dns_records expects a dict (domains, defaults, hosts, dkim, ...)")
    problems = mail_records.validate(config)
    result = {"records": [], "absent": [], "problems": problems, "policies": []}
    if problems:
        return result
    try:
        result["records"] = mail_records.compute(config)
    except ValueError as err:
        result["problems"] = str(err).split("; ")
        return result
    present = set((r["name"], r["type"]) for r in result["records"])
    result["absent"] = [r for r in mail_records.absent_records(config) if (r["name"], r["type"]) not in present]
    for domain in config["domains"]:
        settings = mail_records.settings_for(config, domain)
        if settings["state"] == "present" and settings.get("mta_sts"):
            policy = mail_records.mta_sts_policy(settings)
            result["policies"].append({"domain": settings["name"], "policy": policy,
                                       "id": mail_records.mta_sts_id(policy)})
    return result


def dns_zone_fragment(rrsets, zone=None):
    if not isinstance(rrsets, list):
        raise AnsibleFilterError("dns_zone_fragment expects the list of record sets from dns_records")
    return mail_records.zone_fragment(rrsets, zone)


def dns_dkim_from_zone(records, domain):
    if not isinstance(records, list):
        raise AnsibleFilterError("dns_dkim_from_zone expects stalwart_info's dns_records list")
    return mail_records.dkim_from_zone(records, domain)


def dns_zone_rrsets(records, domain):
    if not isinstance(records, list):
        raise AnsibleFilterError("dns_zone_rrsets expects stalwart_info's dns_records list")
    return mail_records.rrsets_from_zone(records, domain)


class FilterModule(object):
    def filters(self):
        return {
            "dns_records": dns_records,
            "dns_zone_fragment": dns_zone_fragment,
            "dns_dkim_from_zone": dns_dkim_from_zone,
            "dns_zone_rrsets": dns_zone_rrsets,
        }
