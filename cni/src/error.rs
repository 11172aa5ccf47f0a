//! CNI error objects (spec 1.1.0, "Error"): a code, a message a person can act on, details.

use serde_json::json;

/// Well-known error codes of the CNI specification, and Weft's own (100 and up).
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in network configuration.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables (CNI_COMMAND, CNI_CONTAINERID, ...).
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content.
    pub const DECODE_FAILURE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later (netplugin not reachable, netmaster away, ...).
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADD now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// netplugin refused the request for a reason of its own.
    pub const NETPLUGIN_REFUSED: u32 = 100;
    /// CHECK found the container's interface not as attached.
    pub const CHECK_FAILED: u32 = 101;
    /// The attachment webhook failed or answered something unusable.
    pub const WEBHOOK_FAILED: u32 = 102;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    pub fn config(details: impl Into<String>) -> CniError {
        CniError::new(code::INVALID_CONFIG, "invalid network config", details)
    }

    pub fn env(details: impl Into<String>) -> CniError {
        CniError::new(
            code::INVALID_ENV,
            "invalid CNI environment variables",
            details,
        )
    }

    /// The error object as the runtime reads it on stdout, in the config's version.
    pub fn to_json(&self, cni_version: &str) -> String {
        let v = json!({
            "cniVersion": cni_version,
            "code": self.code,
            "msg": self.msg,
            "details": self.details,
        });
        serde_json::to_string(&v).expect("an error object serialises")
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code {}: {}: {}", self.code, self.msg, self.details)
    }
}

impl std::error::Error for CniError {}

/// How netplugin's gRPC status becomes a CNI error.
pub fn from_status(what: &str, s: &tonic::Status) -> CniError {
    use tonic::Code;
    let detail = format!("{what}: netplugin said: {}", s.message());
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted => {
            CniError::new(code::TRY_AGAIN_LATER, "try again later", detail)
        }
        Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition | Code::OutOfRange => {
            CniError::new(
                code::INVALID_CONFIG,
                "invalid network config (netplugin refused it)",
                detail,
            )
        }
        Code::AlreadyExists => {
            CniError::new(code::NETPLUGIN_REFUSED, "address or name in use", detail)
        }
        _ => CniError::new(code::NETPLUGIN_REFUSED, "netplugin failed", detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_object_has_spec_fields() {
        let e = CniError::config("tenant is missing");
        let v: serde_json::Value = serde_json::from_str(&e.to_json("1.0.0")).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["code"], 7);
        assert_eq!(v["msg"], "invalid network config");
        assert_eq!(v["details"], "tenant is missing");
    }

    #[test]
    fn unavailable_is_try_again_later() {
        let e = from_status("attach", &tonic::Status::unavailable("netmaster away"));
        assert_eq!(e.code, 11);
        assert!(e.details.contains("netmaster away"));
        let e = from_status("attach", &tonic::Status::invalid_argument("no network x"));
        assert_eq!(e.code, 7);
        let e = from_status("attach", &tonic::Status::internal("boom"));
        assert_eq!(e.code, 100);
    }
}
