#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: stalwart_dkim
short_description: Ensure DKIM signatures for a Stalwart domain and return the DNS records to publish
version_added: 0.1.0
description:
  - With O(management=server), Stalwart generates the keys itself (its C(DkimManagement) task) for the given
    O(algorithms); O(rotate=true) starts that task once more, which creates new keys and moves the current ones to
    the C(retiring) stage.
  - With O(management=manual), the module ensures one C(x:DkimSignature) per entry of O(keys) from PEM private keys
    you provide (for example generated with C(community.crypto.openssl_privatekey) and stored in a vault), and
    switches the domain to manual DKIM management.
  - Returns the TXT records C(<selector>._domainkey.<domain>) for every active or pending signature.
author: talentmesh platform engineering (@talentmesh)
extends_documentation_fragment:
  - talentmesh.mail.stalwart
options:
  domain:
    description: Domain name; it must exist.
    type: str
    required: true
  management:
    description: Who generates keys, see the description.
    type: str
    choices: [server, manual]
    default: server
  algorithms:
    description: Algorithms for O(management=server).
    type: list
    elements: str
    choices: [rsa, ed25519]
    default: [rsa, ed25519]
  rotate:
    description: Start Stalwart's DkimManagement task to generate new keys now (reports a change every time).
    type: bool
    default: false
  keys:
    description: Signatures for O(management=manual).
    type: list
    elements: dict
    default: []
    suboptions:
      selector:
        description: DKIM selector.
        type: str
        required: true
      algorithm:
        description: Key algorithm.
        type: str
        choices: [rsa, ed25519]
        required: true
      private_key:
        description: PEM private key (PKCS#8 or traditional).
        type: str
        required: true
attributes:
  check_mode:
    description: Computes the same changes and makes no write calls.
    support: full
  diff_mode:
    description: Shows the declared properties before and after, with secrets masked.
    support: full
'''

EXAMPLES = r'''
- name: Server-managed RSA and Ed25519 keys; publish the records with the dns role
  talentmesh.mail.stalwart_dkim:
    url: https://mail.example.com
    api_key: "{{ vault_stalwart_api_key }}"
    domain: example.com
  register: dkim

- name: Show what to publish
  ansible.builtin.debug:
    var: dkim.records
'''

RETURN = r'''
records:
  description: DKIM TXT records to publish.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "v1-rsa-20261125._domainkey.example.com.", "type": "TXT", "value": "v=DKIM1; k=rsa; p=MIIB..."}]
signatures:
  description: The domain's signatures (selector, algorithm, stage); private keys are never returned.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "i1nk7i22boqc", "selector": "v1-rsa-20261125", "algorithm": "Dkim1RsaSha256", "stage": "active"}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart import (
    STALWART_MUTUALLY_EXCLUSIVE, STALWART_REQUIRED_TOGETHER, StalwartClient, StalwartError, stalwart_argument_spec,
)
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart_dns import dkim_txt
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart_plan import Planner, domain_id

ALGORITHMS = {"rsa": "Dkim1RsaSha256", "ed25519": "Dkim1Ed25519Sha256"}


def main():
    argument_spec = stalwart_argument_spec()
    argument_spec.update(
        domain=dict(type="str", required=True),
        management=dict(type="str", choices=["server", "manual"], default="server"),
        algorithms=dict(type="list", elements="str", choices=["rsa", "ed25519"], default=["rsa", "ed25519"]),
        rotate=dict(type="bool", default=False),
        keys=dict(type="list", elements="dict", default=[], no_log=False, options=dict(
            selector=dict(type="str", required=True),
            algorithm=dict(type="str", choices=["rsa", "ed25519"], required=True),
            private_key=dict(type="str", required=True, no_log=True),
        )),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=STALWART_MUTUALLY_EXCLUSIVE, required_together=STALWART_REQUIRED_TOGETHER)
    p = module.params
    name = p["domain"].lower()
    try:
        client = StalwartClient(p)
        dom_id = domain_id(client, name)
        planner = Planner(client, check_mode=module.check_mode, want_diff=module._diff)
        if p["management"] == "server":
            mgmt = {"@type": "Automatic", "algorithms": dict((ALGORITHMS[a], True) for a in p["algorithms"])}
            planner.run([{"@type": "update", "object": "Domain", "id": dom_id, "value": {"dkimManagement": mgmt}}])
            if p["rotate"]:
                planner.run([{"@type": "create", "object": "Task",
                              "value": {"rotate": {"@type": "DkimManagement", "domainId": dom_id}}}])
        else:
            if not p["keys"]:
                module.fail_json(msg="management=manual needs keys: give at least one selector, algorithm and private_key")
            planner.run([
                {"@type": "update", "object": "Domain", "id": dom_id, "value": {"dkimManagement": {"@type": "Manual"}}},
                {"@type": "upsert", "object": "DkimSignature", "matchOn": ["domainId", "selector"], "value": dict(
                    ("key%d" % i, {"@type": ALGORITHMS[k["algorithm"]], "domainId": dom_id, "selector": k["selector"],
                                   "privateKey": {"@type": "Text", "secret": k["private_key"]}}) for i, k in enumerate(p["keys"]))},
            ])
        result = planner.result()
        signatures = client.get_all("x:DkimSignature", {"domainId": dom_id}, ["@type", "selector", "stage", "publicKey"])
        result["signatures"] = [{"id": s["id"], "selector": s["selector"], "algorithm": s.get("@type"),
                                 "stage": s.get("stage")} for s in signatures]
        result["records"] = [{"name": "%s._domainkey.%s." % (s["selector"], name), "type": "TXT",
                              "value": dkim_txt(s["publicKey"], s.get("@type") or "")}
                             for s in signatures if s.get("stage") in ("active", "pending") and s.get("publicKey")]
    except StalwartError as err:
        module.fail_json(msg=err.message, **err.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
