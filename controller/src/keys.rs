//! The store's key scheme, in one place. Everything netmaster keeps lives under `/weft/`:
//!
//! | key | value |
//! |---|---|
//! | `/weft/intent/<kind>/<key>` | an intent object (JSON), `kind` as `Keyed::KIND` spells it |
//! | `/weft/meta/intent-seq` | empty; its mod revision orders intent changes (every change bumps it) |
//! | `/weft/meta/healthz` | never written; read by `/healthz` to see the store answer |
//! | `/weft/nodes/<name>` | a `Node`, attached to the node's lease |
//! | `/weft/endpoints/<id>` | an `Endpoint` |
//! | `/weft/alloc/<pool>/...` | the allocators' keys (see [`crate::alloc`]) |

use weft_api::Keyed;

/// Every key netmaster keeps.
pub const ROOT: &[u8] = b"/weft/";
/// Intent objects.
pub const INTENT: &str = "/weft/intent/";
/// The intent's sequence key.
pub const SEQ: &[u8] = b"/weft/meta/intent-seq";
/// Read (never written) to check that the store answers.
pub const HEALTHZ: &[u8] = b"/weft/meta/healthz";
/// Node records.
pub const NODES: &str = "/weft/nodes/";
/// Endpoint records.
pub const ENDPOINTS: &str = "/weft/endpoints/";
/// The allocators' pools.
pub const ALLOC: &str = "/weft/alloc/";

/// The key of the intent object of kind `kind` (as `Keyed::KIND` spells it) and key `key`.
pub fn intent(kind: &str, key: &str) -> Vec<u8> {
    format!("{INTENT}{kind}/{key}").into_bytes()
}

/// The key of an intent object.
pub fn intent_of<T: Keyed>(object: &T) -> Vec<u8> {
    intent(T::KIND, &object.key())
}

/// The key of a node's record.
pub fn node(name: &str) -> Vec<u8> {
    format!("{NODES}{name}").into_bytes()
}

/// The key of an endpoint's record.
pub fn endpoint(id: &str) -> Vec<u8> {
    format!("{ENDPOINTS}{id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_spelled_as_stored() {
        let t = weft_api::Tenant {
            tenant_name: "blue".into(),
            default_network: None,
        };
        assert_eq!(intent_of(&t), b"/weft/intent/tenant/blue");
        assert_eq!(node("h1"), b"/weft/nodes/h1");
        assert_eq!(endpoint("c-eth0"), b"/weft/endpoints/c-eth0");
        for k in [INTENT, NODES, ENDPOINTS, ALLOC] {
            assert!(k.as_bytes().starts_with(ROOT));
        }
    }
}
