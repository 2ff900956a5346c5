//! Who is calling: the principal an access token stands for, as the
//! account behind it stands now. (`http::bearer` reads the token from the
//! request.)

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Auth, cache::ExpiringCache};
use crate::{
    authz::{self, Role},
    db::{self, Pool, users::AccessState},
};

/// How the caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Email and password, at this service.
    Password,
    /// Logged in at the OpenID Connect provider, then got this service's
    /// own tokens.
    Oidc,
    /// An access token the provider issued to a user for this API.
    ProviderToken,
    /// An access token the provider issued to a service (client credentials).
    ClientCredentials,
}

impl AuthMethod {
    /// The stored name, also used in refresh-token rows.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Oidc => "oidc",
            Self::ProviderToken => "provider_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "password" => Some(Self::Password),
            "oidc" => Some(Self::Oidc),
            _ => None,
        }
    }

    /// The RFC 8176 `amr` value in this service's access tokens.
    #[must_use]
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::Oidc | Self::ProviderToken | Self::ClientCredentials => "fed",
        }
    }

    fn from_amr(amr: &[String]) -> Option<Self> {
        match amr.first().map(String::as_str) {
            Some("pwd") => Some(Self::Password),
            Some("fed") => Some(Self::Oidc),
            _ => None,
        }
    }
}

/// Who is behind a principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// An account of this service.
    User(Uuid),
    /// A provider identity without an account here: a service using client
    /// credentials, or a provider user who never logged in here.
    External(String),
}

/// A caller whose access token checked out.
#[derive(Clone, Debug)]
pub struct Principal {
    pub subject: Subject,
    pub roles: Vec<Role>,
    pub scopes: Vec<String>,
    pub method: AuthMethod,
    /// The OAuth client the provider issued the token to (provider tokens
    /// only), for the audit trail.
    pub client: Option<String>,
    /// Whether the account proved its address (callers without an account
    /// here have none to prove).
    pub email_verified: bool,
}

/// An operation that needs an account, asked by a caller without one (a
/// service, or a provider user never linked here).
#[derive(Debug, thiserror::Error)]
#[error("the caller has no account here")]
pub struct NoAccount;

impl Principal {
    /// The caller's account, for operations that need one.
    pub fn user_id(&self) -> Result<Uuid, NoAccount> {
        match self.subject {
            Subject::User(id) => Ok(id),
            Subject::External(_) => Err(NoAccount),
        }
    }
}

/// Why a token did not authenticate.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticationError {
    /// Expired, forged, not meant for this API, or its account or session
    /// is gone; the reason is for the log only.
    #[error("token refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The principal `token` stands for: one of this service's access tokens,
/// or, with a provider configured, one the provider issued for this API.
pub async fn authenticate(auth: &Auth, db: &Pool, token: &str) -> Result<Principal, AuthenticationError> {
    let refused = |reason: String| AuthenticationError::Refused(reason);
    let verified_before = auth.tokens.verified_before(token);
    match &auth.oidc {
        Some(oidc) if verified_before.is_none() && !auth.tokens.is_ours(token) => {
            let caller = oidc
                .verify_access_token(db, token)
                .await
                .map_err(|err| refused(format!("provider access token: {err:#}")))?;
            match caller.account {
                Some(user_id) => {
                    // The provider's token is the provider's to revoke; here
                    // the account must be active, with its roles.
                    let granted = Granted {
                        session: None,
                        roles: caller.roles,
                        scopes: caller.scopes,
                        client: caller.client,
                    };
                    for_account(auth, db, user_id, granted, AuthMethod::ProviderToken).await
                }
                None => Ok(Principal {
                    subject: Subject::External(caller.subject),
                    roles: caller.roles,
                    scopes: caller.scopes,
                    client: caller.client,
                    email_verified: true,
                    method: if caller.client_credentials {
                        AuthMethod::ClientCredentials
                    } else {
                        AuthMethod::ProviderToken
                    },
                }),
            }
        }
        _ => {
            let claims = match verified_before {
                Some(claims) => claims,
                None => auth.tokens.verify(token).map_err(|rejection| refused(rejection.to_string()))?,
            };
            let user_id = claims.sub.parse().map_err(|_| refused("sub is not an account id".to_owned()))?;
            let session = claims.sid.parse().map_err(|_| refused("sid is not a session id".to_owned()))?;
            let method =
                AuthMethod::from_amr(&claims.amr).ok_or_else(|| refused("unknown amr".to_owned()))?;
            let scopes = claims.scope.split_whitespace().map(str::to_owned).collect();
            // The token's own roles are ignored: the account's count.
            let granted = Granted { session: Some(session), roles: Vec::new(), scopes, client: None };
            for_account(auth, db, user_id, granted, method).await
        }
    }
}

