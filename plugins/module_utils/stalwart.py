# -*- coding: utf-8 -*-
# Copyright: talentmesh platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One JMAP client for Stalwart v0.16's management API, shared by every talentmesh.mail Stalwart module."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import random
import socket
import time

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import Request, make_context, open_url


def open_with_context(url, context=None, **kwargs):
    """open_url's own machinery (ansible.module_utils.urls.Request, which open_url wraps) with an SSL context the
    client builds once: open_url would build a new one for every request (about 25 ms each)."""
    if context is None:
        return open_url(url, **kwargs)
    return Request(context=context).open(kwargs.pop("method"), url, **kwargs)


CORE = "urn:ietf:params:jmap:core"
MGMT = "urn:stalwart:jmap"
USING = [CORE, MGMT]
SECRET_KEYS = frozenset(["secret", "password", "privateKey", "authSecret", "secretKey", "bindSecret", "apiKey", "licenseKey"])
MASK = "****"


def stalwart_argument_spec():
    """Connection options every Stalwart module accepts (documented once in the doc fragment)."""
    return dict(
        url=dict(type="str", required=True, fallback=(env_fallback, ["STALWART_URL"])),
        username=dict(type="str", fallback=(env_fallback, ["STALWART_USER"])),
        password=dict(type="str", no_log=True, fallback=(env_fallback, ["STALWART_PASSWORD"])),
        api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["STALWART_TOKEN"])),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="int", default=30),
        retries=dict(type="int", default=4),
    )


STALWART_MUTUALLY_EXCLUSIVE = [("username", "api_key")]
STALWART_REQUIRED_TOGETHER = [("username", "password")]


class StalwartError(Exception):
    """An error whose message tells the user what to fix; never carries a secret."""

    def __init__(self, message, details=None):
        super(StalwartError, self).__init__(message)
        self.message = message
        self.details = details or {}


