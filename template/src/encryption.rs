//! Field-level encryption at rest, for values a stolen database copy or
//! backup must not reveal (confidential note bodies, the PKCE verifiers of
//! pending logins).
//!
//! AES-256-GCM from aws-lc-rs, the library that already does this service's
//! TLS and token signatures, so no second cryptography library is trusted:
//! - a random 96-bit nonce per value, drawn by aws-lc-rs itself (safe for
//!   about 2^32 values per key; rotating keys starts the count again);
//! - each stored value names the key that sealed it, so keys rotate while
//!   older values stay readable (`rotate-data-key` re-encrypts them);
//! - the place a value belongs to (table, column, row id) and the key id are
//!   authenticated as associated data: a ciphertext copied to another row or
//!   column, or relabelled with another key id, fails to open.
//!
//! Stored form: `enc1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`, text,
//! so it fits the column the plaintext would have used.

use std::{collections::HashMap, fmt};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
const FORMAT: &str = "enc1";
const KEY_BYTES: usize = 32;
const MAX_KEY_ID_CHARS: usize = 32;

/// The key development uses when no key is configured. It is public (it is
/// in this file), so production refuses it wherever it appears.
pub const DEVELOPMENT_KEY: (&str, &str) = ("development", "ZGV2ZWxvcG1lbnQga2V5OiBwdWJsaWMsIHVuc2FmZSE=");

/// Where a sealed value belongs: bound into its ciphertext, so it opens
/// only there.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub table: &'static str,
    pub column: &'static str,
}

/// The data keys: every configured key opens, the current one (listed
/// first) seals.
pub struct DataKeys {
    current: String,
    keys: HashMap<String, RandomizedNonceKey>,
}

/// Why a sealed value could not be opened or the keys could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    /// Sealed under a key that is no longer configured: retired before
    /// `rotate-data-key` finished.
    #[error("sealed under the key {0:?}, which is not configured")]
    UnknownKey(String),
    /// Not the stored form, or it fails authentication: altered, or moved
    /// from another row, column or key.
    #[error("not a value sealed for this place")]
    NotAuthentic,
    #[error("{0}")]
    BadKeys(String),
    #[error("encryption failed")]
    Seal,
}

impl fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("DataKeys").field("current", &self.current).field("ids", &ids).finish()
    }
}

