"""Unit tests of the shared JMAP client and plan engine, with a fake transport (no server)."""
import io
import json

import pytest
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

from ansible_collections.talentmesh.mail.plugins.module_utils import stalwart_dns
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart import (
    StalwartClient, StalwartError, describe_set_error, mask, secrets_in,
)
from ansible_collections.talentmesh.mail.plugins.module_utils.stalwart_plan import (
    Planner, differs, parse_ndjson, validate_ops,
)

SESSION = {"primaryAccounts": {"urn:stalwart:jmap": "b"}, "apiUrl": "https://mail.example.com/jmap/",
           "capabilities": {"urn:ietf:params:jmap:core": {"maxCallsInRequest": 4, "maxObjectsInGet": 2, "maxObjectsInSet": 2}}}


class Resp(object):
    def __init__(self, body, status=200):
        self.status = status
        self._body = json.dumps(body).encode()

    def read(self):
        return self._body


def http_error(code, body=None, headers=None):
    return HTTPError("http://x", code, "err", headers or {}, io.BytesIO(json.dumps(body or {}).encode()))


class FakeServer(object):
    """Answers /jmap/session and a scripted sequence of /jmap responses or exceptions; records every request."""

    def __init__(self, script=None, handler=None):
        self.script = list(script or [])
        self.handler = handler
        self.requests = []

    def __call__(self, url, **kwargs):
        body = json.loads(kwargs["data"]) if kwargs.get("data") else None
        self.requests.append((url, body, kwargs))
        if self.script:
            item = self.script.pop(0)
            if isinstance(item, Exception):
                raise item
            return Resp(item)
        if url.endswith("/jmap/session"):
            return Resp(SESSION)
        return Resp(self.handler(body))


def client(fake, **params):
    base = dict(url="http://stalwart.test", username="admin", password="s3cret-admin", api_key=None,
                validate_certs=True, ca_path=None, timeout=5, retries=3)
    base.update(params)
    sleeps = []
    return StalwartClient(base, opener=fake, sleep=sleeps.append), sleeps


def test_retries_connection_errors_with_backoff_then_succeeds():
    fake = FakeServer([URLError("refused"), URLError("refused"), SESSION])
    cli, sleeps = client(fake)
    assert cli.session["primaryAccounts"]["urn:stalwart:jmap"] == "b"
    assert len(fake.requests) == 3
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] >= 0.5


def test_retries_5xx_and_honours_retry_after_on_429():
    fake = FakeServer([http_error(503), http_error(429, headers={"Retry-After": "7"}), SESSION])
    cli, sleeps = client(fake)
    cli.session  # pylint: disable=pointless-statement
    assert sleeps[1] == 7.0


def test_never_retries_4xx_and_says_what_to_fix():
    fake = FakeServer([http_error(401, {"status": 401})])
    cli, sleeps = client(fake)
    with pytest.raises(StalwartError) as err:
        cli.session  # pylint: disable=pointless-statement
    assert "check username/password or api_key" in err.value.message
    assert "s3cret-admin" not in err.value.message
    assert len(fake.requests) == 1 and sleeps == []


def test_gives_up_after_retries_with_clear_message():
    fake = FakeServer([URLError("refused")] * 4)
    cli, dummy = client(fake)
    with pytest.raises(StalwartError) as err:
        cli.session  # pylint: disable=pointless-statement
    assert "cannot reach Stalwart at http://stalwart.test after 4 attempts" in err.value.message


def test_not_an_administrator_is_detected_from_a_refused_call():
    """Every session lists the caller under urn:stalwart:jmap; a plain user shows up as `forbidden` on a call."""
    refused = {"methodResponses": [["error", {"type": "forbidden", "description": "You do not have permission"}, "c0"]]}
    fake = FakeServer(handler=lambda body: refused)
    cli, dummy = client(fake)
    assert cli.session["primaryAccounts"]["urn:stalwart:jmap"] == "b"
    with pytest.raises(StalwartError) as err:
        cli.call("x:Domain/get", {"ids": None})
    assert "x:Domain/get failed: forbidden" in err.value.message and "not an administrator" in err.value.message


def test_session_that_is_not_jmap():
    fake = FakeServer([{"hello": "world"}])
    cli, dummy = client(fake)
    with pytest.raises(StalwartError) as err:
        cli.session  # pylint: disable=pointless-statement
    assert "did not return a JMAP session" in err.value.message


def test_api_path_keeps_only_the_path_of_api_url():
    fake = FakeServer(handler=lambda body: {"methodResponses": [["x:Domain/query", {"ids": []}, "c0"]]})
    cli, dummy = client(fake)
    cli.call("x:Domain/query", {})
    assert fake.requests[-1][0] == "http://stalwart.test/jmap"


