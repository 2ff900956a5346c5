//! The OpenAPI 3.1 document, generated from the handlers' annotations, and
//! Swagger UI at `/docs`, vendored into the binary so that nothing is fetched
//! from a CDN at run time.

use axum::{
    Router,
    http::{HeaderValue, header},
};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::{
    Modify,
    openapi::{
        OpenApi,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};
use utoipa_swagger_ui::SwaggerUi;

use super::headers::DOCS_CSP;
use crate::AppState;

pub const DOCS_PATH: &str = "/docs";
pub const SPEC_PATH: &str = "/openapi.json";

/// Document-wide metadata; each path comes from the `#[utoipa::path]` of the
/// handler registered for it.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "Every error answers with the same body: \
        `{\"error\":{\"code\":\"…\",\"message\":\"…\",\"request_id\":\"…\"}}`."),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "auth", description = "Accounts, logins, sessions and the token keys"),
        (name = "account", description = "The caller's own account"),
        (name = "notes", description = "The example resource: notes owned by users"),
        (name = "admin", description = "Account administration, for admins"),
    ),
    modifiers(&BearerScheme),
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme that protected operations list under
/// `security`: a JWT access token in `Authorization: Bearer …`.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

impl ApiDoc {
    pub fn document() -> OpenApi {
        let mut document = <Self as utoipa::OpenApi>::openapi();
        // The package declares no license, and an empty one is invalid OpenAPI.
        document.info.license = None;
        document
    }
}

/// `/docs` (Swagger UI) and `/openapi.json`. The only routes that are not
/// operations of the API, hence the only ones outside the document.
pub fn routes(openapi: OpenApi) -> Router<AppState> {
    Router::from(SwaggerUi::new(DOCS_PATH).url(SPEC_PATH, openapi)).layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_CSP),
    ))
}
