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
        ContentBuilder, ObjectBuilder, OpenApi, PathItem, Ref, RefOr, ResponseBuilder, Type,
        header::{Header, HeaderBuilder},
        path::Operation,
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};
use utoipa_swagger_ui::SwaggerUi;

use super::headers::DOCS_CSP;
use crate::{
    AppState,
    authz::{self, Access},
    rate_limit::Class,
};

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
        (name = "notes", description = "Notes owned by users"),
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

/// What the code knows beyond the handlers' annotations: each operation's
/// security, from its route policy, then the answers of the shared layers.
pub fn complete(document: &mut OpenApi) {
    apply_route_policies(document);
    add_shared_errors(document);
    document_rate_limits(document);
}

/// The operations of a path, with their methods.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("GET", &mut item.get),
        ("POST", &mut item.post),
        ("PUT", &mut item.put),
        ("PATCH", &mut item.patch),
        ("DELETE", &mut item.delete),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation.as_mut()?)))
}

/// Each operation's `security`, from its row in `authz::ROUTES`, so that
/// the document cannot disagree with what is enforced: a scope is listed as
/// the bearer scheme's scope, a role is named in the description.
fn apply_route_policies(document: &mut OpenApi) {
    for (path, item) in &mut document.paths.paths {
        for (method, operation) in operations(item) {
            let bearer = |scopes: Vec<&str>| Some(vec![SecurityRequirement::new("bearer", scopes)]);
            operation.security = match authz::policy(method, path).map(|row| row.access) {
                None | Some(Access::Public) => None,
                Some(Access::Authenticated) => bearer(Vec::new()),
                Some(Access::Scope(scope)) => bearer(vec![scope]),
                Some(Access::Role(role)) => {
                    let required = format!("Requires the `{}` role.", role.as_str());
                    operation.description = Some(match operation.description.take() {
                        Some(description) => format!("{description}\n\n{required}"),
                        None => required,
                    });
                    bearer(Vec::new())
                }
            };
        }
    }
}

/// Documents the answers the middleware and extractors give on their own,
/// so that every operation lists every status it can return: a JSON body
/// can be malformed (400), too large (413), not JSON (415) or break a rule
/// (422); a protected operation can meet a missing or bad token (401) or a
/// missing right (403). Handlers document the answers specific to them.
fn add_shared_errors(document: &mut OpenApi) {
    let error = |description: &str| {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorEnvelope"))).build();
        RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
    };
    for item in document.paths.paths.values_mut() {
        for (_, operation) in operations(item) {
            let mut shared = Vec::new();
            if operation.request_body.is_some() {
                shared.extend([
                    ("400", "The body is not valid JSON"),
                    ("413", "The body is too large"),
                    ("415", "The body is not declared as JSON"),
                    ("422", "A field breaks a rule; see `details`"),
                ]);
            }
            if operation.parameters.as_ref().is_some_and(|parameters| !parameters.is_empty()) {
                shared.push(("422", "A parameter breaks a rule; see `details`"));
            }
            if operation.security.as_ref().is_some_and(|security| !security.is_empty()) {
                shared.extend([
                    ("401", "No valid access token"),
                    ("403", "The caller lacks the role or scope"),
                ]);
            }
            for (status, description) in shared {
                operation.responses.responses.entry(status.to_owned()).or_insert_with(|| error(description));
            }
        }
    }
}

/// Every operation whose route counts against a rate limit (its row in
/// `authz::ROUTES`) can answer 429 with `Retry-After`, and every answer
/// of it carries the `RateLimit` header fields (`http::rate_limit`).
fn document_rate_limits(document: &mut OpenApi) {
    let text = |description: &str| {
        HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(description))
            .build()
    };
    let state: [(&str, Header); 2] = [
        ("RateLimit-Policy", text("The quota: `\"class\";q=<requests>;w=<seconds>`")),
        ("RateLimit", text("What is left: `\"class\";r=<requests>;t=<seconds until whole>`")),
    ];
    let retry_after = HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1))))
        .description(Some("Seconds until a request may pass"))
        .build();
    for (path, item) in &mut document.paths.paths {
        for (method, operation) in operations(item) {
            if authz::policy(method, path).is_none_or(|row| row.limit == Class::Unlimited) {
                continue;
            }
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorEnvelope"))).build();
            let limited = ResponseBuilder::new()
                .description("Too many requests; retry after `Retry-After` seconds")
                .content("application/json", content)
                .header("Retry-After", retry_after.clone())
                .build();
            operation.responses.responses.insert("429".to_owned(), RefOr::T(limited));
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response
                        .headers
                        .extend(state.clone().map(|(name, header)| (name.to_owned(), RefOr::T(header))));
                }
            }
        }
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
