//! Extractors that hand handlers values already parsed and valid, and reject
//! everything else in the one error shape.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::{ApiError, FieldError};

/// A JSON request body parsed into `T`.
///
/// Input types deny unknown fields (so a client cannot set `roles` or `id`)
/// and hold domain types that check their own rules while deserializing, so
/// a body that reaches the handler is valid. Rejections: no JSON content type
/// → 415; over the body limit → 413; not JSON → 400; JSON that breaks a rule
/// → 422 listing each field and rule, without echoing the submitted values.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !declares_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("The request body could not be read.")
            }
        })?;
        // Request bodies are objects. serde would also read a struct from an
        // array of its fields (`[null, null]`), which no client means.
        if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::Validation(vec![FieldError::new("body", "must be a JSON object")]));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| rejection(&error))?;
        deserializer.end().map_err(|_| ApiError::BadRequest("The body is not valid JSON."))?;
        Ok(Self(value))
    }
}

/// A query string parsed into `T`, with the same rules and rejections as
/// `JsonBody`: unknown parameters and broken rules answer 422 per field.
pub struct ValidQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(Self).map_err(|error| {
            let message = error.inner().to_string();
            ApiError::Validation(vec![field_error(Input::Query, error.path(), &message)])
        })
    }
}

/// The `{id}` of a path, which must be a UUID. Anything else cannot name a
/// resource, so it answers 404 like an id that names none, before any
/// database work.
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<Uuid>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|_| ApiError::NotFound)
    }
}

fn declares_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn rejection(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    if !matches!(error.inner().classify(), Category::Data) {
        return ApiError::BadRequest("The body is not valid JSON.");
    }
    let message = error.inner().to_string();
    let message = message.split(" at line ").next().unwrap_or_default();
    ApiError::Validation(vec![field_error(Input::Body, error.path(), message)])
}

/// Where a rejected value came from, named in `field` when the error is
/// about the input as a whole.
#[derive(Clone, Copy)]
enum Input {
    Body,
    Query,
}

impl Input {
    fn name(self) -> &'static str {
        match self {
            Self::Body => "body",
            Self::Query => "query",
        }
    }

    fn unknown_name(self) -> &'static str {
        match self {
            Self::Body => "has a field that is not accepted",
            Self::Query => "has a parameter that is not accepted",
        }
    }
}

/// Turns serde's message into a rule that names no submitted value. serde
/// quotes the input it complains about (`invalid type: string "…"`), so only
/// the domain types' own messages, which never quote, are passed on; and an
/// unknown field is reported at its parent, since its name is the client's.
fn field_error(input: Input, path: &serde_path_to_error::Path, message: &str) -> FieldError {
    let at = |segments: &[&serde_path_to_error::Segment]| {
        let mut name = String::new();
        for segment in segments {
            if !name.is_empty() && !matches!(segment, serde_path_to_error::Segment::Seq { .. }) {
                name.push('.');
            }
            name.push_str(&segment.to_string());
        }
        if name.is_empty() { input.name().to_owned() } else { name }
    };
    let segments: Vec<_> = path.iter().collect();
    let quoted = |prefix: &str| {
        message.strip_prefix(prefix).and_then(|rest| rest.split('`').nth(1)).map(str::to_owned)
    };
    // The missing field is one of ours, so naming it echoes nothing.
    if let Some(field) = quoted("missing field ") {
        let field = if segments.is_empty() { field } else { format!("{}.{field}", at(&segments)) };
        return FieldError::new(field, "is required");
    }
    // serde_path_to_error ends the path with the unknown name: leave it out.
    if quoted("unknown field ").is_some() {
        return FieldError::new(at(&segments[..segments.len().saturating_sub(1)]), input.unknown_name());
    }
    let field = at(&segments);
    if let Some(expected) =
        message.strip_prefix("invalid type: ").and_then(|rest| rest.split(", expected ").nth(1))
    {
        return FieldError::new(field, format!("must be {expected}"));
    }
    let own_rule = message.len() <= 120 && !message.contains(['`', '"']) && !message.starts_with("invalid ");
    FieldError::new(field, if own_rule { message } else { "is not valid" })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::domain::Email;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "the fields exist to be deserialized")]
    struct Input {
        email: Email,
        age: u8,
    }

    fn details(body: &str) -> Vec<FieldError> {
        let mut deserializer = serde_json::Deserializer::from_str(body);
        match serde_path_to_error::deserialize::<_, Input>(&mut deserializer)
            .map_err(|error| rejection(&error))
        {
            Err(ApiError::Validation(details)) => details,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn each_broken_rule_names_its_field_without_echoing_input() {
        assert_eq!(details(r#"{"age": 3}"#), [FieldError::new("email", "is required")]);
        assert_eq!(
            details(r#"{"email": "a@example.com", "age": 3, "roles-INVENTED": ["admin"]}"#),
            [FieldError::new("body", "has a field that is not accepted")]
        );
        assert_eq!(
            details(r#"{"email": "not-an-email", "age": 3}"#),
            [FieldError::new("email", "must be an email address")]
        );
        let wrong_type = details(r#"{"email": "a@example.com", "age": "SECRET-VALUE"}"#);
        assert_eq!(wrong_type[0].field, "age");
        assert!(!wrong_type[0].message.contains("SECRET"), "{wrong_type:?}");
        let out_of_range = details(r#"{"email": "a@example.com", "age": 300000}"#);
        assert!(!out_of_range[0].message.contains("300000"), "{out_of_range:?}");
    }

    #[test]
    fn json_content_types_are_recognized() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().expect("header"));
            declares_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!declares_json(&HeaderMap::new()));
    }
}