def test_bearer_api_key_header():
    fake = FakeServer(handler=lambda body: {"methodResponses": []})
    cli, dummy = client(fake, username=None, password=None, api_key="API_abc")
    cli.session  # pylint: disable=pointless-statement
    assert fake.requests[0][2]["headers"]["Authorization"] == "Bearer API_abc"
    assert "url_username" not in fake.requests[0][2]


def test_method_error_is_raised_with_method_name():
    fake = FakeServer(handler=lambda body: {"methodResponses": [["error", {"type": "unsupportedFilter", "description": "bad"}, "c0"]]})
    cli, dummy = client(fake)
    with pytest.raises(StalwartError) as err:
        cli.call("x:Domain/query", {"filter": {"x": 1}})
    assert "x:Domain/query failed: unsupportedFilter (bad)" == err.value.message


def test_query_pages_by_limit():
    ids = ["a", "b", "c", "d", "e"]

    def handler(body):
        args = body["methodCalls"][0][1]
        page = ids[args["position"]:args["position"] + args["limit"]]
        return {"methodResponses": [["x:Domain/query", {"ids": page, "total": len(ids), "position": args["position"]}, "c0"]]}

    fake = FakeServer(handler=handler)
    cli, dummy = client(fake)
    assert cli.query("x:Domain") == ids
    assert all(r[1]["methodCalls"][0][1]["limit"] == 2 for r in fake.requests[1:])


def test_set_calls_chunk_to_max_objects():
    cli, dummy = client(FakeServer([SESSION]))
    calls = cli.set_calls("x:Domain", create={"a": {}, "b": {}, "c": {}}, destroy=["x"])
    assert [sorted(c[1]) for c in calls] == [["create"], ["create", "destroy"]]
    assert sum(len(c[1].get("create", {})) for c in calls) == 3


def test_mask_and_secret_collection():
    plan = [{"value": {"u": {"credentials": {"0": {"@type": "Password", "secret": "pw-1"}}, "privateKey": {"secret": "pem"}}}}]
    assert secrets_in(plan) == {"pw-1", "pem"}
    assert "pw-1" not in json.dumps(mask(plan))


def test_describe_set_errors():
    text = describe_set_error("Domain", "d", {"type": "objectIsLinked", "linkedObjects": [{"object": "Account", "id": "c"}]})
    assert "still referenced by Account c" in text
    text = describe_set_error("Account", "u", {"type": "invalidForeignKey", "objectId": {"object": "Domain", "id": "zz"}})
    assert "Domain zz does not exist" in text


@pytest.mark.parametrize("prop,desired,current,expected", [
    ("name", "Example.COM", "example.com", False),
    ("description", "A", "B", True),
    ("aliases", {"A.example.com": True}, {"a.example.com": True}, False),
    ("memberGroupIds", {"b": True}, {"b": True, "c": True}, True),
    ("credentials", {"0": {"@type": "Password", "secret": "x"}}, {"0": {"@type": "Password", "secret": "****"}}, False),
    ("dkimManagement", {"@type": "Automatic"}, {"@type": "Automatic", "rotateAfter": 1}, False),
    ("dkimManagement", {"@type": "Manual"}, {"@type": "Automatic"}, True),
    ("quotas", {"maxDiskQuota": 5}, {"maxDiskQuota": 5, "maxEmails": 1}, False),
    ("aliases", {}, {"x": True}, True),
])
def test_differs(prop, desired, current, expected):
    assert differs(prop, desired, current) is expected


def test_ndjson_and_validation():
    ops = parse_ndjson('{"@type":"upsert","object":"Domain","value":{"d":{"name":"a.example.com"}}}\n\n'
                       '{"@type":"destroy","object":"Domain","value":{"name":"old.example.com"}}\n')
    assert [o["@type"] for o in ops] == ["upsert", "destroy"]
    with pytest.raises(StalwartError):
        parse_ndjson("{not json}")
    with pytest.raises(StalwartError) as err:
        validate_ops([{"@type": "merge", "object": "Domain"}])
    assert "must be one of" in err.value.message


