use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An email address, trimmed and lower-cased so that uniqueness is
/// case-insensitive (`Ann@Example.com` and `ann@example.com` are one account).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, format = Email, example = "ann@example.com")]
pub struct Email(String);

/// RFC 5321 limits: 254 for the whole address, 64 for the local part.
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

impl Email {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let email = value.trim().to_lowercase();
        if email.len() > MAX_LEN {
            return Err("must be at most 254 characters");
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("must be an email address");
        };
        let plausible_domain = domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let plausible_local = !local.is_empty()
            && local.len() <= MAX_LOCAL_LEN
            && !local.contains('@')
            && local.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '"');
        if plausible_domain && plausible_local { Ok(Self(email)) } else { Err("must be an email address") }
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalized() {
        let email = Email::try_from("  Ann.Lee+news@Example.COM ".to_owned()).expect("valid");
        assert_eq!(email.as_str(), "ann.lee+news@example.com");
    }

    #[test]
    fn implausible_addresses_are_rejected() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long = format!("a@{}.com", "b".repeat(250));
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "ann@.example.com",
            "ann@exa..mple.com",
            "an n@example.com",
            "ann@example.com.",
            "ann@ex ample.com",
            "a\u{0}b@example.com",
            &long_local,
            &long,
        ] {
            assert!(Email::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }
}
