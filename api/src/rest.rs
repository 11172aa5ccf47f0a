//! Where netmaster's REST API serves each object kind: a kind's objects are listed at
//! `/api/v1/<PATH>/` and each one lives at `/api/v1/<PATH>/<Keyed::key()>/`. netmaster's router
//! and netctl's client both take the paths from here.

use crate::model::*;

/// An object kind served under `/api/v1/<PATH>/`.
pub trait RestPath: Keyed {
    /// The collection's path segment (Contiv's names: `policys`, `endpointGroups`, ...).
    const PATH: &'static str;

    /// `/api/v1/<PATH>/`.
    fn collection() -> String {
        format!("/api/v1/{}/", Self::PATH)
    }

    /// `/api/v1/<PATH>/<key>/`.
    fn path(key: &str) -> String {
        format!("/api/v1/{}/{key}/", Self::PATH)
    }
}

macro_rules! rest_path {
    ($t:ty, $path:literal) => {
        impl RestPath for $t {
            const PATH: &'static str = $path;
        }
    };
}

rest_path!(Global, "globals");
rest_path!(Tenant, "tenants");
rest_path!(Network, "networks");
rest_path!(EndpointGroup, "endpointGroups");
rest_path!(NetProfile, "netprofiles");
rest_path!(Policy, "policys");
rest_path!(Rule, "rules");
rest_path!(AppProfile, "appProfiles");
rest_path!(PodAttachment, "podAttachments");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_contivs() {
        assert_eq!(Policy::collection(), "/api/v1/policys/");
        assert_eq!(
            EndpointGroup::path("red:web"),
            "/api/v1/endpointGroups/red:web/"
        );
    }
}
