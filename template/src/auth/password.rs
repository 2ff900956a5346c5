//! Passwords: argon2id hashing off the async workers with a bounded number of
//! hashes at once, and the policy for new passwords (NIST SP 800-63B).

use std::{
    collections::HashSet,
    sync::{Arc, LazyLock},
};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version,
    password_hash::phc::PasswordHash,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::{Email, Password};

/// OWASP's recommended argon2id parameters: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// Hashes and verifies passwords.
///
/// Each hash takes tens of milliseconds of CPU and 19 MiB of memory, so it
/// runs on the blocking pool, never on an async worker, and at most
/// `max_concurrent` run at once. Before any work, a request must be
/// admitted (`admit`): at most `max_queued` more may wait for their turn,
/// and a request beyond that is refused at once, so a login flood is shed
/// instead of holding request slots that every other route needs.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    /// A real hash of a random password: verified when the account does not
    /// exist, so that "no such user" takes as long as "wrong password".
    dummy_hash: Arc<str>,
}

/// Too many password checks are running or waiting; retry shortly.
#[derive(Debug, thiserror::Error)]
#[error("too many password checks at once")]
pub struct Overloaded;

/// A request's place among the password checks: hashing and verifying go
/// through it, and the place is given back when it is dropped.
pub struct Admitted<'a> {
    hasher: &'a PasswordHasher,
    _place: OwnedSemaphorePermit,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    Match,
    /// Right password, but hashed with weaker parameters than today's: store
    /// a new hash now that the plain password is at hand.
    MatchNeedsRehash,
}

impl PasswordHasher {
    pub async fn new(max_concurrent: usize, max_queued: usize) -> anyhow::Result<Self> {
        let params = Params::new(MEMORY_KIB, PASSES, LANES, None).context("argon2 parameters")?;
        let running = max_concurrent.max(1);
        let hasher = Self {
            params,
            running: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(Semaphore::new(running + max_queued.max(1))),
            dummy_hash: Arc::from(""),
        };
        let dummy_hash = hasher.admit()?.hash_str(uuid::Uuid::new_v4().to_string()).await?;
        Ok(Self { dummy_hash: Arc::from(dummy_hash), ..hasher })
    }

    /// A place among the password checks, or `Overloaded` when every place
    /// is taken. Never waits.
    pub fn admit(&self) -> Result<Admitted<'_>, Overloaded> {
        let place = self.admitted.clone().try_acquire_owned().map_err(|_| Overloaded)?;
        Ok(Admitted { hasher: self, _place: place })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let permit = self.running.clone().acquire_owned().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await?
    }
}

impl Admitted<'_> {
    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) that records the
    /// parameters, so they can be raised later without breaking old hashes.
    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        self.hash_str(password.expose().to_owned()).await
    }

    async fn hash_str(&self, password: String) -> anyhow::Result<String> {
        let argon2 = self.hasher.argon2();
        self.hasher
            .run_blocking(move || {
                argon2
                    .hash_password(password.as_bytes())
                    .map(|hash| hash.to_string())
                    .map_err(|err| anyhow::anyhow!("hashing a password: {err}"))
            })
            .await
    }

    /// Checks `password` against `stored`, or against a dummy hash when there
    /// is no stored hash (unknown account, one that only signs in through an
    /// identity provider, or a check the throttle refused), taking the same
    /// time either way.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> anyhow::Result<Verification> {
        let known = stored.is_some();
        let stored = stored.map_or_else(|| self.hasher.dummy_hash.to_string(), str::to_owned);
        let password = password.expose().to_owned();
        let argon2 = self.hasher.argon2();
        let current = self.hasher.params.clone();
        self.hasher
            .run_blocking(move || {
                let hash = PasswordHash::new(&stored)
                    .map_err(|err| anyhow::anyhow!("stored hash is not PHC: {err}"))?;
                if argon2.verify_password(password.as_bytes(), &hash).is_err() || !known {
                    return Ok(Verification::Mismatch);
                }
                Ok(if is_current(&hash, &current) {
                    Verification::Match
                } else {
                    Verification::MatchNeedsRehash
                })
            })
            .await
    }
}

/// Whether `hash` was made with argon2id and at least today's parameters.
fn is_current(hash: &PasswordHash, current: &Params) -> bool {
    let param = |name: &str| hash.params.get_decimal(name).unwrap_or(0);
    hash.algorithm.as_str() == "argon2id"
        && param("m") >= current.m_cost()
        && param("t") >= current.t_cost()
        && param("p") >= current.p_cost()
}

