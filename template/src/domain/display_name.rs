use serde::{Deserialize, Serialize};
use utoipa::{PartialSchema, ToSchema, openapi::RefOr, openapi::Schema};

/// A name to show to other people: 1 to `MAX_CHARS` characters once
/// trimmed, with no control characters (which could forge lines in logs or
/// terminals).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

const MAX_CHARS: usize = 64;

impl DisplayName {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        super::single_line(&value, MAX_CHARS).map(Self)
    }
}

impl From<DisplayName> for String {
    fn from(name: DisplayName) -> Self {
        name.0
    }
}

impl PartialSchema for DisplayName {
    fn schema() -> RefOr<Schema> {
        super::string_schema("A name to show to others, on one line.", 1, MAX_CHARS, None, Some("Ann Lee"))
    }
}

impl ToSchema for DisplayName {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::try_from(" Ann Lee ".to_owned()).expect("valid").as_str(), "Ann Lee");
        assert!(DisplayName::try_from("é".repeat(MAX_CHARS)).is_ok(), "64 characters, more bytes");
        for bad in [
            String::new(),
            "   ".to_owned(),
            "x".repeat(MAX_CHARS + 1),
            "line\nbreak".to_owned(),
            "bell\u{7}".to_owned(),
        ] {
            assert!(DisplayName::try_from(bad.clone()).is_err(), "{bad:?}");
        }
        assert_eq!(DisplayName::try_from("x".repeat(65)), Err("must be at most 64 characters".to_owned()));
    }
}