def mask(value):
    """Deep copy with every secret-like value replaced by ****."""
    if isinstance(value, dict):
        return dict((k, MASK if k in SECRET_KEYS and isinstance(value[k], str) else mask(value[k])) for k in value)
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def secrets_in(value):
    """Every secret string inside a plan or property tree; modules add them to no_log_values so Ansible masks them in
    the invocation it echoes, in results and in errors."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SECRET_KEYS and isinstance(item, str) and item and item != MASK:
                found.add(item)
            else:
                found |= secrets_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= secrets_in(item)
    return found


def describe_set_error(obj_type, key, err):
    kind = err.get("type", "unknown")
    text = "%s %s: %s" % (obj_type, key, kind)
    if err.get("description"):
        text += " (%s)" % err["description"]
    if err.get("properties"):
        text += " on %s" % ", ".join(err["properties"])
    if kind == "primaryKeyViolation" and err.get("objectId"):
        text += "; already used by %s %s" % (err["objectId"].get("object"), err["objectId"].get("id"))
    elif kind == "invalidForeignKey" and err.get("objectId"):
        text += "; %s %s does not exist" % (err["objectId"].get("object"), err["objectId"].get("id"))
    elif kind == "objectIsLinked":
        linked = ", ".join("%s %s" % (o.get("object"), o.get("id")) for o in err.get("linkedObjects", []))
        text += "; still referenced by %s - remove those first" % linked
    elif kind == "validationFailed":
        text += ": " + ", ".join("%s %s" % (v.get("type"), v.get("property")) for v in err.get("validationErrors", []))
    return text


# Method-level errors that say "try again later" (RFC 8620, 3.6.2); Stalwart answers serverFail for a datastore error.
TRANSIENT_METHOD_ERRORS = ("serverFail", "serverUnavailable")
READ_METHODS = ("/get", "/query", "/changes", "/queryChanges")


def method_error(name, err):
    """StalwartError for a method-level error; `forbidden` names the likely cause (not an administrator)."""
    text = "%s failed: %s%s" % (name, err.get("type"), " (%s)" % err["description"] if err.get("description") else "")
    if err.get("type") == "forbidden":
        text += ": the credential lacks the permission (not an administrator?): use an administrator account or an " \
                "API key of one"
    return StalwartError(text, {"error": err})


class StalwartClient(object):
    """Session discovery, batched method calls with retries, paging and chunking."""

    def __init__(self, params, opener=open_with_context, sleep=time.sleep):
        self.base = params["url"].rstrip("/")
        self.params = params
        self.opener = opener
        self._context = None
        self.sleep = sleep
        self.http_requests = 0
        self._session = None
        self.api_path = "/jmap"

    # ------------------------------------------------------------------------------------------- transport
    def _headers(self):
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.params.get("api_key"):
            headers["Authorization"] = "Bearer " + self.params["api_key"]
        return headers

    def http(self, method, path, body=None, auth=True):
        """One HTTP exchange with retries on connection errors, 5xx and 429 (never on other 4xx)."""
        url = self.base + path
        data = json.dumps(body).encode("utf-8") if body is not None else None
        attempts = max(0, int(self.params.get("retries", 4))) + 1
        delay = 0.5
        last = None
        for attempt in range(attempts):
            kwargs = dict(method=method, data=data, headers=self._headers(), timeout=self.params.get("timeout", 30),
                          validate_certs=self.params.get("validate_certs", True), follow_redirects="safe")
            if self.params.get("ca_path"):
                kwargs["ca_path"] = self.params["ca_path"]
            kwargs["context"] = self.ssl_context()
            if auth and self.params.get("username") and not self.params.get("api_key"):
                kwargs.update(url_username=self.params["username"], url_password=self.params.get("password") or "",
                              force_basic_auth=True)
            self.http_requests += 1
            try:
                resp = self.opener(url, **kwargs)
                status = getattr(resp, "status", None) or resp.getcode()
                raw = resp.read()
                return status, json.loads(raw) if raw else None
            except HTTPError as err:
                status = err.code
                try:
                    payload = json.loads(err.read() or b"{}")
                except ValueError:
                    payload = {}
                if status == 429 or status >= 500:
                    last = "HTTP %d %s" % (status, payload.get("title") or payload.get("detail") or "")
                    retry_after = err.headers.get("Retry-After") if err.headers else None
                    if attempt + 1 < attempts:
                        self.sleep(self._backoff(delay, retry_after))
                        delay *= 2
                        continue
                    raise StalwartError("%s %s failed after %d attempts: %s" % (method, url, attempts, last.strip()))
                raise self._client_error(status, payload, url)
            except (URLError, socket.timeout, ConnectionError) as err:
                reason = getattr(err, "reason", err)
                last = str(reason)
                if "CERTIFICATE_VERIFY_FAILED" in last or "certificate verify failed" in last:
                    raise StalwartError("TLS verification of %s failed (%s): set ca_path to the CA that signed the "
                                        "server certificate, or validate_certs=false for a test server" % (url, last))
                if attempt + 1 < attempts:
                    self.sleep(self._backoff(delay, None))
                    delay *= 2
                    continue
        raise StalwartError("cannot reach Stalwart at %s after %d attempts (%s): check url and that the server is running"
                            % (self.base, attempts, last))

    def ssl_context(self):
        """One SSL context per client (private CA from ca_path, verification per validate_certs)."""
        if self._context is None:
            self._context = make_context(cafile=self.params.get("ca_path"),
                                         validate_certs=self.params.get("validate_certs", True))
        return self._context

    @staticmethod
    def _backoff(delay, retry_after):
        if retry_after:
            try:
                return min(60.0, float(retry_after))
            except ValueError:
                pass
        return delay * (1 + random.random() * 0.25)

    @staticmethod
    def _client_error(status, payload, url):
        detail = payload.get("detail") or payload.get("title") or ""
        if status == 401:
            return StalwartError("authentication to %s failed (HTTP 401): check username/password or api_key" % url)
        if status == 403:
            return StalwartError("access to %s refused (HTTP 403): the credential lacks permission" % url)
        kind = (payload.get("type") or "").rsplit(":", 1)[-1]
        if kind == "limit":
            return StalwartError("request exceeds the server limit %s: %s" % (payload.get("limit"), detail))
        return StalwartError("Stalwart rejected the request (HTTP %d %s): %s" % (status, kind or "error", detail))

    # ------------------------------------------------------------------------------------------- session
    @property
    def session(self):
        if self._session is None:
            status, session = self.http("GET", "/jmap/session")
            if not isinstance(session, dict) or not session.get("apiUrl"):
                raise StalwartError("%s/jmap/session did not return a JMAP session: check url" % self.base)
            # every authenticated session lists the caller's account for management, administrator or not: whether
            # the credential may manage the server shows only when a call is refused (forbidden, see call_many)
            api = session.get("apiUrl") or "/jmap"
            # keep only the path: apiUrl is built from the server's public name, not the URL we used
            self.api_path = "/" + api.split("://", 1)[-1].split("/", 1)[-1].rstrip("/") if "://" in api else api.rstrip("/")
            self._session = session
        return self._session

    def limit(self, name, default):
        return int(self.session.get("capabilities", {}).get(CORE, {}).get(name, default))

    @property
    def max_calls(self):
        return self.limit("maxCallsInRequest", 16)

    @property
    def max_get(self):
        return self.limit("maxObjectsInGet", 500)

    @property
    def max_set(self):
        return self.limit("maxObjectsInSet", 500)

    # ------------------------------------------------------------------------------------------- methods
    def request(self, calls, created_ids=None):
        """POST one JMAP request; returns the list of [name, args, id] responses (errors included).

        A request whose calls failed with a transient server error (serverFail, serverUnavailable: what Stalwart
        answers while its datastore is unreachable) is sent again with backoff, like a 5xx, when nothing in it
        changed anything (see _retryable)."""
        body = {"using": USING, "methodCalls": calls}
        if created_ids is not None:
            body["createdIds"] = created_ids
        self.session  # pylint: disable=pointless-statement
        attempts = max(0, int(self.params.get("retries", 4))) + 1
        delay = 0.5
        for attempt in range(attempts):
            status, resp = self.http("POST", self.api_path, body)
            responses = resp.get("methodResponses", [])
            if attempt + 1 < attempts and self._retryable(responses):
                self.sleep(self._backoff(delay, None))
                delay *= 2
                continue
            return responses, resp.get("createdIds")
        return responses, resp.get("createdIds")  # not reached: the last attempt returns above

    @staticmethod
    def _retryable(responses):
        """True when a call failed with a transient server error and no call of the request changed anything: every
        call that did not fail only read (/get, /query, /changes). A failed method's changes are rolled back (RFC
        8620, 3.6.2), so sending such a request again cannot apply a change twice; a request in which a write
        succeeded is never sent again (its error is reported)."""
        transient = [r for r in responses if r[0] == "error" and (r[1] or {}).get("type") in TRANSIENT_METHOD_ERRORS]
        if not transient:
            return False
        return all(r[0] == "error" or r[0].endswith(READ_METHODS) for r in responses)

    def call_many(self, calls):
        """Run calls (packed maxCallsInRequest per request); raise on the first method-level error."""
        out = []
        for i in range(0, len(calls), self.max_calls):
            responses, dummy = self.request(calls[i:i + self.max_calls])
            for resp in responses:
                if resp[0] == "error":
                    raise method_error(self._name_of(calls, resp[2]), resp[1])
            out.extend(responses)
        return out

    @staticmethod
    def _name_of(calls, call_id):
        return next((c[0] for c in calls if c[2] == call_id), call_id)

    def call(self, name, args):
        return self.call_many([[name, args, "c0"]])[0][1]

    def get(self, obj_type, ids=None, properties=None):
        """Objects by id (chunked to maxObjectsInGet); ids=None reads the singleton or the first page."""
        args = {}
        if properties is not None:
            args["properties"] = properties
        if ids is None:
            return self.call(obj_type + "/get", dict(args, ids=None))["list"]
        calls = [[obj_type + "/get", dict(args, ids=ids[i:i + self.max_get]), "g%d" % i]
                 for i in range(0, len(ids), self.max_get)]
        out = []
        for resp in self.call_many(calls):
            out.extend(resp[1].get("list", []))
        return out

    def query(self, obj_type, flt=None, sort=None):
        """Every matching id, paged by position (limit = maxObjectsInGet)."""
        ids, position = [], 0
        while True:
            args = {"filter": flt or {}, "position": position, "limit": self.max_get, "calculateTotal": True}
            if sort:
                args["sort"] = sort
            page = self.call(obj_type + "/query", args)
            ids.extend(page.get("ids", []))
            position += len(page.get("ids", []))
            if not page.get("ids") or position >= page.get("total", position):
                return ids

    def get_all(self, obj_type, flt=None, properties=None):
        """Every object of a type (or matching flt): query pages + get through result references, many pages per
        HTTP request once the total is known."""
        return self.get_all_many([(obj_type, flt, properties)])[obj_type]

    def get_all_many(self, wanted):
        """get_all for several (type, filter, properties) at once: the first page of every type shares requests,
        then the remaining pages of all of them."""
        page_size = self.max_get
        per_request = max(2, self.max_calls - self.max_calls % 2)
        out = dict((t, []) for t, flt, props in wanted)
        first = []
        for n, (obj_type, flt, props) in enumerate(wanted):
            first.extend(self._query_get_pair(obj_type, flt, props, 0, page_size, "t%dp0" % n))
        pairs = []
        for i in range(0, len(first), per_request):
            responses = self.call_many(first[i:i + per_request])
            for j in range(0, len(responses), 2):
                n = (i + j) // 2
                obj_type, flt, props = wanted[n]
                out[obj_type].extend(responses[j + 1][1].get("list", []))
                for k, position in enumerate(range(page_size, responses[j][1].get("total", 0), page_size)):
                    pairs.extend(self._query_get_pair(obj_type, flt, props, position, page_size, "t%dp%d" % (n, k + 1)))
        for i in range(0, len(pairs), per_request):
            for resp in self.call_many(pairs[i:i + per_request]):
                if resp[0].endswith("/get"):
                    out[resp[0].rsplit("/", 1)[0]].extend(resp[1].get("list", []))
        return out

    @staticmethod
    def _query_get_pair(obj_type, flt, properties, position, limit, tag):
        get_args = {"#ids": {"resultOf": "q" + tag, "name": obj_type + "/query", "path": "/ids"}}
        if properties is not None:
            get_args["properties"] = properties
        return [[obj_type + "/query", {"filter": flt or {}, "position": position, "limit": limit,
                                       "calculateTotal": True, "sort": [{"property": "id", "isAscending": True}]}, "q" + tag],
                [obj_type + "/get", get_args, "g" + tag]]

    def set_calls(self, obj_type, create=None, update=None, destroy=None):
        """/set call argument dicts for one type, each with at most maxObjectsInSet objects."""
        items = [("create", k, v) for k, v in (create or {}).items()] + \
                [("update", k, v) for k, v in (update or {}).items()] + [("destroy", k, None) for k in (destroy or [])]
        out = []
        for i in range(0, len(items), self.max_set):
            args = {}
            for kind, key, value in items[i:i + self.max_set]:
                if kind == "destroy":
                    args.setdefault("destroy", []).append(key)
                else:
                    args.setdefault(kind, {})[key] = value
            out.append([obj_type + "/set", args])
        return out


def set_failures(obj_type, result):
    """Human-readable failures from a /set response."""
    out = []
    for section in ("notCreated", "notUpdated", "notDestroyed"):
        for key, err in (result.get(section) or {}).items():
            out.append(describe_set_error(obj_type, key, err))
    return out