impl DataKeys {
    /// Reads `keys`: `id:base64` entries (32 random bytes each, as
    /// `openssl rand -base64 32` prints) separated by spaces, commas or line
    /// breaks. The first seals new values; the others still open old ones.
    pub fn parse(keys: &str) -> Result<Self, EncryptionError> {
        let mut parsed = HashMap::new();
        let mut current = None;
        for entry in keys.split([' ', ',', '\n', '\r', '\t']).filter(|entry| !entry.is_empty()) {
            let (id, material) = entry.split_once(':').ok_or_else(|| bad("each entry is id:base64"))?;
            if id.is_empty()
                || id.len() > MAX_KEY_ID_CHARS
                || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(bad("key ids are 1 to 32 of a-z, 0-9 and -"));
            }
            let bytes = STANDARD.decode(material).map_err(|_| bad("a key is not base64"))?;
            if bytes.len() != KEY_BYTES {
                return Err(bad("each key is 32 random bytes"));
            }
            let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes).map_err(|_| bad("a key is unusable"))?;
            if parsed.insert(id.to_owned(), key).is_some() {
                return Err(bad("a key id appears twice"));
            }
            current.get_or_insert_with(|| id.to_owned());
        }
        let current = current.ok_or_else(|| bad("no key is listed"))?;
        Ok(Self { current, keys: parsed })
    }

    /// The built-in development key alone.
    #[must_use]
    pub fn development() -> Self {
        let (id, material) = DEVELOPMENT_KEY;
        Self::parse(&format!("{id}:{material}"))
            .unwrap_or_else(|_| unreachable!("the development key is well formed"))
    }

    #[must_use]
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Encrypts `plaintext` for `field` of the row whose key is `row`, under
    /// the current key.
    pub fn seal(&self, field: Field, row: &[u8], plaintext: &str) -> Result<String, EncryptionError> {
        let key = &self.keys[&self.current];
        let mut in_out = plaintext.as_bytes().to_vec();
        let nonce = key
            .seal_in_place_append_tag(associated_data(field, row, &self.current), &mut in_out)
            .map_err(|_| EncryptionError::Seal)?;
        let mut sealed = nonce.as_ref().to_vec();
        sealed.append(&mut in_out);
        Ok(format!("{}{}", self.current_prefix(), URL_SAFE_NO_PAD.encode(sealed)))
    }

    /// Decrypts a value `seal` wrote for `field` of the row `row`, under
    /// whichever configured key sealed it.
    pub fn open(&self, field: Field, row: &[u8], sealed: &str) -> Result<String, EncryptionError> {
        let (key_id, payload) = split(sealed).ok_or(EncryptionError::NotAuthentic)?;
        let key = self.keys.get(key_id).ok_or_else(|| EncryptionError::UnknownKey(key_id.to_owned()))?;
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| EncryptionError::NotAuthentic)?;
        if bytes.len() < NONCE_LEN {
            return Err(EncryptionError::NotAuthentic);
        }
        let mut in_out = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| EncryptionError::NotAuthentic)?;
        let plaintext = key
            .open_in_place(nonce, associated_data(field, row, key_id), &mut in_out)
            .map_err(|_| EncryptionError::NotAuthentic)?;
        String::from_utf8(plaintext.to_vec()).map_err(|_| EncryptionError::NotAuthentic)
    }

    /// How every value sealed under the current key begins: values that do
    /// not are what `rotate-data-key` re-encrypts.
    #[must_use]
    pub fn current_prefix(&self) -> String {
        format!("{FORMAT}:{}:", self.current)
    }

    /// Whether the public development key is among these keys, under any id.
    #[must_use]
    pub fn includes_development_key(keys: &str) -> bool {
        keys.split([' ', ',', '\n', '\r', '\t'])
            .filter_map(|entry| entry.split_once(':'))
            .any(|(_, material)| material == DEVELOPMENT_KEY.1)
    }
}

/// Re-encrypts, `batch` rows at a time, every value of `field` not yet under
/// the current key; returns how many it re-encrypted. `fetch` reads up to
/// `batch` rows (key and stored value) whose value does not begin with the
/// given prefix; `store` replaces a value only if it is still the one read
/// (`false` otherwise: another write sealed it anew meanwhile). Each row is
/// its own write and old keys open throughout, so a run can be stopped and
/// started again at any point.
pub async fn reseal_all<Row: AsRef<[u8]>, E: From<EncryptionError>>(
    keys: &DataKeys,
    field: Field,
    batch: u32,
    mut fetch: impl AsyncFnMut(&str, u32) -> Result<Vec<(Row, String)>, E>,
    mut store: impl AsyncFnMut(&Row, &str, &str) -> Result<bool, E>,
) -> Result<u64, E> {
    let prefix = keys.current_prefix();
    let mut resealed = 0;
    loop {
        let rows = fetch(&prefix, batch).await?;
        if rows.is_empty() {
            return Ok(resealed);
        }
        for (row, sealed) in rows {
            let value = keys.open(field, row.as_ref(), &sealed)?;
            if store(&row, &sealed, &keys.seal(field, row.as_ref(), &value)?).await? {
                resealed += 1;
            }
        }
    }
}

fn bad(problem: &str) -> EncryptionError {
    EncryptionError::BadKeys(problem.to_owned())
}

fn split(sealed: &str) -> Option<(&str, &str)> {
    let rest = sealed.strip_prefix(FORMAT)?.strip_prefix(':')?;
    rest.split_once(':')
}

