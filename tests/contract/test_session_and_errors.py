"""Transport, session and request-level errors (contract sections 1 and 6.1)."""
import base64
import json

from tests.conftest import emulator_only

USING = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]


def test_health_endpoints(server):
    assert server.raw("GET", "/healthz/live", auth=False)[0] == 200
    assert server.raw("GET", "/healthz/ready", auth=False)[0] == 200


def test_session_without_auth_has_no_accounts(server):
    status, dummy, session = server.raw("GET", "/jmap/session", auth=False)
    assert status == 200
    assert session["accounts"] == {}
    assert session["capabilities"]["urn:ietf:params:jmap:core"]["maxCallsInRequest"] >= 1


def test_session_with_auth_has_management_account(server):
    status, dummy, session = server.raw("GET", "/jmap/session")
    assert status == 200
    account = session["primaryAccounts"]["urn:stalwart:jmap"]
    assert "urn:stalwart:jmap" in session["accounts"][account]["accountCapabilities"]
    assert "urn:stalwart:jmap" not in session["capabilities"]
    assert session["apiUrl"].startswith("https://") and session["apiUrl"].rstrip("/").endswith("/jmap")


def test_well_known_redirects_to_session(server):
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(server.url + "/.well-known/jmap")
        raise AssertionError("expected a redirect")
    except urllib.error.HTTPError as err:
        assert err.code in (301, 302, 307, 308)
        assert err.headers["Location"].endswith("/jmap/session")


def test_wrong_password_is_401_with_both_challenges(server):
    status, headers, body = server.raw("POST", "/jmap", {"using": USING, "methodCalls": []},
                                       headers={"Authorization": server.auth_header("admin", "wrong-password")})
    assert status == 401
    challenges = headers.get_all("WWW-Authenticate")
    assert any(c.startswith("Bearer") for c in challenges) and any(c.startswith("Basic") for c in challenges)
    assert headers["Content-Type"].startswith("application/problem+json")
    assert body["status"] == 401


def test_missing_auth_is_401(server):
    assert server.raw("POST", "/jmap", {"using": USING, "methodCalls": []}, auth=False)[0] == 401


def test_not_json_only_for_a_wrong_content_type(server):
    status, dummy, body = server.raw("POST", "/jmap", b"{}", headers={"Content-Type": "text/plain"})
    assert status == 400 and body["type"] == "urn:ietf:params:jmap:error:notJSON"
    status, dummy, body = server.raw("POST", "/jmap", b"{not json")
    assert status == 400 and body["type"] == "urn:ietf:params:jmap:error:notRequest"


def test_unknown_capability_is_not_request(server):
    status, dummy, body = server.raw("POST", "/jmap", {"using": USING + ["urn:example:nope"], "methodCalls": []})
    assert status == 400 and body["type"] == "urn:ietf:params:jmap:error:notRequest"


def test_not_request(server):
    status, dummy, body = server.raw("POST", "/jmap", {"methodCalls": []})
    assert status == 400 and body["type"] == "urn:ietf:params:jmap:error:notRequest"


def test_too_many_calls_is_limit(server):
    max_calls = server.limits()[0]
    calls = [["x:Domain/query", {}, str(i)] for i in range(max_calls + 1)]
    status, dummy, body = server.raw("POST", "/jmap", {"using": USING, "methodCalls": calls})
    assert status == 400 and body["type"] == "urn:ietf:params:jmap:error:limit"
    assert body["limit"] == "maxCallsInRequest"


def test_unknown_methods(server):
    resp = server.jmap([["x:Domain/changes", {"sinceState": "n"}, "a"], ["x:NoSuchThing/get", {}, "b"],
                        ["x:SystemSettings/query", {}, "c"], ["x:Action/query", {}, "d"]])["methodResponses"]
    assert [r[0] for r in resp] == ["error"] * 4
    assert [r[1]["type"] for r in resp] == ["unknownMethod", "unknownMethod", "unknownMethod", "invalidArguments"]


@emulator_only
def test_schema_endpoint_serves_the_shipped_schema(server):
    import gzip
    import urllib.request
    req = urllib.request.Request(server.url + "/api/schema", headers={"Authorization": server.auth_header()})
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        schema = json.loads(gzip.decompress(resp.read()))
    assert "x:Domain" in schema["objects"]


@emulator_only
def test_stats_count_requests(server):
    server.reset_stats()
    server.jmap([["x:Domain/query", {}, "a"]])
    stats = server.stats()
    assert stats["methods"] == {"x:Domain/query": 1}
    assert stats["http"]["/jmap"] == 1


def test_basic_username_is_case_insensitive(server):
    status = server.raw("GET", "/jmap/session", headers={
        "Authorization": "Basic " + base64.b64encode(("%s:%s" % (server.user.upper(), server.password)).encode()).decode()})[0]
    assert status == 200