/// Changes of account state (disabling, roles, ended sessions, a proven
/// address) made by this process so far: each change bumps it after its
/// commit, and a remembered state from before a bump is never used again.
static ACCOUNT_CHANGES: AtomicU64 = AtomicU64::new(0);

/// Call after committing any change to what `AccessState` holds: the change
/// then takes effect at once in this instance (other instances see it when
/// their remembered state expires, within `auth.account_cache_ttl_ms`).
pub fn account_changed() {
    ACCOUNT_CHANGES.fetch_add(1, Ordering::SeqCst);
}

/// Account states remembered for a short while (`auth.account_cache_ttl_ms`,
/// at most a second), so that a burst of requests by one account costs one
/// database round trip. Zero turns it off.
pub struct AccessStates {
    cache: ExpiringCache<(Uuid, Option<Uuid>), (Arc<AccessState>, u64)>,
    ttl: Duration,
}

/// Account states remembered at most.
const REMEMBERED_STATES: usize = 100_000;

impl AccessStates {
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self { cache: ExpiringCache::new(REMEMBERED_STATES), ttl }
    }

    async fn get(
        &self,
        db: &Pool,
        user_id: Uuid,
        session: Option<Uuid>,
    ) -> Result<Option<Arc<AccessState>>, sqlx::Error> {
        // Read before the query: a change that commits meanwhile bumps it,
        // and what this query read is then never reused.
        let changes = ACCOUNT_CHANGES.load(Ordering::SeqCst);
        if let Some((state, seen)) = self.cache.get(&(user_id, session))
            && seen == changes
        {
            return Ok(Some(state));
        }
        let Some(state) = db::users::access_state(db, user_id, session).await?.map(Arc::new) else {
            return Ok(None);
        };
        if !self.ttl.is_zero() {
            self.cache.insert((user_id, session), (state.clone(), changes), Instant::now() + self.ttl);
        }
        Ok(Some(state))
    }
}

/// What a verified token grants before the account has its say.
struct Granted {
    /// The session this service issued the token in, which must be live.
    session: Option<Uuid>,
    /// Roles from outside the account (a provider's `role_map`).
    roles: Vec<Role>,
    scopes: Vec<String>,
    client: Option<String>,
}

/// The principal for a token of an account, as the account stands now.
///
/// One indexed query per request buys what a stateless token cannot give:
/// disabling an account, ending its session (logout, logout-all, a password
/// change) or a demotion takes effect at once. Roles are the account's
/// current ones (plus any granted from outside); scopes stay as issued but
/// only those the roles allow.
async fn for_account(
    auth: &Auth,
    db: &Pool,
    user_id: Uuid,
    granted: Granted,
    method: AuthMethod,
) -> Result<Principal, AuthenticationError> {
    let refused = |reason: &str| Err(AuthenticationError::Refused(format!("{reason} (account {user_id})")));
    let Some(account) = auth.access_states.get(db, user_id, granted.session).await? else {
        return refused("the account is gone");
    };
    if account.disabled {
        return refused("the account is disabled");
    }
    if granted.session.is_some() && !account.session_live {
        return refused("the session ended");
    }
    let mut roles = account.roles.clone();
    roles.extend(granted.roles);
    roles.sort();
    roles.dedup();
    let allowed = authz::scopes_for(&roles);
    let scopes = granted.scopes.into_iter().filter(|scope| allowed.contains(scope)).collect();
    Ok(Principal {
        subject: Subject::User(user_id),
        roles,
        scopes,
        method,
        client: granted.client,
        email_verified: account.email_verified,
    })
}
