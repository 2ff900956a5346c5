//! Authorization: what a principal may do.
//!
//! Three layers, from coarse to fine:
//!
//! 1. `ROUTES`, the policy of every route in one table. `enforce` applies it
//!    to every request before any handler runs, and a route missing from the
//!    table is refused (deny by default); a test fails when a served route
//!    has no row.
//! 2. Extractors that state a handler's requirement in its signature:
//!    `Principal` (authenticated), `RequireRole<Admin>`, `RequireScope<NotesWrite>`.
//! 3. Object rules (`can_read_note`) that services apply to each object.

use std::marker::PhantomData;

use axum::{
    extract::{FromRequestParts, MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    AppState,
    auth::{Principal, Subject},
    http::ApiError,
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

    /// The OAuth scopes this service's own tokens carry for the role.
    #[must_use]
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Self::User => &[NOTES_READ, NOTES_WRITE],
            Self::Admin => &[NOTES_READ, NOTES_WRITE, USERS_ADMIN],
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

use Access::{Authenticated, Public, Role as HasRole, Scope};

/// The policy of every route: (method, path as registered, access). Read this
/// table to know who may call what; `enforce` applies it to every request.
pub const ROUTES: &[(&str, &str, Access)] = &[
    // Probes, documentation and the keys others verify our tokens with.
    ("GET", "/healthz", Public),
    ("GET", "/readyz", Public),
    ("GET", "/.well-known/jwks.json", Public),
    ("GET", "/openapi.json", Public),
    ("GET", "/docs", Public),
    ("GET", "/docs/", Public),
    ("GET", "/docs/{*rest}", Public),
    // Getting a session: by definition before authentication.
    ("POST", "/api/v1/auth/register", Public),
    ("POST", "/api/v1/auth/login", Public),
    ("POST", "/api/v1/auth/refresh", Public),
    ("POST", "/api/v1/auth/logout", Public),
    ("GET", "/api/v1/auth/oidc/login", Public),
    ("GET", "/api/v1/auth/oidc/callback", Public),
    // The caller's own account and sessions.
    ("GET", "/api/v1/me", Authenticated),
    ("POST", "/api/v1/auth/logout-all", Authenticated),
    ("POST", "/api/v1/auth/password", Authenticated),
    ("POST", "/api/v1/auth/oidc/link", Authenticated),
    // Notes: owners only, admins may read all (object rules below).
    ("GET", "/api/v1/notes", Scope(NOTES_READ)),
    ("POST", "/api/v1/notes", Scope(NOTES_WRITE)),
    ("GET", "/api/v1/notes/{id}", Scope(NOTES_READ)),
    ("PATCH", "/api/v1/notes/{id}", Scope(NOTES_WRITE)),
    ("DELETE", "/api/v1/notes/{id}", Scope(NOTES_WRITE)),
    // Administration.
    ("GET", "/api/v1/admin/users", HasRole(Role::Admin)),
    ("PUT", "/api/v1/admin/users/{id}/roles", HasRole(Role::Admin)),
    ("POST", "/api/v1/admin/users/{id}/disable", HasRole(Role::Admin)),
    ("POST", "/api/v1/admin/users/{id}/unlock", HasRole(Role::Admin)),
];

/// The access rule of a route, if it has one.
#[must_use]
pub fn access(method: &Method, path: &str) -> Option<Access> {
    // HEAD is answered by the GET handler, so it has the GET policy.
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    ROUTES.iter().find(|(m, p, _)| *m == method && *p == path).map(|(_, _, access)| *access)
}

/// Applies `ROUTES` to every routed request, before the handler and its
/// extractors. A method without a row answers 405 (the table is the list of
/// what is allowed); a path without any row is refused, whoever calls.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path =
        request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned()).unwrap_or_default();
    let Some(access) = access(request.method(), &path) else {
        let allowed: Vec<&str> =
            ROUTES.iter().filter(|(_, p, _)| *p == path).map(|(method, _, _)| *method).collect();
        if allowed.is_empty() {
            tracing::error!(route = path, "route without an access policy: refused");
            return ApiError::Forbidden.into_response();
        }
        let allow =
            HeaderValue::from_str(&allowed.join(",")).unwrap_or_else(|_| HeaderValue::from_static(""));
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, allow)]).into_response();
    };
    if access == Public {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let principal = match Principal::from_request_parts(&mut parts, &state).await {
        Ok(principal) => principal,
        Err(rejection) => return rejection.into_response(),
    };
    let allowed = match access {
        Public | Authenticated => true,
        HasRole(role) => principal.roles.contains(&role),
        Scope(scope) => principal.scopes.iter().any(|granted| granted == scope),
    };
    if !allowed {
        return ApiError::Forbidden.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// A role a handler can require in its signature: `RequireRole<Admin>`.
pub trait RoleName: Send + Sync {
    const ROLE: Role;
}

pub struct Admin;

impl RoleName for Admin {
    const ROLE: Role = Role::Admin;
}

/// The caller, who holds role `R`; 401 without a token, 403 without the role.
pub struct RequireRole<R: RoleName>(pub Principal, pub PhantomData<R>);

impl<R: RoleName> FromRequestParts<AppState> for RequireRole<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if principal.roles.contains(&R::ROLE) {
            Ok(Self(principal, PhantomData))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// A scope a handler can require in its signature: `RequireScope<NotesWrite>`.
pub trait ScopeName: Send + Sync {
    const SCOPE: &'static str;
}

pub struct NotesRead;
pub struct NotesWrite;

impl ScopeName for NotesRead {
    const SCOPE: &'static str = NOTES_READ;
}

impl ScopeName for NotesWrite {
    const SCOPE: &'static str = NOTES_WRITE;
}

/// The caller, whose token carries scope `S`; 401 without a token, 403
/// without the scope.
pub struct RequireScope<S: ScopeName>(pub Principal, pub PhantomData<S>);

impl<S: ScopeName> FromRequestParts<AppState> for RequireScope<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if principal.scopes.iter().any(|scope| scope == S::SCOPE) {
            Ok(Self(principal, PhantomData))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// Owners read their notes; admins read everyone's. Changing a note is for
/// its owner alone, admins included: `db::notes` writes filter on the owner.
#[must_use]
pub fn can_read_note(principal: &Principal, owner: Uuid) -> bool {
    principal.subject == Subject::User(owner) || principal.roles.contains(&Role::Admin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;

    fn principal(subject: Subject, roles: &[Role]) -> Principal {
        Principal { subject, roles: roles.to_vec(), scopes: scopes_for(roles), method: AuthMethod::Password }
    }

    #[test]
    fn owners_and_admins_read_a_note_nobody_else_does() {
        let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
        let user = principal(Subject::User(owner), &[Role::User]);
        let stranger = principal(Subject::User(other), &[Role::User]);
        let admin = principal(Subject::User(other), &[Role::User, Role::Admin]);
        let service = principal(Subject::External("svc".to_owned()), &[]);
        assert!(can_read_note(&user, owner));
        assert!(!can_read_note(&stranger, owner));
        assert!(can_read_note(&admin, owner));
        assert!(!can_read_note(&service, owner));
    }

    #[test]
    fn routes_have_one_policy_each_and_head_follows_get() {
        for (i, (method, path, _)) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[i + 1..].iter().any(|(m, p, _)| m == method && p == path),
                "{method} {path} twice"
            );
        }
        assert_eq!(access(&Method::HEAD, "/healthz"), Some(Public));
        assert_eq!(access(&Method::GET, "/not/a/route"), None);
    }
}
