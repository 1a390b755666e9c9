#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: stalwart_info
short_description: Read a Stalwart server's session, health and the DNS records it wants for a domain
version_added: 0.1.0
description:
  - Returns the JMAP session (user, limits, capabilities), liveness and readiness (C(/healthz/live),
    C(/healthz/ready)), and, for O(domain), the zone records Stalwart suggests (C(Domain.dnsZoneFile)) both as raw
    zone text and parsed into structured records.
author: talentmesh platform engineering (@talentmesh)
extends_documentation_fragment:
  - talentmesh.mail.stalwart
options:
  domain:
    description: Domain whose suggested DNS records to return.
    type: str
attributes:
  check_mode:
    description: The module only reads.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
'''

EXAMPLES = r'''
- name: Records to publish for example.com
  talentmesh.mail.stalwart_info:
    url: https://mail.example.com
    api_key: "{{ vault_stalwart_api_key }}"
    domain: example.com
  register: info

- name: Publish the MX records
  ansible.builtin.debug:
    msg: "{{ info.dns_records | selectattr('type', 'equalto', 'MX') | list }}"
'''

RETURN = r'''
health:
  description: HTTP status of the health endpoints and whether each reports healthy.
  returned: always
  type: dict
  sample: {"live": true, "ready": true}
session:
  description: User name, management account id and the server limits from the JMAP session.
  returned: always
  type: dict
  sample: {"username": "admin", "account_id": "d333333", "limits": {"maxCallsInRequest": 16}}
capabilities:
  description: Capability URNs the server advertises.
  returned: always
  type: list
  elements: str
  sample: ["urn:ietf:params:jmap:core"]
zone_file:
  description: Raw BIND-style zone text for O(domain).
  returned: when O(domain) is given
  type: str
dns_records:
  description: Parsed records (name, type, ttl, value, and priority/weight/port where the type has them).
  returned: when O(domain) is given
  type: list
  elements: dict
  sample: [{"name": "example.com.", "type": "MX", "ttl": 3600, "priority": 10, "value": "mail.example.com."}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart import (
    CORE, MGMT, STALWART_MUTUALLY_EXCLUSIVE, STALWART_REQUIRED_TOGETHER, StalwartClient, StalwartError,
    stalwart_argument_spec,
)
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart_dns import parse_zone
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart_plan import domain_id


def health(client, path):
    probe = StalwartClient(dict(client.params, retries=0))
    try:
        status, dummy = probe.http("GET", path, auth=False)
        return status == 200
    except StalwartError:
        return False


def main():
    argument_spec = stalwart_argument_spec()
    argument_spec.update(domain=dict(type="str"))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=STALWART_MUTUALLY_EXCLUSIVE, required_together=STALWART_REQUIRED_TOGETHER)
    try:
        client = StalwartClient(module.params)
        result = {"changed": False, "health": {"live": health(client, "/healthz/live"), "ready": health(client, "/healthz/ready")}}
        session = client.session
        result["session"] = {"username": session.get("username"), "account_id": session["primaryAccounts"][MGMT],
                             "limits": session.get("capabilities", {}).get(CORE, {})}
        result["capabilities"] = sorted(session.get("capabilities", {}))
        if module.params["domain"]:
            dom = client.get("x:Domain", [domain_id(client, module.params["domain"])], ["name", "dnsZoneFile"])[0]
            result["zone_file"] = dom.get("dnsZoneFile") or ""
            result["dns_records"] = parse_zone(result["zone_file"])
    except StalwartError as err:
        module.fail_json(msg=err.message, **err.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
