//! The OpenAPI 3 document of the REST API, served at `/api/v1/openapi.json`. Built from the same
//! list of kinds the router uses, so it names every route there is.

use serde_json::{json, Map, Value};

use crate::rest::KINDS;

fn op(summary: &str, body: bool, ok: &str) -> Value {
    let mut o = json!({
        "summary": summary,
        "responses": {
            "200": { "description": ok, "content": { "application/json": { "schema": { "type": "object" } } } },
            "400": { "$ref": "#/components/responses/Error" },
            "404": { "$ref": "#/components/responses/Error" },
            "409": { "$ref": "#/components/responses/Error" },
            "503": { "$ref": "#/components/responses/Error" }
        }
    });
    if body {
        o["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "type": "object" } } } });
    }
    o
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for (path, kind) in KINDS {
        paths.insert(
            format!("/api/v1/{path}/"),
            json!({ "get": op(&format!("list {kind} objects"), false, "the objects") }),
        );
        let key = json!([{ "name": "key", "in": "path", "required": true, "schema": { "type": "string" },
                            "description": "the object's key: tenant:name (rules: tenant:policy:ruleId; tenants: name)" }]);
        paths.insert(
            format!("/api/v1/{path}/{{key}}/"),
            json!({
                "parameters": key,
                "get": op(&format!("get one {kind}"), false, "the object"),
                "post": op(&format!("create or update a {kind}"), true, "the stored object"),
                "put": op(&format!("create or update a {kind}"), true, "the stored object"),
                "delete": op(&format!("delete a {kind}"), false, "deleted")
            }),
        );
    }
    paths.insert(
        "/api/v1/globals/".into(),
        json!({ "get": op("the global settings", false, "one global object") }),
    );
    paths.insert(
        "/api/v1/globals/{name}/".into(),
        json!({ "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string", "enum": ["global"] } }],
                "get": op("the global settings", false, "the global object"),
                "post": op("replace the global settings", true, "the stored object"),
                "put": op("replace the global settings", true, "the stored object") }),
    );
    let mut intent = op(
        "apply a Weft spec or a Contiv intent file, atomically",
        true,
        "the changes made",
    );
    intent["parameters"] = json!([{ "name": "prune", "in": "query", "schema": { "type": "boolean" },
                                     "description": "delete what the spec no longer names" }]);
    paths.insert("/api/v1/intent".into(), json!({ "post": intent }));
    for (p, what) in [
        (
            "/api/v1/inspect/state/",
            "the whole intent and its revision",
        ),
        ("/api/v1/inspect/nodes/", "registered nodes"),
        ("/api/v1/inspect/endpoints/", "endpoints"),
        ("/api/v1/openapi.json", "this document"),
    ] {
        paths.insert(p.into(), json!({ "get": op(what, false, what) }));
    }
    let mut cni = op(
        "a pod's networks from its podAttachment, in dockin's format (code, message, data[]), for weft-cni",
        false,
        "code 0 and the pod's networks, or code 1 and why",
    );
    cni["parameters"] = json!([
        { "name": "podNamespace", "in": "query", "required": true, "schema": { "type": "string" } },
        { "name": "podName", "in": "query", "required": true, "schema": { "type": "string" } }
    ]);
    paths.insert("/api/v1/cni/attachments".into(), json!({ "get": cni }));
    paths.insert("/healthz".into(), json!({ "get": { "summary": "200 when the store answers, else 503", "responses": { "200": { "description": "ok" }, "503": { "description": "store unreachable" } } } }));
    paths.insert("/metrics".into(), json!({ "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "OpenMetrics text" } } } }));
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Weft netmaster", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Contiv-compatible paths under /api/v1/; errors are {\"error\": \"...\"}." },
        "paths": paths,
        "components": { "responses": { "Error": { "description": "what was wrong, where, and what to do",
            "content": { "application/json": { "schema": { "type": "object", "properties": { "error": { "type": "string" } } } } } } } }
    })
}
