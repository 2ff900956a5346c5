use serde::Deserialize;
use utoipa::{PartialSchema, ToSchema, openapi::RefOr, openapi::Schema};

/// The token of a link sent by mail, as the client copied it: the service
/// makes them 43 characters of base64url; anything else cannot be one, and
/// is refused before any lookup.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct LinkToken(String);

const MAX_CHARS: usize = 128;

impl LinkToken {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LinkToken {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() || value.len() > MAX_CHARS {
            return Err(format!("must be 1 to {MAX_CHARS} characters"));
        }
        if !value.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_')) {
            return Err("must be the token of a link, as sent".to_owned());
        }
        Ok(Self(value))
    }
}

impl PartialSchema for LinkToken {
    fn schema() -> RefOr<Schema> {
        super::string_schema("The token of a link sent by mail (base64url).", 1, MAX_CHARS, None, None)
    }
}

impl ToSchema for LinkToken {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_tokens_are_base64url_and_bounded() {
        assert!(LinkToken::try_from("aB3_-x".to_owned()).is_ok());
        for bad in [String::new(), "x".repeat(MAX_CHARS + 1), "has space".to_owned(), "a+b/c=".to_owned()] {
            assert!(LinkToken::try_from(bad.clone()).is_err(), "{bad:?}");
        }
    }
}
