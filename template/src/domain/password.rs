use std::fmt;

use serde::Deserialize;
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{RefOr, Schema, schema::KnownFormat},
};

/// A password as submitted. It never prints (`Debug` is redacted, there is no
/// `Display` or `Serialize`), and its length is bounded so that hashing cost
/// is bounded too. Whether it is strong enough for a *new* password is the
/// policy's call (`auth::password::PasswordPolicy`); logging in only needs
/// these bounds.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Password(String);

/// Longest password accepted anywhere (NIST SP 800-63B asks for at least 64).
pub const MAX_CHARS: usize = 128;

/// The shortest minimum length a deployment may set for new passwords
/// (NIST SP 800-63B).
pub const MIN_POLICY_CHARS: usize = 8;

impl Password {
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Password {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.chars().count() {
            0 => Err("must not be empty".to_owned()),
            n if n > MAX_CHARS => Err(super::too_long(MAX_CHARS)),
            _ => Ok(Self(value)),
        }
    }
}

impl PartialSchema for Password {
    fn schema() -> RefOr<Schema> {
        let description = "A password. A new one must also meet the password policy: long enough, \
            not a commonly used password, not the email address.";
        super::string_schema(description, 1, MAX_CHARS, Some(KnownFormat::Password), None)
    }
}

impl ToSchema for Password {}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(REDACTED)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_bounded_and_never_print() {
        let password = Password::try_from("correct horse battery".to_owned()).expect("valid");
        assert_eq!(format!("{password:?}"), "Password(REDACTED)");
        assert!(Password::try_from(String::new()).is_err());
        assert!(Password::try_from("x".repeat(MAX_CHARS)).is_ok());
        assert!(Password::try_from("x".repeat(MAX_CHARS + 1)).is_err());
    }
}
