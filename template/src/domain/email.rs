use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{RefOr, Schema, schema::KnownFormat},
};

/// An email address in its one canonical form, so that uniqueness means
/// one mailbox: trimmed, the local part lower-cased in ASCII only (mail
/// servers may treat non-ASCII case differently), the domain lower-cased
/// and IDNA-encoded (`Ann@Bücher.example` is `ann@xn--bcher-kva.example`).
///
/// A local part that Unicode normalization or case folding would turn into
/// another spelling is refused: `\u{212A}` (the Kelvin sign) folds to `k`,
/// so whoever registered it could pass for the owner of the `k` address
/// with any system that folds. Lower-case Unicode such as `é` is fine.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
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
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let not_an_address = || "must be an email address".to_owned();
        let value = value.trim();
        let Some((local, domain)) = value.rsplit_once('@') else {
            return Err(not_an_address());
        };
        let local = local.to_ascii_lowercase();
        let folded: String = local.nfkc().collect::<String>().to_lowercase();
        if folded != local {
            return Err(
                "must not contain characters that case folding or normalization would change".to_owned()
            );
        }
        let domain = idna::domain_to_ascii(domain).map_err(|_| not_an_address())?;
        let email = format!("{local}@{domain}");
        if email.len() > MAX_LEN {
            return Err(super::too_long(MAX_LEN));
        }
        let plausible_domain = domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        let plausible_local = !local.is_empty()
            && local.len() <= MAX_LOCAL_LEN
            && !local.contains('@')
            && local.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '"');
        if plausible_domain && plausible_local { Ok(Self(email)) } else { Err(not_an_address()) }
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

impl PartialSchema for Email {
    fn schema() -> RefOr<Schema> {
        let description = "An email address. It is stored in one canonical form: the part before \
            the @ lower-cased in ASCII, the domain lower-cased and IDNA-encoded; an address that \
            Unicode case folding or normalization would spell differently is refused.";
        super::string_schema(description, 3, MAX_LEN, Some(KnownFormat::Email), Some("ann@example.com"))
    }
}

impl ToSchema for Email {}

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
        let idn = Email::try_from("Ann@B\u{fc}cher.Example".to_owned()).expect("valid");
        assert_eq!(idn.as_str(), "ann@xn--bcher-kva.example");
        let unicode = Email::try_from("\u{e9}lodie@example.com".to_owned()).expect("lower-case Unicode");
        assert_eq!(unicode.as_str(), "\u{e9}lodie@example.com");
    }

    /// Spellings that Unicode folding or normalization turns into another
    /// address: the Kelvin sign, upper-case non-ASCII, full-width letters,
    /// a decomposed accent.
    #[test]
    fn addresses_with_unicode_twins_are_refused() {
        for twin in [
            "\u{212A}@example.com",
            "\u{c9}lodie@example.com",
            "\u{ff41}nn@example.com",
            "e\u{301}lodie@example.com",
        ] {
            assert!(Email::try_from(twin.to_owned()).is_err(), "{twin:?}");
        }
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