/// The rules a new password must meet, after NIST SP 800-63B: a minimum
/// length, no composition rules, not a commonly used password, not the email.
#[derive(Clone, Copy, Debug)]
pub struct PasswordPolicy {
    pub min_chars: usize,
}

/// The most common passwords, lower-cased (see the file's header).
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect()
});

impl PasswordPolicy {
    /// Why `password` may not become `email`'s password, if it may not.
    pub fn check(&self, password: &Password, email: &Email) -> Result<(), String> {
        let candidate = password.expose();
        if candidate.chars().count() < self.min_chars {
            return Err(format!("must be at least {} characters", self.min_chars));
        }
        let lowered = candidate.to_lowercase();
        if COMMON.contains(lowered.as_str()) {
            return Err("is one of the most common passwords; choose another".to_owned());
        }
        let local_part = email.as_str().split('@').next().unwrap_or_default();
        if lowered == email.as_str() || lowered == local_part {
            return Err("must not be your email address".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(text: &str) -> Password {
        Password::try_from(text.to_owned()).expect("bounded")
    }

    fn email() -> Email {
        Email::try_from("ann.lee@example.com".to_owned()).expect("valid")
    }

    #[test]
    fn the_policy_checks_length_commonness_and_email() {
        let policy = PasswordPolicy { min_chars: 12 };
        assert!(policy.check(&password("correct horse battery"), &email()).is_ok());
        assert!(policy.check(&password("short pass"), &email()).is_err());
        assert!(policy.check(&password("ANN.LEE@EXAMPLE.COM"), &email()).is_err());
        let lenient = PasswordPolicy { min_chars: 8 };
        assert!(lenient.check(&password("Password1"), &email()).is_err(), "common, whatever the case");
        assert!(lenient.check(&password("ann.lee1"), &email()).is_ok());
        assert!(lenient.check(&password("ann.lee"), &email()).is_err());
    }

    #[test]
    fn the_common_list_holds_ten_thousand_passwords() {
        assert_eq!(COMMON.len(), 10_000);
        assert!(COMMON.contains("123456") && COMMON.contains("password"));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hasher = PasswordHasher::new(2, 4).await.expect("hasher");
        let hasher = hasher.admit().expect("admitted");
        let hash = hasher.hash(&password("correct horse battery")).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        let right = hasher.verify(&password("correct horse battery"), Some(&hash)).await.expect("verify");
        assert_eq!(right, Verification::Match);
        let wrong = hasher.verify(&password("wrong horse battery"), Some(&hash)).await.expect("verify");
        assert_eq!(wrong, Verification::Mismatch);
        let unknown = hasher.verify(&password("correct horse battery"), None).await.expect("verify");
        assert_eq!(unknown, Verification::Mismatch);
    }

    #[tokio::test]
    async fn hashes_with_weaker_parameters_ask_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).expect("params"),
        )
        .hash_password(b"correct horse battery")
        .expect("hash")
        .to_string();
        let hasher = PasswordHasher::new(1, 1).await.expect("hasher");
        let outcome = hasher
            .admit()
            .expect("admitted")
            .verify(&password("correct horse battery"), Some(&weak))
            .await
            .expect("verify");
        assert_eq!(outcome, Verification::MatchNeedsRehash);
    }

    /// A login storm queues for the permits instead of running every hash at
    /// once: never more than `max_concurrent` run, each on the blocking pool.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_hashes_than_permits_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        let hasher = PasswordHasher::new(2, 4).await.expect("hasher");
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (hasher, running, most) = (hasher.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    hasher
                        .run_blocking(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            running.fetch_sub(1, Ordering::SeqCst);
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("joined").expect("ran");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    /// Admission never waits: with every running and waiting place taken,
    /// the next request is refused at once, and admitted again as soon as a
    /// place is given back.
    #[tokio::test]
    async fn admission_beyond_the_queue_is_refused_at_once() {
        let hasher = PasswordHasher::new(1, 2).await.expect("hasher");
        let places: Vec<_> = (0..3).map(|_| hasher.admit().expect("a place")).collect();
        assert!(hasher.admit().is_err(), "one running and two waiting: the fourth is refused");
        drop(places);
        assert!(hasher.admit().is_ok());
    }
}
