#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: stalwart_domain
short_description: Ensure a mail domain exists in Stalwart
version_added: 0.1.0
description:
  - Thin convenience over M(talentmesh.mail.stalwart_object) for C(x:Domain), matched by name.
author: talentmesh platform engineering (@talentmesh)
extends_documentation_fragment:
  - talentmesh.mail.stalwart
options:
  name:
    description: Domain name (stored lower-case).
    type: str
    required: true
  aliases:
    description: Alias domain names; when given, the set is made exactly this.
    type: list
    elements: str
  description:
    description: Free-text description.
    type: str
  catch_all:
    description: Catch-all address for unknown local parts.
    type: str
  dkim_management:
    description:
      - C(automatic) lets Stalwart generate and rotate DKIM keys (its C(DkimManagement) task), C(manual) leaves
        signatures to M(talentmesh.mail.stalwart_dkim). Not changed on an existing domain unless given.
    type: str
    choices: [automatic, manual]
  properties:
    description: Further C(x:Domain) properties in Stalwart's JSON encoding.
    type: dict
    default: {}
  state:
    description: Whether the domain should exist. A domain still used by accounts or DKIM signatures cannot be removed.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    description: Computes the same changes and makes no write calls.
    support: full
  diff_mode:
    description: Shows the declared properties before and after, with secrets masked.
    support: full
'''

EXAMPLES = r'''
- name: Primary mail domain with an alias
  talentmesh.mail.stalwart_domain:
    url: https://mail.example.com
    api_key: "{{ vault_stalwart_api_key }}"
    name: example.com
    aliases: [example.net]
    dkim_management: automatic
'''

RETURN = r'''
id:
  description: Server id of the domain.
  returned: when the domain exists (not for a new domain in check mode)
  type: str
  sample: b
summary:
  description: Counts of created, updated, destroyed and unchanged objects.
  returned: always
  type: dict
  sample: {"Domain": {"created": 1, "updated": 0, "destroyed": 0, "unchanged": 0}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart import (
    STALWART_MUTUALLY_EXCLUSIVE, STALWART_REQUIRED_TOGETHER, StalwartClient, StalwartError, stalwart_argument_spec,
)
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart_plan import ensure_one


def main():
    argument_spec = stalwart_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        aliases=dict(type="list", elements="str"),
        description=dict(type="str"),
        catch_all=dict(type="str"),
        dkim_management=dict(type="str", choices=["automatic", "manual"]),
        properties=dict(type="dict", default={}),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=STALWART_MUTUALLY_EXCLUSIVE, required_together=STALWART_REQUIRED_TOGETHER)
    p = module.params
    props = dict(p["properties"])
    if p["aliases"] is not None:
        props["aliases"] = dict((a.lower(), True) for a in p["aliases"])
    if p["description"] is not None:
        props["description"] = p["description"]
    if p["catch_all"] is not None:
        props["catchAllAddress"] = p["catch_all"]
    if p["dkim_management"]:
        props["dkimManagement"] = {"@type": p["dkim_management"].capitalize()}
    try:
        result = ensure_one(StalwartClient(p), "Domain", {"name": p["name"].lower()}, props, p["state"],
                            module.check_mode, want_diff=module._diff)
    except StalwartError as err:
        module.fail_json(msg=err.message, **err.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
