"""Our own JSON API against its own OpenAPI document (/api/v1/openapi.json).

Every request and response below is validated with openapi-core, so the published
description and the behaviour cannot drift apart.
"""

from __future__ import annotations

import json

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate

from migrator.max.models import MaxChat

HOST = "http://localhost"


@pytest.fixture
def api(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)  # a valid OpenAPI 3 document
    doc["servers"] = [{"url": HOST + "/api/v1"}]
    spec = OpenAPI.from_dict(doc)

    def call(method, path, headers, body=None, query=None, valid_request=True):
        data = json.dumps(body).encode() if body is not None else None
        resp = client.open("/api/v1" + path, method=method, headers=headers,
                           query_string=query, data=data, content_type="application/json")
        request = MockRequest(HOST, method.lower(), "/api/v1" + path, args=query or {},
                              headers=headers, data=data)
        if valid_request:  # a deliberately malformed request is not checked, its answer is
            spec.validate_request(request)
        response = MockResponse(resp.get_data(), resp.status_code,
                                content_type=resp.content_type.split(";")[0])
        spec.validate_response(request, response)
        return resp

    return call


def test_openapi_lists_the_interfaces_of_the_design(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path, method in [("/chats", "get"), ("/groups/{key}/link", "post"), ("/waves", "post"),
                         ("/groups/{key}", "get"), ("/groups/{key}/steps/{kind}/confirm", "post"),
                         ("/progress", "get"), ("/audit", "get")]:
        assert method in paths[path], path


def test_api_answers_match_the_description(api, ctx, make_org, make_employee, make_group,
                                           make_user, api_token):
    org = make_org(code="EDU", name="Министерство образования")
    other = make_org(code="ZKH")
    emp = make_employee(org)
    group = make_group(org, key="edu-chat", members=[emp])
    make_group(other, key="zkh-chat")
    ctx.add(MaxChat(chat_id=-700, title="Образование", status="discovered", org_id=org.id,
                    bot_is_admin=True,
                    bot_permissions="read_all_messages,add_remove_members,pin_message"))
    ctx.commit()
    coord = make_user("coordinator", orgs=[org])
    headers = api_token(coord)

    assert api("GET", "/me", headers).get_json()["role"] == "coordinator"
    chats = api("GET", "/chats", headers, query={"status": "discovered"}).get_json()
    assert any(c["chat_id"] == -700 for c in chats["chats"])

    assert api("POST", "/groups/edu-chat/link", headers, {"chat_id": -700}).status_code == 200
    # Another organisation's group: not found, never its data.
    assert api("POST", "/groups/zkh-chat/link", headers, {"chat_id": -700}).status_code == 404
    detail = api("GET", "/groups/edu-chat", headers).get_json()
    assert detail["key"] == group.key

    bad = api("POST", "/waves", headers, {"name": "Волна 1", "group_keys": ["edu-chat"],
                                           "invite_at": "not a date"}, valid_request=False)
    assert bad.status_code == 400
    wave = api("POST", "/waves", headers, {
        "name": "Волна 1", "group_keys": ["edu-chat"],
        "invite_at": "2030-03-02T09:00:00+05:00", "add_members_at": "2030-03-09T09:00:00+05:00",
        "announce_at": "2030-03-12T09:00:00+05:00", "cutover_at": "2030-03-23T09:00:00+05:00",
        "deadline": "2030-03-30T18:00:00+05:00"})
    assert wave.status_code == 201, wave.get_data(as_text=True)
    confirm = api("POST", "/groups/edu-chat/steps/announce/confirm", headers, {"note": "готово"})
    assert confirm.status_code == 409  # not waiting for a confirmation yet

    assert api("GET", "/progress", headers, query={"org": "EDU"}).status_code == 200
    assert api("GET", "/progress", headers, query={"org": "ZKH"}).status_code == 404
    events = api("GET", "/audit", headers, query={"since": "0"}).get_json()
    assert any(e["action"] == "group.link" for e in events["events"])


def test_api_refuses_missing_or_bad_tokens(api):
    assert api("GET", "/chats", {"Authorization": "Bearer nope"},
               valid_request=False).status_code == 401
    assert api("GET", "/chats", {}, valid_request=False).status_code == 401
