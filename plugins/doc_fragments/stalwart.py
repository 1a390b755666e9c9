# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r'''
options:
  url:
    description:
      - Base URL of the Stalwart server's HTTP listener, for example C(https://mail.example.com) or, in recovery mode,
        C(http://127.0.0.1:8080). The module discovers the session at C(<url>/jmap/session).
      - Falls back to the environment variable E(STALWART_URL).
    type: str
    required: true
  username:
    description:
      - Account name for HTTP Basic authentication (an administrator, or the recovery admin).
      - Falls back to E(STALWART_USER). Mutually exclusive with O(api_key).
    type: str
  password:
    description:
      - Password for O(username). Falls back to E(STALWART_PASSWORD).
    type: str
  api_key:
    description:
      - API key (C(API_...)) sent as a bearer token. Falls back to E(STALWART_TOKEN).
    type: str
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: PEM file with the CA that signed the server certificate (a private CA).
    type: path
  timeout:
    description: Seconds to wait for each HTTP response.
    type: int
    default: 30
  retries:
    description:
      - How many times to retry a request after a connection error, an HTTP 5xx or an HTTP 429, with exponential
        backoff (0.5 s doubling, with jitter; C(Retry-After) is honoured). Requests that fail with another 4xx are
        never retried.
      - The same for a JMAP request in which a call failed with C(serverFail) or C(serverUnavailable) (what Stalwart
        answers while its datastore is unreachable, e.g. during a PostgreSQL restart or failover), as long as no call
        of that request changed anything; a request in which a write succeeded is never sent twice.
      - With the default 4 retries the waits add up to about 8 s; raise it to ride out longer outages (6 retries wait
        about 32 s).
    type: int
    default: 4
notes:
  - Connection options can be set once for every Stalwart module with
    C(module_defaults) and the action group C(group/talentmesh.mail.stalwart).
  - Talks to Stalwart v0.16's JMAP management API (C(/jmap), objects C(x:<Type>)); the v0.15 REST API is not supported.
'''
