//! Passwords: argon2id hashing off the async workers with a bounded number of
//! hashes at once, and the policy for new passwords (NIST SP 800-63B).

use std::{
    cell::RefCell,
    collections::HashSet,
    panic::{self, AssertUnwindSafe},
    sync::{Arc, LazyLock, Mutex, PoisonError, mpsc},
    thread,
};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::domain::{Email, Password};

/// OWASP's recommended argon2id parameters: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// Hashes and verifies passwords.
///
/// Each hash takes tens of milliseconds of CPU and 19 MiB of memory, so it
/// runs on one of `max_concurrent` threads of its own, never on an async
/// worker. A fixed set of threads also bounds the memory: the allocator
/// keeps a freed 19 MiB block for the thread that used it, so hashing on
/// the blocking pool's ever-changing threads grew the process by 19 MiB a
/// thread (564 MiB after a login benchmark), and now stays at
/// `max_concurrent` × 19 MiB. Before any work, a request must be
/// admitted (`admit`): at most `max_queued` more may wait for their turn,
/// and a request beyond that is refused at once, so a login flood is shed
/// instead of holding request slots that every other route needs.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    threads: HashingThreads,
    admitted: Arc<Semaphore>,
    /// Verified when the account does not exist, so that "no such user"
    /// takes as long as "wrong password": today's parameters, a zero salt
    /// and a zero output that no password produces. Nothing needs hashing
    /// to make it, and its outcome is ignored anyway.
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
    pub fn new(max_concurrent: usize, max_queued: usize) -> anyhow::Result<Self> {
        let params = Params::new(MEMORY_KIB, PASSES, LANES, None).context("argon2 parameters")?;
        let running = max_concurrent.max(1);
        Ok(Self {
            dummy_hash: Arc::from(phc_string(&params, &[0; 16], &[0; 32])?),
            params,
            threads: HashingThreads::start(running)?,
            admitted: Arc::new(Semaphore::new(running + max_queued.max(1))),
        })
    }

    /// A place among the password checks, or `Overloaded` when every place
    /// is taken. Never waits.
    pub fn admit(&self) -> Result<Admitted<'_>, Overloaded> {
        let place = self.admitted.clone().try_acquire_owned().map_err(|_| Overloaded)?;
        Ok(Admitted { hasher: self, _place: place })
    }

    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.threads.run(work).await
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The threads that hash, fed by one queue: a job waits in it until a
/// thread is free. They stop when the last `PasswordHasher` is dropped.
#[derive(Clone)]
struct HashingThreads {
    queue: mpsc::Sender<Job>,
}

impl HashingThreads {
    fn start(count: usize) -> anyhow::Result<Self> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..count {
            let jobs = jobs.clone();
            thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking a job, never while hashing.
                        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = job else { return };
                        // A panicking hash fails its caller, not the thread.
                        let _ = panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .context("starting a hashing thread")?;
        }
        Ok(Self { queue })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (done, result) = oneshot::channel();
        self.queue
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| anyhow::anyhow!("the hashing threads stopped"))?;
        result.await.context("a hashing thread stopped mid-hash")?
    }
}

