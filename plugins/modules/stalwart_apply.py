#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: stalwart_apply
short_description: Reconcile a declarative Stalwart plan (the operations of C(stalwart-cli apply))
version_added: 0.1.0
description:
  - Applies a plan of C(upsert), C(reconcile), C(create), C(update) and C(destroy) operations to Stalwart v0.16's
    management registry, in the plan format of C(stalwart-cli apply). The plan is given inline as YAML (O(plan)) or
    as the CLI's NDJSON plan file (O(src)); both carry the same operation objects, so plans move between the two.
  - Unlike the CLI, the module reads first and diffs, so C(changed) is exact. It reads every object of each type the
    plan touches once (paged C(/query) plus C(/get) through result references), matches declared objects by
    C(matchOn) (default the type's natural key, for example C(name) for domains and C(name) + C(domainId) for
    accounts), compares only the properties the plan declares (server-set fields and masked C(****) secrets are
    ignored), and sends only the differences in batched C(/set) calls (up to C(maxObjectsInSet) objects per call and
    C(maxCallsInRequest) calls per HTTP request).
  - References between objects use client ids (C(#dom-a)); the module resolves them to real ids for matching and
    lets the server resolve those created in the same request.
  - Execution order follows the CLI. Destroys run first in reverse plan order, then upserts, reconciles, creates
    and updates in plan order, then reconcile deletions and O(prune).
author: talentmesh platform engineering (@talentmesh)
extends_documentation_fragment:
  - talentmesh.mail.stalwart
options:
  plan:
    description:
      - >-
        The operations, each a mapping shaped like one NDJSON line of a C(stalwart-cli apply) plan, for example
        C({"@type": "upsert", "object": "Domain", "matchOn": ["name"], "value": {"dom-a": {"name": "example.com"}}}).
      - Mutually exclusive with O(src).
    type: list
    elements: dict
  src:
    description: Path (on the managed host) of an NDJSON plan file as C(stalwart-cli apply) reads it.
    type: path
  prune:
    description:
      - Object types (for example C(Account)) whose existing objects the plan does not declare are destroyed.
      - Limited to the types named here, and each must be declared by an C(upsert) in the plan.
    type: list
    elements: str
    default: []
  update_password:
    description:
      - C(on_create) sends C(credentials) only when an account is created (passwords cannot be compared; the server
        returns them masked). C(always) sends them on every run, which reports a change each time.
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
notes:
  - A C(create) operation is not idempotent, as with the CLI. Use C(upsert) for objects that must converge.
  - The plan may carry passwords. Prefer hashes (C($argon2id$...), C($6$...)); the module masks secrets in its output.
'''

EXAMPLES = r'''
- name: Provision domains, groups and accounts from a plan
  talentmesh.mail.stalwart_apply:
    url: https://mail.example.com
    username: admin@example.com
    password: "{{ vault_stalwart_admin_password }}"
    plan:
      - "@type": upsert
        object: Domain
        value:
          dom-a: {name: example.com}
      - "@type": upsert
        object: Account
        matchOn: [name, domainId]
        value:
          grp-ops: {"@type": Group, name: ops, domainId: "#dom-a"}
          usr-alice:
            "@type": User
            name: alice
            domainId: "#dom-a"
            description: Alice Example
            credentials: {"0": {"@type": Password, secret: "{{ vault_alice_hash }}"}}
            memberGroupIds: {"#grp-ops": true}
      - "@type": update
        object: SystemSettings
        value: {defaultDomainId: "#dom-a"}

- name: Apply the NDJSON plan a colleague exported with stalwart-cli, removing undeclared accounts
  module_defaults:
    group/talentmesh.mail.stalwart:
      url: https://mail.example.com
      api_key: "{{ vault_stalwart_api_key }}"
  block:
    - name: Converge
      talentmesh.mail.stalwart_apply:
        src: /srv/stalwart/plan.ndjson
        prune: [Account]
'''

RETURN = r'''
summary:
  description: Per object type, how many objects were created, updated, destroyed and left unchanged.
  returned: always
  type: dict
  sample: {"Domain": {"created": 1, "updated": 0, "destroyed": 0, "unchanged": 0}}
ids:
  description: Client id of each declared object mapped to its server id (created objects in check mode are absent).
  returned: always
  type: dict
  sample: {"dom-a": "b", "usr-alice": "c"}
calls:
  description: The C(/set) calls made (or, in check mode, that would be made), with the client ids or server ids
    they carried. Bodies are not repeated, so no secret appears.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "x:Domain/set", "create": ["dom-a"]}]
http_requests:
  description: HTTP requests made to the server.
  returned: always
  type: int
  sample: 3
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart import (
    STALWART_MUTUALLY_EXCLUSIVE, STALWART_REQUIRED_TOGETHER, StalwartClient, StalwartError, secrets_in, stalwart_argument_spec,
)
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart_plan import Planner, parse_ndjson


def main():
    argument_spec = stalwart_argument_spec()
    argument_spec.update(
        plan=dict(type="list", elements="dict"),
        src=dict(type="path"),
        prune=dict(type="list", elements="str", default=[]),
        update_password=dict(type="str", choices=["on_create", "always"], default="on_create", no_log=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=STALWART_MUTUALLY_EXCLUSIVE + [("plan", "src")],
                           required_one_of=[("plan", "src")], required_together=STALWART_REQUIRED_TOGETHER)
    try:
        if module.params["src"]:
            try:
                with open(module.params["src"], "r") as handle:
                    ops = parse_ndjson(handle.read())
            except (IOError, OSError) as err:
                module.fail_json(msg="cannot read plan file %s: %s" % (module.params["src"], err.strerror))
        else:
            ops = module.params["plan"]
        module.no_log_values.update(secrets_in(ops))
        planner = Planner(StalwartClient(module.params), check_mode=module.check_mode,
                          update_password=module.params["update_password"], prune=module.params["prune"],
                          want_diff=module._diff)
        result = planner.run(ops)
    except StalwartError as err:
        module.fail_json(msg=err.message, **err.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
