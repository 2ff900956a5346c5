use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A name to show to other people: 1 to 64 characters once trimmed, with no
/// control characters (which could forge lines in logs or terminals).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, min_length = 1, max_length = 64, example = "Ann Lee")]
pub struct DisplayName(String);

const MAX_CHARS: usize = 64;

impl DisplayName {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        super::single_line(&value, MAX_CHARS, "must be at most 64 characters").map(Self)
    }
}

impl From<DisplayName> for String {
    fn from(name: DisplayName) -> Self {
        name.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::try_from(" Ann Lee ".to_owned()).expect("valid").as_str(), "Ann Lee");
        assert!(DisplayName::try_from("é".repeat(64)).is_ok(), "64 characters, more bytes");
        for bad in [
            String::new(),
            "   ".to_owned(),
            "x".repeat(65),
            "line\nbreak".to_owned(),
            "bell\u{7}".to_owned(),
        ] {
            assert!(DisplayName::try_from(bad.clone()).is_err(), "{bad:?}");
        }
    }
}
