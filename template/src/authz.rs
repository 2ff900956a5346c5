//! Roles and scopes: what a principal may do.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A role granted to an account. Every account has `user`; `admin` is
/// granted explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    /// Unknown names yield `None`: a role this build does not know grants
    /// nothing.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "user" => Some(Self::User),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The OAuth scopes this service's own tokens carry for the role.
    #[must_use]
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Self::User => &["notes:read", "notes:write"],
            Self::Admin => &["notes:read", "notes:write", "users:admin"],
        }
    }
}

/// The union of the scopes of `roles`, sorted and without duplicates.
#[must_use]
pub fn scopes_for(roles: &[Role]) -> Vec<String> {
    let mut scopes: Vec<String> =
        roles.iter().flat_map(|role| role.scopes().iter().map(|&scope| scope.to_owned())).collect();
    scopes.sort();
    scopes.dedup();
    scopes
}
