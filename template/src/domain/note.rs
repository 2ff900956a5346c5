//! The fields of notes with a rule, each checked while parsing.

use serde::{Deserialize, Serialize};
use utoipa::{PartialSchema, ToSchema, openapi::RefOr, openapi::Schema};

/// A note's title: 1 to `TITLE_MAX_CHARS` characters once trimmed, on one
/// line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NoteTitle(String);

const TITLE_MAX_CHARS: usize = 200;

impl TryFrom<String> for NoteTitle {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        super::single_line(&value, TITLE_MAX_CHARS).map(Self)
    }
}

impl PartialSchema for NoteTitle {
    fn schema() -> RefOr<Schema> {
        super::string_schema("A note's title, on one line.", 1, TITLE_MAX_CHARS, None, None)
    }
}

impl NoteTitle {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ToSchema for NoteTitle {}

impl From<NoteTitle> for String {
    fn from(value: NoteTitle) -> Self {
        value.0
    }
}

/// A note's body: up to `BODY_MAX_CHARS` characters; line breaks and tabs
/// allowed, other control characters not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NoteBody(String);

const BODY_MAX_CHARS: usize = 10_000;

impl TryFrom<String> for NoteBody {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.chars().count() > BODY_MAX_CHARS {
            return Err(super::too_long(BODY_MAX_CHARS));
        }
        if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err("must not contain control characters other than line breaks and tabs".to_owned());
        }
        Ok(Self(value))
    }
}

impl PartialSchema for NoteBody {
    fn schema() -> RefOr<Schema> {
        let description = "A note's body; line breaks and tabs allowed, other control characters not.";
        super::string_schema(description, 0, BODY_MAX_CHARS, None, None)
    }
}

impl NoteBody {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ToSchema for NoteBody {}

impl From<NoteBody> for String {
    fn from(value: NoteBody) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_is_one_bounded_line() {
        assert_eq!(NoteTitle::try_from(" x ".to_owned()).expect("valid").as_str(), "x");
        for bad in [String::new(), " ".to_owned(), "a\nb".to_owned(), "x".repeat(TITLE_MAX_CHARS + 1)] {
            assert!(NoteTitle::try_from(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn body_keeps_line_breaks_and_is_bounded() {
        assert!(NoteBody::try_from("one\ntwo\tthree\r\n".to_owned()).is_ok());
        assert!(NoteBody::try_from(String::new()).is_ok());
        assert!(NoteBody::try_from("bell\u{7}".to_owned()).is_err());
        assert!(NoteBody::try_from("x".repeat(BODY_MAX_CHARS + 1)).is_err());
    }
}
