use serde::{Deserialize, Serialize};
use utoipa::{PartialSchema, ToSchema, openapi::RefOr, openapi::Schema};

/// A note's title: 1 to `TITLE_MAX_CHARS` characters once trimmed, on one
/// line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NoteTitle(String);

/// A note's text: up to `BODY_MAX_CHARS` characters; line breaks and tabs
/// allowed, other control characters not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NoteBody(String);

const TITLE_MAX_CHARS: usize = 200;
const BODY_MAX_CHARS: usize = 2_000;

impl NoteTitle {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl NoteBody {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NoteTitle {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        super::single_line(&value, TITLE_MAX_CHARS).map(Self)
    }
}

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

impl PartialSchema for NoteTitle {
    fn schema() -> RefOr<Schema> {
        super::string_schema("A note's title, on one line.", 1, TITLE_MAX_CHARS, None, Some("Groceries"))
    }
}

impl ToSchema for NoteTitle {}

impl PartialSchema for NoteBody {
    fn schema() -> RefOr<Schema> {
        let description = "A note's text; line breaks and tabs allowed, other control characters not.";
        super::string_schema(description, 0, BODY_MAX_CHARS, None, Some("Milk, eggs"))
    }
}

impl ToSchema for NoteBody {}

impl From<NoteTitle> for String {
    fn from(title: NoteTitle) -> Self {
        title.0
    }
}

impl From<NoteBody> for String {
    fn from(body: NoteBody) -> Self {
        body.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_one_bounded_line() {
        assert_eq!(NoteTitle::try_from("  Groceries ".to_owned()).expect("valid").as_str(), "Groceries");
        for bad in [String::new(), " ".to_owned(), "a\nb".to_owned(), "x".repeat(TITLE_MAX_CHARS + 1)] {
            assert!(NoteTitle::try_from(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bodies_keep_line_breaks_and_are_bounded() {
        assert!(NoteBody::try_from("line one\nline two\ttabbed\r\n".to_owned()).is_ok());
        assert!(NoteBody::try_from(String::new()).is_ok());
        assert!(NoteBody::try_from("bell\u{7}".to_owned()).is_err());
        assert_eq!(NoteBody::try_from("x".repeat(2_001)), Err("must be at most 2000 characters".to_owned()));
    }
}
