#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: stalwart_account
short_description: Ensure a Stalwart user or group account
version_added: 0.1.0
description:
  - Thin convenience over M(talentmesh.mail.stalwart_object) for C(x:Account). The account is named by its email
    address, which is split into the local part and the id of its (existing) domain.
  - For thousands of accounts use M(talentmesh.mail.stalwart_apply), which reads and writes in bulk.
author: talentmesh platform engineering (@talentmesh)
extends_documentation_fragment:
  - talentmesh.mail.stalwart
options:
  email:
    description: Address of the account, C(local@domain). The domain must exist.
    type: str
    required: true
  kind:
    description: User or group account. The kind of an existing account cannot change.
    type: str
    choices: [user, group]
    default: user
  user_password:
    description:
      - Password or password hash (C($argon2id$...), C($6$...), ...) of the user account (O(password) is the password
        of the administrator the module connects as). Plaintext must satisfy the server's password policy. Sent
        according to O(update_password).
    type: str
  update_password:
    description: C(on_create) sets the password only when the account is created; C(always) sends it every run.
    type: str
    choices: [on_create, always]
    default: on_create
  description:
    description: Display name.
    type: str
  member_of:
    description: Names (local parts) or addresses of the groups the user belongs to; the set is made exactly this.
    type: list
    elements: str
  role:
    description: C(user) or C(admin) role for a user account.
    type: str
    choices: [user, admin]
  quota:
    description: Disk quota in bytes (C(quotas.maxDiskQuota)).
    type: int
  properties:
    description: Further C(x:Account) properties in Stalwart's JSON encoding.
    type: dict
    default: {}
  state:
    description: Whether the account should exist. Removing an account schedules deletion of its mail.
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
- name: A user in the ops group
  talentmesh.mail.stalwart_account:
    url: https://mail.example.com
    api_key: "{{ vault_stalwart_api_key }}"
    email: alice@example.com
    description: Alice Example
    user_password: "{{ vault_alice_password_hash }}"
    member_of: [ops]
'''

RETURN = r'''
id:
  description: Server id of the account.
  returned: when the account exists (not for a new account in check mode)
  type: str
  sample: c
summary:
  description: Counts of created, updated, destroyed and unchanged objects.
  returned: always
  type: dict
  sample: {"Account": {"created": 1, "updated": 0, "destroyed": 0, "unchanged": 0}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart import (
    STALWART_MUTUALLY_EXCLUSIVE, STALWART_REQUIRED_TOGETHER, StalwartClient, StalwartError, stalwart_argument_spec,
)
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart_dns import split_email
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart_plan import domain_id, ensure_one


def group_ids(client, names, domain, dom_id):
    wanted = {}
    for name in names:
        local, group_domain = split_email(name) if "@" in name else (name.lower(), domain)
        gid = dom_id if group_domain == domain else domain_id(client, group_domain)
        found = client.query("x:Account", {"name": local, "domainId": gid, "@type": "Group"})
        if not found:
            raise StalwartError("group %s@%s does not exist: create it first (kind: group)" % (local, group_domain))
        wanted[found[0]] = True
    return wanted


def main():
    argument_spec = stalwart_argument_spec()
    argument_spec.update(
        email=dict(type="str", required=True),
        kind=dict(type="str", choices=["user", "group"], default="user"),
        user_password=dict(type="str", no_log=True),
        update_password=dict(type="str", choices=["on_create", "always"], default="on_create", no_log=False),
        description=dict(type="str"),
        member_of=dict(type="list", elements="str"),
        role=dict(type="str", choices=["user", "admin"]),
        quota=dict(type="int"),
        properties=dict(type="dict", default={}),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=STALWART_MUTUALLY_EXCLUSIVE, required_together=STALWART_REQUIRED_TOGETHER)
    p = module.params
    local, domain = split_email(p["email"])
    if not local:
        module.fail_json(msg="email must be an address like local@example.com, got %r" % p["email"])
    try:
        client = StalwartClient(p)
        dom_id = domain_id(client, domain)
        props = dict(p["properties"])
        props["@type"] = p["kind"].capitalize()
        if p["description"] is not None:
            props["description"] = p["description"]
        if p["user_password"]:
            if p["kind"] != "user":
                module.fail_json(msg="user_password applies to user accounts only")
            props["credentials"] = {"0": {"@type": "Password", "secret": p["user_password"]}}
        if p["member_of"] is not None:
            props["memberGroupIds"] = group_ids(client, p["member_of"], domain, dom_id)
        if p["role"]:
            props["roles"] = {"@type": p["role"].capitalize()}
        if p["quota"] is not None:
            props["quotas"] = {"maxDiskQuota": p["quota"]}
        key = {"name": local, "domainId": dom_id}
        result = ensure_one(client, "Account", key, props, p["state"], module.check_mode, p["update_password"], module._diff)
    except StalwartError as err:
        module.fail_json(msg=err.message, **err.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
