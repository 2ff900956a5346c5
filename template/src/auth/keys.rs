//! The Ed25519 keys that sign and verify this service's access tokens, and
//! their rotation.
//!
//! Keys live as PEM files in one directory (`auth.keys_dir`):
//!
//! - `signing.pem`: the active key; it signs new tokens and verifies;
//! - `next.pem`: a staged key; it verifies already, and signs after promotion;
//! - `retired-<unix time>-<kid>.pem`: former signing keys; they verify tokens signed
//!   before the rotation until those expire, then `rotate-keys` prunes them.
//!
//! A two-step rotation (`rotate-keys --stage`, deploy or restart everywhere,
//! then `rotate-keys --promote`) never leaves an instance unable to verify a
//! token another instance signed. One instance can do both at once.
//!
//! Each key's id (`kid`) is its RFC 7638 thumbprint, so ids never collide and
//! need no bookkeeping. Development generates `signing.pem` on first start;
//! production refuses to start without one.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    DecodingKey, EncodingKey,
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
        OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
    },
};

use super::unix_now;
use crate::config::Environment;

const SIGNING: &str = "signing.pem";
const NEXT: &str = "next.pem";
const RETIRED_PREFIX: &str = "retired-";

/// The loaded key set.
pub struct KeySet {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    jwks: JwkSet,
}

struct LoadedKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl KeySet {
    /// Loads every key in `dir`, generating `signing.pem` in development when
    /// there is none.
    pub fn load(dir: &Path, env: Environment) -> anyhow::Result<Self> {
        let signing_path = dir.join(SIGNING);
        if !signing_path.exists() {
            if env == Environment::Production {
                bail!("no token signing key at {}; create one with `rotate-keys`", signing_path.display());
            }
            write_new_key(&signing_path)?;
            tracing::warn!(path = %signing_path.display(), "generated a development token signing key");
        }
        let signing = load_key(&signing_path)?;
        let mut set = Self {
            signing_kid: signing.kid.clone(),
            signing: signing.encoding.clone(),
            verifying: HashMap::new(),
            jwks: JwkSet { keys: Vec::new() },
        };
        set.add_verifier(signing);
        for path in verify_only_paths(dir)? {
            set.add_verifier(load_key(&path)?);
        }
        Ok(set)
    }

    fn add_verifier(&mut self, key: LoadedKey) {
        self.jwks.keys.push(key.jwk);
        self.verifying.insert(key.kid, key.decoding);
    }

    #[must_use]
    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    #[must_use]
    pub fn signing_key(&self) -> &EncodingKey {
        &self.signing
    }

    /// The key that verifies tokens with this `kid`, if it is one of ours.
    #[must_use]
    pub fn verifying_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying.get(kid)
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    #[must_use]
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }
}

/// What `rotate-keys` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Add `next.pem`: every instance that loads it will verify its tokens.
    Stage,
    /// `next.pem` becomes `signing.pem`; the old signing key is retired.
    Promote,
    /// Both at once, for a single instance.
    StageAndPromote,
}

/// Rotates the keys in `dir` and prunes retired keys that can no longer have
/// valid tokens (retired longer than `token_lifetime` ago). Returns a report
/// for the operator.
pub fn rotate(dir: &Path, rotation: Rotation, token_lifetime: Duration) -> anyhow::Result<String> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut report = Vec::new();
    if matches!(rotation, Rotation::Stage | Rotation::StageAndPromote) {
        let next = dir.join(NEXT);
        if next.exists() {
            bail!("{} already exists; promote it first", next.display());
        }
        write_new_key(&next)?;
        report.push(format!("staged key {} in {}", load_key(&next)?.kid, next.display()));
    }
    if matches!(rotation, Rotation::Promote | Rotation::StageAndPromote) {
        let next = dir.join(NEXT);
        if !next.exists() {
            bail!("nothing staged: run `rotate-keys --stage` first");
        }
        let signing = dir.join(SIGNING);
        if signing.exists() {
            let kid = load_key(&signing)?.kid;
            let retired = dir.join(format!("{RETIRED_PREFIX}{}-{kid}.pem", unix_now()));
            fs::rename(&signing, &retired)?;
            report.push(format!("retired the previous signing key to {}", retired.display()));
        }
        fs::rename(&next, &signing)?;
        report.push(format!("key {} now signs new tokens", load_key(&signing)?.kid));
    }
    let cutoff = unix_now().saturating_sub(token_lifetime.as_secs());
    for path in verify_only_paths(dir)? {
        if retired_at(&path).is_some_and(|retired| retired < cutoff) {
            fs::remove_file(&path)?;
            report.push(format!("pruned {}, retired before any valid token was signed", path.display()));
        }
    }
    report.push("restart (or redeploy) every instance to load the keys".to_owned());
    Ok(report.join("\n"))
}