def test_planner_resolves_references_and_packs_writes():
    store = {"x:Domain": [{"id": "b", "name": "a.example.com"}], "x:Account": []}
    sent = []

    def handler(body):
        out = []
        for name, args, cid in body["methodCalls"]:
            obj_type, op = name.rsplit("/", 1)
            if op == "query":
                out.append([name, {"ids": [o["id"] for o in store[obj_type]], "total": len(store[obj_type])}, cid])
            elif op == "get":
                out.append([name, {"list": store[obj_type]}, cid])
            else:
                sent.append((name, args))
                out.append([name, {"created": dict((k, {"id": "n" + k}) for k in args.get("create", {}))}, cid])
        return {"methodResponses": out}

    cli, dummy = client(FakeServer(handler=handler))
    planner = Planner(cli)
    result = planner.run([
        {"@type": "upsert", "object": "Domain", "value": {"dom": {"name": "A.example.com"}}},
        {"@type": "upsert", "object": "Account", "value": {
            "u%d" % i: {"@type": "User", "name": "u%d" % i, "domainId": "#dom"} for i in range(3)}},
    ])
    assert result["summary"]["Domain"] == {"created": 0, "updated": 0, "destroyed": 0, "unchanged": 1}
    assert result["summary"]["Account"]["created"] == 3
    # the matched domain's client id was replaced with its real id; 3 creates split into calls of maxObjectsInSet=2
    assert [len(args["create"]) for name, args in sent] == [2, 1]
    assert all(body["domainId"] == "b" for name, args in sent for body in args["create"].values())


def test_zone_parsing():
    zone = ('example.com. 3600 IN MX 10 mail.example.com.\n'
            'example.com. 3600 IN TXT "v=spf1 mx -all"\n'
            's1._domainkey.example.com. 3600 IN TXT "v=DKIM1; k=rsa; p=AAA" "BBB"\n'
            '_imaps._tcp.example.com. 3600 IN SRV 0 1 993 mail.example.com.\n')
    records = stalwart_dns.parse_zone(zone)
    assert records[0] == {"name": "example.com.", "type": "MX", "ttl": 3600, "priority": 10, "value": "mail.example.com."}
    assert records[1]["value"] == "v=spf1 mx -all"
    assert records[2]["value"] == "v=DKIM1; k=rsa; p=AAABBB"
    assert records[3]["port"] == 993 and records[3]["priority"] == 0


def test_split_email():
    assert stalwart_dns.split_email("Alice@Example.COM") == ("alice", "example.com")
    assert stalwart_dns.split_email("not-an-address") == (None, None)


def _jmap(*responses):
    return {"methodResponses": list(responses), "sessionState": "s"}


def test_transient_method_error_of_a_read_is_retried_with_backoff():
    """Stalwart answers serverFail while its datastore is down: a request that only reads is sent again."""
    fail = _jmap(["error", {"type": "serverFail", "description": "connection refused"}, "c0"])
    ok = _jmap(["x:Account/query", {"ids": ["a"], "total": 1, "position": 0}, "c0"])
    fake = FakeServer([SESSION, fail, _jmap(["error", {"type": "serverUnavailable"}, "c0"]), ok])
    cli, sleeps = client(fake)
    assert cli.query("x:Account") == ["a"]
    assert len(fake.requests) == 4 and len(sleeps) == 2 and sleeps[1] > sleeps[0] >= 0.5


def test_request_in_which_a_write_succeeded_is_not_sent_again():
    """A serverFail after a /set that was applied: resending would apply the change twice, so the error is reported."""
    mixed = _jmap(["x:Domain/set", {"created": {"d": {"id": "1"}}}, "c0"],
                  ["error", {"type": "serverFail", "description": "store error"}, "c1"])
    fake = FakeServer([SESSION, mixed])
    cli, sleeps = client(fake)
    with pytest.raises(StalwartError) as err:
        cli.call_many([["x:Domain/set", {"create": {"d": {"name": "a.test"}}}, "c0"], ["x:Account/get", {"ids": None}, "c1"]])
    assert "x:Account/get failed: serverFail" in err.value.message
    assert len(fake.requests) == 2 and sleeps == []


def test_failed_write_alone_is_retried_and_gives_up_after_retries():
    """A /set that failed with serverFail was rolled back: it is sent again, and after the retries the error says so."""
    fail = _jmap(["error", {"type": "serverFail", "description": "store error"}, "c0"])
    fake = FakeServer([SESSION] + [fail] * 4)
    cli, sleeps = client(fake)
    with pytest.raises(StalwartError) as err:
        cli.call_many([["x:Domain/set", {"create": {"d": {"name": "a.test"}}}, "c0"]])
    assert "x:Domain/set failed: serverFail (store error)" in err.value.message
    assert len(fake.requests) == 5 and len(sleeps) == 3


def test_other_method_errors_are_not_retried():
    fake = FakeServer([SESSION, _jmap(["error", {"type": "invalidArguments", "description": "bad"}, "c0"])])
    cli, sleeps = client(fake)
    with pytest.raises(StalwartError):
        cli.call_many([["x:Account/get", {"ids": None}, "c0"]])
    assert len(fake.requests) == 2 and sleeps == []
