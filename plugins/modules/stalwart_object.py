#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: stalwart_object
short_description: Ensure one Stalwart management object of any type is present or absent
version_added: 0.1.0
description:
  - Manages a single object of any Stalwart v0.16 management type (C(x:<Type>)) through the JMAP registry, matched
    by a natural key, or a singleton (settings object) by its type alone.
  - Only the declared O(properties) are compared; server-set fields and masked secrets are ignored, so C(changed)
    is true only when something declared differs. Only the differing properties are sent.
author: talentmesh platform engineering (@talentmesh)
extends_documentation_fragment:
  - talentmesh.mail.stalwart
options:
  type:
    description: Object type, with or without the C(x:) prefix, for example C(Domain), C(NetworkListener), C(MtaSts).
    type: str
    required: true
  key:
    description:
      - >-
        Properties that identify the object, for example C({name: example.com}) for a domain or
        C({name: alice, domain: example.com}) for an account (C(domain) is a domain name resolved to C(domainId)).
      - Required for collection types; ignored for singletons.
    type: dict
    default: {}
  properties:
    description:
      - >-
        Desired properties in Stalwart's JSON encoding (lists as C({"0": ...}) objects, sets as C({"x": true})).
      - The O(key) properties are added on create.
    type: dict
    default: {}
  state:
    description: Whether the object should exist. Singletons are always present.
    type: str
    choices: [present, absent]
    default: present
  singleton:
    description: The type is a singleton (one object with the id C(singleton), only updated).
    type: bool
    default: false
  update_password:
    description:
      - C(on_create) sends C(credentials) only when the object is created; C(always) sends them every run.
    type: str
    choices: [on_create, always]
    default: on_create
attributes:
  check_mode:
    description: Computes the same changes and makes no write calls.
    support: full
  diff_mode:
    description: Shows the declared properties before and after, with secrets masked.
    support: full
'''

EXAMPLES = r'''
- name: Listener for submission with STARTTLS on 587
  talentmesh.mail.stalwart_object:
    url: https://mail.example.com
    api_key: "{{ vault_stalwart_api_key }}"
    type: NetworkListener
    key: {name: submission}
    properties:
      protocol: smtp
      bind: {"[::]:587": true}
      tlsImplicit: false

- name: Enforce MTA-STS (a singleton)
  talentmesh.mail.stalwart_object:
    url: https://mail.example.com
    api_key: "{{ vault_stalwart_api_key }}"
    type: MtaSts
    singleton: true
    properties: {mode: enforce}

- name: Remove an old mailing list
  talentmesh.mail.stalwart_object:
    url: https://mail.example.com
    api_key: "{{ vault_stalwart_api_key }}"
    type: MailingList
    key: {name: announce, domain: example.com}
    state: absent
'''

RETURN = r'''
id:
  description: Server id of the object (C(singleton) for singletons; absent in check mode for a new object).
  returned: always
  type: str
  sample: c
summary:
  description: Counts of created, updated, destroyed and unchanged objects.
  returned: always
  type: dict
  sample: {"NetworkListener": {"created": 1, "updated": 0, "destroyed": 0, "unchanged": 0}}
calls:
  description: The C(/set) calls made or, in check mode, planned (ids only, never bodies).
  returned: always
  type: list
  elements: dict
  sample: [{"method": "x:NetworkListener/set", "create": ["object"]}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart import (
    STALWART_MUTUALLY_EXCLUSIVE, STALWART_REQUIRED_TOGETHER, StalwartClient, StalwartError, secrets_in, stalwart_argument_spec,
)
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart_plan import ensure_one


def main():
    argument_spec = stalwart_argument_spec()
    argument_spec.update(
        type=dict(type="str", required=True),
        key=dict(type="dict", default={}, no_log=False),
        properties=dict(type="dict", default={}),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        singleton=dict(type="bool", default=False),
        update_password=dict(type="str", choices=["on_create", "always"], default="on_create", no_log=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=STALWART_MUTUALLY_EXCLUSIVE, required_together=STALWART_REQUIRED_TOGETHER)
    p = module.params
    module.no_log_values.update(secrets_in(p["properties"]))
    try:
        result = ensure_one(StalwartClient(p), p["type"], p["key"], p["properties"], p["state"], module.check_mode,
                            p["update_password"], module._diff, p["singleton"])
    except StalwartError as err:
        module.fail_json(msg=err.message, **err.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