fn verify_only_paths(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        let is_pem = path.extension().is_some_and(|extension| extension == "pem");
        if name == NEXT || (name.starts_with(RETIRED_PREFIX) && is_pem) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

fn retired_at(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix(RETIRED_PREFIX)?.split('-').next()?.parse().ok()
}

fn load_key(path: &Path) -> anyhow::Result<LoadedKey> {
    let pem = fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))?;
    let not_ed25519 = || format!("{} is not a PKCS#8 Ed25519 private key", path.display());
    let pair = rcgen::KeyPair::from_pem(&pem).with_context(not_ed25519)?;
    if pair.algorithm() != &rcgen::PKCS_ED25519 {
        bail!(not_ed25519());
    }
    let encoding = EncodingKey::from_ed_pem(pem.as_bytes()).with_context(not_ed25519)?;
    let x = URL_SAFE_NO_PAD.encode(pair.public_key_raw());
    let decoding = DecodingKey::from_ed_components(&x)?;
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x,
        }),
    };
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid.clone());
    Ok(LoadedKey { kid, encoding, decoding, jwk })
}

/// Writes a fresh Ed25519 private key that only its owner can read.
fn write_new_key(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    crate::tls::write_private(path, key.serialize_pem().as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_generates_a_signing_key_and_production_refuses_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(KeySet::load(dir.path(), Environment::Production).is_err());
        assert!(!dir.path().join(SIGNING).exists(), "production must not generate keys");
        let first = KeySet::load(dir.path(), Environment::Development).expect("generated");
        let again = KeySet::load(dir.path(), Environment::Development).expect("kept");
        assert_eq!(first.signing_kid(), again.signing_kid(), "the key survives restarts");
        assert_eq!(first.jwks().keys.len(), 1);
    }

    #[test]
    fn a_staged_key_verifies_before_it_signs_and_the_old_key_verifies_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = KeySet::load(dir.path(), Environment::Development).expect("keys");
        let old_kid = original.signing_kid().to_owned();

        rotate(dir.path(), Rotation::Stage, Duration::from_mins(15)).expect("stage");
        let staged = KeySet::load(dir.path(), Environment::Production).expect("keys");
        assert_eq!(staged.signing_kid(), old_kid, "staging does not change the signer");
        assert_eq!(staged.jwks().keys.len(), 2, "the staged key is published");

        rotate(dir.path(), Rotation::Promote, Duration::from_mins(15)).expect("promote");
        let promoted = KeySet::load(dir.path(), Environment::Production).expect("keys");
        assert_ne!(promoted.signing_kid(), old_kid);
        assert!(promoted.verifying_key(&old_kid).is_some(), "tokens signed before keep verifying");
    }

    #[test]
    fn retired_keys_are_pruned_once_their_tokens_expired() {
        let dir = tempfile::tempdir().expect("tempdir");
        KeySet::load(dir.path(), Environment::Development).expect("keys");
        let long_ago = dir.path().join(format!("{RETIRED_PREFIX}1000-oldkid.pem"));
        fs::copy(dir.path().join(SIGNING), &long_ago).expect("copy");
        rotate(dir.path(), Rotation::StageAndPromote, Duration::from_mins(15)).expect("rotate");
        let left = verify_only_paths(dir.path()).expect("list");
        assert!(!long_ago.exists(), "retired before any valid token: pruned");
        assert_eq!(left.len(), 1, "the key retired just now stays: {left:?}");
    }
}