/// `table.column/key id/row`: the key id's alphabet has no `/`, so the row's
/// bytes, last, cannot be confused with the rest.
fn associated_data(field: Field, row: &[u8], key_id: &str) -> Aad<Vec<u8>> {
    let mut data = format!("{}.{}/{key_id}/", field.table, field.column).into_bytes();
    data.extend_from_slice(row);
    Aad::from(data)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    const NOTE_BODY: Field = Field { table: "notes", column: "body" };
    const KEY_A: &str = "a:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    const KEY_B: &str = "b:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

    fn keys(keys: &str) -> DataKeys {
        DataKeys::parse(keys).expect("valid keys")
    }

    #[test]
    fn values_round_trip_and_hide_their_plaintext() {
        let keys = keys(KEY_A);
        let id = Uuid::now_v7();
        let row = id.as_bytes();
        let sealed = keys.seal(NOTE_BODY, row, "the safe is behind the painting").expect("seals");
        assert!(sealed.starts_with("enc1:a:"), "{sealed}");
        assert!(!sealed.contains("painting"));
        assert_eq!(keys.open(NOTE_BODY, row, &sealed).expect("opens"), "the safe is behind the painting");
        let again = keys.seal(NOTE_BODY, row, "the safe is behind the painting").expect("seals");
        assert_ne!(sealed, again, "a fresh nonce each time: equal plaintexts do not look equal");
        assert_eq!(
            keys.open(NOTE_BODY, row, &keys.seal(NOTE_BODY, row, "").expect("seals")).expect("opens"),
            ""
        );
    }

    #[test]
    fn a_value_opens_only_where_it_was_sealed() {
        let keys = keys(KEY_A);
        let id = Uuid::now_v7();
        let row = id.as_bytes();
        let sealed = keys.seal(NOTE_BODY, row, "secret").expect("seals");
        assert!(matches!(
            keys.open(NOTE_BODY, Uuid::now_v7().as_bytes(), &sealed),
            Err(EncryptionError::NotAuthentic)
        ));
        let title = Field { table: "notes", column: "title" };
        assert!(matches!(keys.open(title, row, &sealed), Err(EncryptionError::NotAuthentic)));
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert!(matches!(keys.open(NOTE_BODY, row, &flipped), Err(EncryptionError::NotAuthentic)));
        for malformed in ["", "plain text", "enc1:a:", "enc1:a:!!!", "enc2:a:AAAA"] {
            assert!(keys.open(NOTE_BODY, row, malformed).is_err(), "{malformed:?}");
        }
    }

    #[test]
    fn old_keys_open_until_they_are_removed_and_cannot_be_relabelled() {
        let old = keys(KEY_A);
        let id = Uuid::now_v7();
        let row = id.as_bytes();
        let sealed = old.seal(NOTE_BODY, row, "secret").expect("seals");
        let both = keys(&format!("{KEY_B} {KEY_A}"));
        assert!(!sealed.starts_with(&both.current_prefix()));
        assert_eq!(both.open(NOTE_BODY, row, &sealed).expect("the old key still opens"), "secret");
        let resealed = both.seal(NOTE_BODY, row, "secret").expect("seals");
        assert!(resealed.starts_with(&both.current_prefix()));
        let relabelled = sealed.replacen("enc1:a:", "enc1:b:", 1);
        assert!(matches!(both.open(NOTE_BODY, row, &relabelled), Err(EncryptionError::NotAuthentic)));
        let new_only = keys(KEY_B);
        assert!(
            matches!(new_only.open(NOTE_BODY, row, &sealed), Err(EncryptionError::UnknownKey(id)) if id == "a")
        );
    }

    #[test]
    fn key_lists_are_checked_without_echoing_the_keys() {
        for list in [
            "a:AAAA",
            "a",
            "",
            "A:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            &format!("{KEY_A},{KEY_A}"),
            "a:not base64 at all",
        ] {
            let err = DataKeys::parse(list).expect_err(list).to_string();
            assert!(!err.contains("AAAA"), "{err}");
        }
        assert!(DataKeys::includes_development_key(&format!("{KEY_A}, renamed:{}", DEVELOPMENT_KEY.1)));
        assert!(!DataKeys::includes_development_key(KEY_A));
        assert_eq!(DataKeys::development().current_id(), "development");
        assert_eq!(keys(&format!("{KEY_B}\n{KEY_A}")).current_id(), "b", "the first key seals");
        assert!(!format!("{:?}", keys(KEY_A)).contains("AAAA"));
    }
}
