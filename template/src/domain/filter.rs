use serde::Deserialize;
use utoipa::{PartialSchema, ToSchema, openapi::RefOr, openapi::Schema};

/// An exact-match filter of a query (an account id, an event name, a
/// route): one line of 1 to `MAX_CHARS` characters without control
/// characters. Besides forging log lines, a NUL cannot even be compared by
/// PostgreSQL, so it would end as a server error rather than a refusal.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct FilterText(String);

const MAX_CHARS: usize = 200;

impl FilterText {
    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl TryFrom<String> for FilterText {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        super::single_line(&value, MAX_CHARS).map(Self)
    }
}

impl PartialSchema for FilterText {
    fn schema() -> RefOr<Schema> {
        super::string_schema("An exact-match filter, on one line.", 1, MAX_CHARS, None, None)
    }
}

impl ToSchema for FilterText {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_one_bounded_line() {
        assert_eq!(
            FilterText::try_from(" auth.login.failed ".to_owned()).map(FilterText::into_inner).as_deref(),
            Ok("auth.login.failed")
        );
        for bad in ["", "a\u{0}b", "a\nb", "\u{1b}[2J", &"x".repeat(MAX_CHARS + 1)] {
            assert!(FilterText::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }
}
