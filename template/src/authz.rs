//! Authorization: what a principal may do.
//!
//! Two levels, from coarse to fine:
//!
//! 1. `ROUTES`, the policy of every route, in one table and nowhere else:
//!    who may call it and which rate limit it counts against.
//!    `http::policy` applies it to every request before any handler runs,
//!    and refuses a route missing from the table (deny by default); the
//!    OpenAPI document derives each operation's `security` and 429 from
//!    it; a test fails when a served route has no row. Handlers restate
//!    nothing: they take the `Principal` the policy already verified.
//! 2. Object rules (`can_read_owned`) that services apply to each object.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{Principal, Subject},
    rate_limit::Class,
};

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

    /// The OAuth scopes the role allows: what this service's own tokens
    /// carry, and the most any token of the role may use.
    #[must_use]
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Self::User => &[NOTES_READ, NOTES_WRITE],
            Self::Admin => &[USERS_ADMIN, NOTES_READ, NOTES_WRITE],
        }
    }
}

pub const NOTES_READ: &str = "notes:read";
pub const NOTES_WRITE: &str = "notes:write";
pub const USERS_ADMIN: &str = "users:admin";

/// The union of the scopes of `roles`, sorted and without duplicates.
#[must_use]
pub fn scopes_for(roles: &[Role]) -> Vec<String> {
    let mut scopes: Vec<String> =
        roles.iter().flat_map(|role| role.scopes().iter().map(|&scope| scope.to_owned())).collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token. Keep this list short.
    Public,
    /// Any valid access token.
    Authenticated,
    /// A token whose principal has this role.
    Role(Role),
    /// A token that carries this scope.
    Scope(&'static str),
}

impl Access {
    /// Whether `principal` (authenticated already) may call a route of
    /// this access.
    #[must_use]
    pub fn allows(self, principal: &Principal) -> bool {
        match self {
            Self::Public | Self::Authenticated => true,
            Self::Role(role) => principal.roles.contains(&role),
            Self::Scope(scope) => principal.scopes.iter().any(|granted| granted == scope),
        }
    }
}

/// The policy of one route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutePolicy {
    pub method: &'static str,
    /// As registered with the router: `/api/v1/notes/{id}`.
    pub path: &'static str,
    pub access: Access,
    /// The rate limit the route counts against (`rate_limit::Class`).
    pub limit: Class,
    /// Whether an account that has not proven its address may call it (when
    /// `auth.require_verified_email` asks for proof at all): the routes it
    /// needs to see itself, prove or correct its address, and leave.
    pub before_verification: bool,
}

const fn route(method: &'static str, path: &'static str, access: Access, limit: Class) -> RoutePolicy {
    RoutePolicy { method, path, access, limit, before_verification: false }
}

impl RoutePolicy {
    const fn before_verification(self) -> Self {
        Self { before_verification: true, ..self }
    }
}

use Access::{Authenticated, Public, Role as HasRole, Scope};

