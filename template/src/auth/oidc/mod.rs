//! OpenID Connect, switched on by configuring `oidc.issuer`:
//!
//! - as a resource server, this API accepts access tokens the provider
//!   issued for it (audience = `auth.audience`), for users and for services
//!   using the client-credentials grant;
//! - with `oidc.client_id`, users can log in at the provider (authorization
//!   code flow with PKCE, `state` and `nonce`, see `login`) and receive this
//!   service's own tokens.

pub mod login;
pub mod outbound;
pub mod provider;

use std::collections::BTreeMap;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use url::Url;

use self::{
    outbound::{Outbound, Timeouts},
    provider::{KeyTiming, Provider},
};
use crate::{
    authz::Role,
    config::{Config, Environment, Secret},
    db::{self, Pool},
};

/// The login client registered at the provider.
pub struct Client {
    pub id: String,
    pub secret: Option<Secret>,
    pub redirect_url: Url,
    pub scopes: Vec<String>,
}

pub struct Oidc {
    pub provider: Provider,
    pub client: Option<Client>,
    pub outbound: Outbound,
    /// Logins that may wait for their callback at once.
    pub max_pending_logins: u32,
    audience: String,
    roles_claim: String,
    role_map: BTreeMap<String, Role>,
}

/// The claims of a provider access token this service looks at.
#[derive(Deserialize)]
struct ProviderClaims {
    sub: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// Who a verified provider access token speaks for, before this service's
/// own account (if one is linked) has its say.
pub struct ProviderCaller {
    /// The provider's subject.
    pub subject: String,
    /// The account the provider identity is linked to.
    pub account: Option<uuid::Uuid>,
    /// This service's roles for the provider's role names.
    pub roles: Vec<Role>,
    pub scopes: Vec<String>,
    /// The OAuth client the token was issued to.
    pub client: Option<String>,
    /// A service acting for itself (the client-credentials grant: the
    /// subject is the client).
    pub client_credentials: bool,
}

/// The path of the login callback, registered at the provider as part of the
/// redirect URI.
pub const CALLBACK_PATH: &str = "/api/v1/auth/oidc/callback";

impl Oidc {
    /// `None` when no provider is configured.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Self>> {
        let settings = &config.oidc;
        let Some(issuer) = &settings.issuer else {
            return Ok(None);
        };
        let timeouts = Timeouts { connect: settings.connect_timeout, total: settings.request_timeout };
        let outbound = Outbound::new(config.env == Environment::Development, timeouts)?;
        let algorithms = settings
            .algorithms
            .iter()
            .map(|name| name.parse::<Algorithm>().map_err(|_| anyhow::anyhow!("unknown algorithm {name}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let client = match &settings.client_id {
            Some(id) => Some(Client {
                id: id.clone(),
                secret: settings.client_secret.clone(),
                redirect_url: Url::parse(&format!("{}{CALLBACK_PATH}", config.issuer()))?,
                scopes: settings.scopes.clone(),
            }),
            None => None,
        };
        let issuer = issuer.as_str().trim_end_matches('/').to_owned();
        Ok(Some(Self {
            provider: Provider::new(issuer, algorithms, outbound.clone(), KeyTiming::default()),
            client,
            outbound,
            max_pending_logins: settings.max_pending_logins,
            audience: config.audience(),
            roles_claim: settings.roles_claim.clone(),
            role_map: settings.role_map.clone(),
        }))
    }

    /// The caller behind an access token the provider issued for this API:
    /// a user whose provider identity is linked to an account here (the
    /// caller's principal then comes from that account), or a service or
    /// unlinked user acting under its provider subject, with the token's
    /// scopes and the roles mapped from `oidc.roles_claim`.
    pub async fn verify_access_token(&self, db: &Pool, token: &str) -> anyhow::Result<ProviderCaller> {
        let claims: ProviderClaims = self.provider.verify(token, &self.audience, true).await?;
        let account = db::identities::find_user(db, self.provider.issuer(), &claims.sub).await?;
        let client_credentials =
            account.is_none() && claims.client_id.as_deref() == Some(claims.sub.as_str());
        let mut roles = self.mapped_roles(&claims.other);
        roles.sort();
        roles.dedup();
        Ok(ProviderCaller {
            roles,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
            subject: claims.sub,
            account,
            client_credentials,
            client: claims.client_id,
        })
    }

    /// This service's roles for the provider's role names in the token:
    /// an array of strings, or one space-separated string.
    fn mapped_roles(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Vec<Role> {
        let names: Vec<&str> = match claims.get(&self.roles_claim) {
            Some(serde_json::Value::Array(values)) => {
                values.iter().filter_map(serde_json::Value::as_str).collect()
            }
            Some(serde_json::Value::String(text)) => text.split_whitespace().collect(),
            _ => Vec::new(),
        };
        names.iter().filter_map(|name| self.role_map.get(*name).copied()).collect()
    }
}
