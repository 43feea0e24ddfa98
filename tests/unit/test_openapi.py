"""The REST API's OpenAPI 3.1 document (fastds/api/openapi.json, served at /api/v1/openapi.json)
is valid OpenAPI and describes exactly the routes the application has, method by method; the
shapes it gives a destination are the ones the API answers with."""

import json

import jsonschema
from openapi_spec_validator import validate

from fastds.api.app import OPENAPI, Api
from fastds.api.replies import destination_json
from fastds.api.snapshot import LiveDestination, Snapshot
from fastds.dispatch.sets import build_sets
from tests.harness import openapi_schema

DOCUMENT = json.loads(OPENAPI.read_text())
NOT_REST = {("GET", "/"), ("GET", "/static/{name}")}  # the panel's page and its chart library


def test_the_document_is_valid_openapi():
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")


def application_routes() -> set[tuple[str, str]]:
    app = Api(lambda: Snapshot(0, {}, []), None, None, "", 16).application()
    found = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):  # aiohttp's HEAD beside each GET; /mi's 405 for other methods
            continue
        found.add((route.method, route.resource.canonical.rstrip("/") or "/"))
    return found - NOT_REST


def test_every_route_is_documented_and_every_documented_one_exists():
    documented = {(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item
                  if method in ("get", "put", "post", "delete", "patch")}
    assert application_routes() == documented


def test_a_stored_and_a_live_destination_have_the_shape_the_document_gives():
    row = {"id": 1, "setid": 1, "destination": "sip:10.0.0.1:5060", "socket": None, "state": 2, "probe_mode": 0,
           "weight": "3", "priority": 0, "attrs": "", "description": "gw"}
    shown = destination_json(row)
    jsonschema.validate(shown, openapi_schema("Destination"))
    sets, _ = build_sets([row])
    live = LiveDestination(sets[1].destinations[0], sets[1].destinations[0].state, 4, 1, 0, None).as_json()
    jsonschema.validate(live, openapi_schema("LiveDestination"))
    assert (shown["state"], shown["weight"]) == (live["state"], live["weight"]) == ("probing", 3)  # one shape