/// The policy of every route. Read this table to know who may call what,
/// and how often.
pub const ROUTES: &[RoutePolicy] = &[
    // Probes: never limited, so that orchestrators always reach them.
    route("GET", "/healthz", Public, Class::Unlimited),
    route("GET", "/readyz", Public, Class::Unlimited),
    // Documentation and the keys others verify our tokens with.
    route("GET", "/.well-known/jwks.json", Public, Class::Anonymous),
    route("GET", "/openapi.json", Public, Class::Anonymous),
    route("GET", "/docs", Public, Class::Anonymous),
    route("GET", "/docs/", Public, Class::Anonymous),
    route("GET", "/docs/{*rest}", Public, Class::Anonymous),
    // Getting a session: by definition before authentication.
    route("POST", "/api/v1/auth/register", Public, Class::Mail),
    route("POST", "/api/v1/auth/login", Public, Class::Credentials),
    route("POST", "/api/v1/auth/refresh", Public, Class::Credentials),
    route("POST", "/api/v1/auth/logout", Public, Class::Anonymous),
    route("GET", "/api/v1/auth/oidc/login", Public, Class::Credentials),
    route("GET", "/api/v1/auth/oidc/callback", Public, Class::Credentials),
    // Links sent by mail: the token in the body is the credential.
    route("POST", "/api/v1/auth/verify-email", Public, Class::Credentials),
    route("POST", "/api/v1/auth/password-reset", Public, Class::Mail),
    route("POST", "/api/v1/auth/password-reset/confirm", Public, Class::Credentials),
    // The caller's own account and sessions.
    route("GET", "/api/v1/me", Authenticated, Class::Authenticated).before_verification(),
    route("POST", "/api/v1/me/email", Authenticated, Class::Mail).before_verification(),
    route("POST", "/api/v1/auth/verify-email/resend", Authenticated, Class::Mail).before_verification(),
    route("POST", "/api/v1/auth/logout-all", Authenticated, Class::Authenticated).before_verification(),
    route("POST", "/api/v1/auth/password", Authenticated, Class::Credentials),
    route("POST", "/api/v1/auth/oidc/link", Authenticated, Class::Credentials),
    // Notes: owners only, admins may read all (object rules below).
    route("GET", "/api/v1/notes", Scope(NOTES_READ), Class::Authenticated),
    route("POST", "/api/v1/notes", Scope(NOTES_WRITE), Class::Authenticated),
    route("GET", "/api/v1/notes/{id}", Scope(NOTES_READ), Class::Authenticated),
    route("PATCH", "/api/v1/notes/{id}", Scope(NOTES_WRITE), Class::Authenticated),
    route("DELETE", "/api/v1/notes/{id}", Scope(NOTES_WRITE), Class::Authenticated),
    // Administration.
    route("GET", "/api/v1/admin/users", HasRole(Role::Admin), Class::Authenticated),
    route("PUT", "/api/v1/admin/users/{id}/roles", HasRole(Role::Admin), Class::Authenticated),
    route("POST", "/api/v1/admin/users/{id}/disable", HasRole(Role::Admin), Class::Authenticated),
    route("POST", "/api/v1/admin/users/{id}/unlock", HasRole(Role::Admin), Class::Authenticated),
    route("GET", "/api/v1/admin/audit", HasRole(Role::Admin), Class::Authenticated),
];

/// The policy of a route, if it has one. HEAD is answered by the GET
/// handler, so it has the GET policy.
#[must_use]
pub fn policy(method: &str, path: &str) -> Option<&'static RoutePolicy> {
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES.iter().find(|row| row.method == method && row.path == path)
}

/// Owners read what they own (notes, and the owned resources `cargo xtask
/// scaffold` writes); admins read everyone's. Changing one is for its owner
/// alone, admins included: the writes of `db` filter on the owner.
#[must_use]
pub fn can_read_owned(principal: &Principal, owner: Uuid) -> bool {
    principal.subject == Subject::User(owner) || principal.roles.contains(&Role::Admin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;

    fn principal(subject: Subject, roles: &[Role]) -> Principal {
        Principal {
            subject,
            roles: roles.to_vec(),
            scopes: scopes_for(roles),
            method: AuthMethod::Password,
            client: None,
            email_verified: true,
        }
    }

    #[test]
    fn owners_and_admins_read_a_note_nobody_else_does() {
        let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
        let user = principal(Subject::User(owner), &[Role::User]);
        let stranger = principal(Subject::User(other), &[Role::User]);
        let admin = principal(Subject::User(other), &[Role::User, Role::Admin]);
        let service = principal(Subject::External("svc".to_owned()), &[]);
        assert!(can_read_owned(&user, owner));
        assert!(!can_read_owned(&stranger, owner));
        assert!(can_read_owned(&admin, owner));
        assert!(!can_read_owned(&service, owner));
    }

    #[test]
    fn access_follows_roles_and_scopes() {
        let user = principal(Subject::User(Uuid::new_v4()), &[Role::User]);
        let admin = principal(Subject::User(Uuid::new_v4()), &[Role::User, Role::Admin]);
        assert!(Authenticated.allows(&user) && Scope(NOTES_WRITE).allows(&user));
        assert!(!HasRole(Role::Admin).allows(&user) && !Scope(USERS_ADMIN).allows(&user));
        assert!(HasRole(Role::Admin).allows(&admin) && Scope(USERS_ADMIN).allows(&admin));
    }

    #[test]
    fn routes_have_one_policy_each_and_head_follows_get() {
        for (i, row) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[i + 1..].iter().any(|other| other.method == row.method && other.path == row.path),
                "{} {} twice",
                row.method,
                row.path
            );
        }
        assert_eq!(policy("HEAD", "/healthz").map(|row| row.access), Some(Public));
        assert_eq!(policy("GET", "/not/a/route"), None);
    }
}