impl Admitted<'_> {
    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) that records the
    /// parameters, so they can be raised later without breaking old hashes.
    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        self.hash_str(password.expose().to_owned()).await
    }

    async fn hash_str(&self, password: String) -> anyhow::Result<String> {
        let params = self.hasher.params.clone();
        self.hasher.run_blocking(move || hash_phc(&params, password.as_bytes())).await
    }

    /// Checks `password` against `stored`, or against a dummy hash when there
    /// is no stored hash (unknown account, one that only signs in through an
    /// identity provider, or a check the throttle refused), taking the same
    /// time either way.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> anyhow::Result<Verification> {
        let known = stored.is_some();
        let stored = stored.map_or_else(|| self.hasher.dummy_hash.to_string(), str::to_owned);
        let password = password.expose().to_owned();
        let current = self.hasher.params.clone();
        self.hasher
            .run_blocking(move || {
                let hash = PasswordHash::new(&stored)
                    .map_err(|err| anyhow::anyhow!("stored hash is not PHC: {err}"))?;
                if !matches_phc(password.as_bytes(), &hash)? || !known {
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

thread_local! {
    /// A hashing thread's argon2 memory, reused by every hash it computes.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 on this thread's reused memory. The crate's own `hash_password`
/// and `verify_password` allocate 19 MiB per call, which the allocator
/// then keeps (hundreds of MiB after a login benchmark); the crate offers
/// `hash_password_into_with_memory` for exactly this, so the PHC string is
/// assembled and compared here, as the crate itself does.
fn argon2_into(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> anyhow::Result<()> {
    MEMORY.with_borrow_mut(|memory| {
        // Sized for today's parameters; an older hash's size is allocated
        // for it and replaced at the next hash (it is rehashed at login).
        if memory.len() != params.block_count() {
            *memory = vec![Block::default(); params.block_count()];
        }
        argon2
            .hash_password_into_with_memory(password, salt, out, memory.as_mut_slice())
            .map_err(|err| anyhow::anyhow!("argon2: {err}"))
    })
}

/// A new argon2id PHC string for `password`, with a random 16-byte salt.
fn hash_phc(params: &Params, password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    let mut out = [0_u8; 32];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2_into(&argon2, params, password, &salt, &mut out)?;
    phc_string(params, &salt, &out)
}

/// The argon2id PHC string of `salt` and `output` under `params`.
fn phc_string(params: &Params, salt: &[u8], output: &[u8]) -> anyhow::Result<String> {
    let phc = |err| anyhow::anyhow!("PHC string: {err}");
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|err| anyhow::anyhow!("argon2 parameters: {err}"))?,
        salt: Some(Salt::new(salt).map_err(phc)?),
        hash: Some(Output::new(output).map_err(phc)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` is the one `stored` was made from, with the stored
/// algorithm, version and parameters; compared in constant time (`Output`).
fn matches_phc(password: &[u8], stored: &PasswordHash) -> anyhow::Result<bool> {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else { return Ok(false) };
    let algorithm = Algorithm::try_from(stored.algorithm.as_str()).map_err(|err| anyhow::anyhow!("{err}"))?;
    let version =
        stored.version.map(Version::try_from).transpose().map_err(|err| anyhow::anyhow!("{err}"))?;
    let params =
        Params::try_from(stored).map_err(|err| anyhow::anyhow!("stored argon2 parameters: {err}"))?;
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params.clone());
    let mut out = vec![0_u8; expected.len()];
    argon2_into(&argon2, &params, password, salt.as_ref(), &mut out)?;
    Ok(Output::new(&out).is_ok_and(|computed| computed == *expected))
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
    use argon2::{PasswordHasher as _, PasswordVerifier as _};

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
        let hasher = PasswordHasher::new(2, 4).expect("hasher");
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

    /// The PHC strings assembled here are the crate's own, both ways: the
    /// crate verifies ours, and ours verify the crate's.
    #[tokio::test]
    async fn hashes_match_the_argon2_crates_own_both_ways() {
        let hasher = PasswordHasher::new(1, 1).expect("hasher");
        let hasher = hasher.admit().expect("admitted");
        let ours = hasher.hash(&password("correct horse battery")).await.expect("hash");
        let crate_argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default());
        let parsed = PasswordHash::new(&ours).expect("PHC");
        assert!(crate_argon2.verify_password(b"correct horse battery", &parsed).is_ok());
        assert!(crate_argon2.verify_password(b"wrong horse battery", &parsed).is_err());
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(MEMORY_KIB, PASSES, LANES, None).expect("params"),
        )
        .hash_password(b"correct horse battery")
        .expect("hash")
        .to_string();
        let verdict = hasher.verify(&password("correct horse battery"), Some(&theirs)).await.expect("verify");
        assert_eq!(verdict, Verification::Match);
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
        let hasher = PasswordHasher::new(1, 1).expect("hasher");
        let outcome = hasher
            .admit()
            .expect("admitted")
            .verify(&password("correct horse battery"), Some(&weak))
            .await
            .expect("verify");
        assert_eq!(outcome, Verification::MatchNeedsRehash);
    }

    /// A login storm queues for the permits instead of running every hash at
    /// once: never more than `max_concurrent` run, each on a hashing thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_hashes_than_permits_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        let hasher = PasswordHasher::new(2, 4).expect("hasher");
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
        let hasher = PasswordHasher::new(1, 2).expect("hasher");
        let places: Vec<_> = (0..3).map(|_| hasher.admit().expect("a place")).collect();
        assert!(hasher.admit().is_err(), "one running and two waiting: the fourth is refused");
        drop(places);
        assert!(hasher.admit().is_ok());
    }
}
