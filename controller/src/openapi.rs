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

/// Points an operation's request body (if any) and its 200 answer at a schema of
/// `components/schemas`, or at a list of it.
fn with_schema(mut o: Value, name: &str, list: bool) -> Value {
    let one = json!({ "$ref": format!("#/components/schemas/{name}") });
    let schema = if list {
        json!({ "type": "array", "items": one })
    } else {
        one.clone()
    };
    o["responses"]["200"]["content"]["application/json"]["schema"] = schema;
    if o.get("requestBody").is_some() {
        o["requestBody"]["content"]["application/json"]["schema"] = one;
    }
    o
}

/// The schemas of the objects whose fields Weft adds to Contiv's: networks and the global
/// settings.
fn schemas() -> Value {
    let ipv4 = |d: &str| json!({ "type": "string", "format": "ipv4", "description": d });
    json!({
        "Network": {
            "type": "object",
            "additionalProperties": false,
            "required": ["tenantName", "networkName", "subnet"],
            "properties": {
                "tenantName": { "type": "string", "description": "the tenant; it must exist" },
                "networkName": { "type": "string", "description": "letters, digits, '-', '_', '.'; 1 to 64" },
                "encap": { "type": "string", "enum": ["vlan", "vxlan"], "default": "vlan",
                           "description": "how packets travel between hosts" },
                "pktTag": { "oneOf": [{ "type": "integer", "minimum": 0 }, { "type": "string", "enum": ["allocate"] }],
                            "description": "VLAN id or VNI; 0 or \"allocate\": netmaster picks one from the global range" },
                "subnet": { "type": "string", "description": "IPv4 CIDR, optionally with the range to allocate from: 10.1.0.0/24 or 10.1.0.10-10.1.0.99/24" },
                "gateway": ipv4("the containers' gateway, within the subnet"),
                "ipv6Subnet": { "type": "string", "description": "IPv6 CIDR" },
                "ipv6Gateway": { "type": "string", "format": "ipv6", "description": "within ipv6Subnet" },
                "nwType": { "type": "string", "enum": ["data", "infra"], "default": "data" },
                "cfgdTag": { "type": "string", "description": "Contiv's tag for external integrations; kept, not used" },
                "hostAccess": { "type": "boolean", "default": false,
                    "description": "each host gets a gateway port from this network into its own IP stack: the network's containers reach every host's addresses and every host reaches them, without NAT, and their traffic to the global serviceCidrs goes through the host's stack (kube-proxy's rules). Every host routes the subnet, so it may not overlap the subnet of any other hostAccess network, in any tenant, nor a service CIDR" },
                "external": { "type": "boolean", "default": false,
                    "description": "traffic from the network's containers to addresses outside the cluster leaves through the host, its source translated to the host's address; subnets of external networks may overlap across tenants like any other" }
            }
        },
        "Global": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "name": { "type": "string", "enum": ["global"] },
                "vlans": { "type": "string", "default": "1-4094", "description": "VLAN ids networks may use: 1-4094, 100-200,300" },
                "vxlans": { "type": "string", "default": "1-10000", "description": "VNIs networks may use" },
                "fwdMode": { "type": "string", "enum": ["bridge", "routing"], "default": "bridge" },
                "arpMode": { "type": "string", "enum": ["proxy", "flood"], "default": "proxy" },
                "pvtSubnet": { "type": "string", "default": "172.19.0.0/16" },
                "networkInfraType": { "type": "string" },
                "serviceCidrs": { "type": "array", "items": { "type": "string", "description": "IPv4 CIDR, like 10.96.0.0/12" }, "default": [],
                    "description": "the cluster's Kubernetes Service ranges: traffic from hostAccess networks to these goes through the host's stack, where kube-proxy's rules translate it. None may overlap the subnet of a hostAccess network; host bits must be zero" }
            }
        }
    })
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for (path, kind) in KINDS {
        // Kinds with a schema below get it on their bodies and answers.
        let schema = (kind == "network").then_some("Network");
        let typed = |o: Value, list: bool| match schema {
            Some(name) => with_schema(o, name, list),
            None => o,
        };
        paths.insert(
            format!("/api/v1/{path}/"),
            json!({ "get": typed(op(&format!("list {kind} objects"), false, "the objects"), true) }),
        );
        let key = json!([{ "name": "key", "in": "path", "required": true, "schema": { "type": "string" },
                            "description": "the object's key: tenant:name (rules: tenant:policy:ruleId; tenants: name)" }]);
        paths.insert(
            format!("/api/v1/{path}/{{key}}/"),
            json!({
                "parameters": key,
                "get": typed(op(&format!("get one {kind}"), false, "the object"), false),
                "post": typed(op(&format!("create or update a {kind}"), true, "the stored object"), false),
                "put": typed(op(&format!("create or update a {kind}"), true, "the stored object"), false),
                "delete": op(&format!("delete a {kind}"), false, "deleted")
            }),
        );
    }
    paths.insert(
        "/api/v1/globals/".into(),
        json!({ "get": with_schema(op("the global settings", false, "one global object"), "Global", true) }),
    );
    paths.insert(
        "/api/v1/globals/{name}/".into(),
        json!({ "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string", "enum": ["global"] } }],
                "get": with_schema(op("the global settings", false, "the global object"), "Global", false),
                "post": with_schema(op("replace the global settings", true, "the stored object"), "Global", false),
                "put": with_schema(op("replace the global settings", true, "the stored object"), "Global", false) }),
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
    // What netmaster shows of the inside (docs/observability.md; shapes in weft_api::inspect).
    for (p, method, body, what) in [
        ("/api/v1/hosts/{host}/flows", "get", false, "a host's flows, from its netplugin (query: endpoint, network, policy, table); 503/502 when its netplugin cannot be asked"),
        ("/api/v1/trace", "post", true, "a TraceRequest traced host to host: TraceReport (hops, verdict, decidedBy)"),
        ("/api/v1/verdicts", "get", false, "every host's logged policy verdicts, oldest first (query: since)"),
        ("/api/v1/inspect/{kind}/{key}/", "get", false, "Contiv's inspect ({Config, Oper}) of a tenant, network, endpointGroup, policy or netprofile"),
        ("/api/v1/tenants/{key}/matrix", "get", false, "the tenant's policy matrix: what each group may open to each"),
    ] {
        paths.insert(p.into(), json!({ method: op(what, body, what) }));
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
        "components": { "schemas": schemas(), "responses": { "Error": { "description": "what was wrong, where, and what to do",
            "content": { "application/json": { "schema": { "type": "object", "properties": { "error": { "type": "string" } } } } } } } }
    })
}
