//! Password hashing and checking (argon2id), bounded.
//!
//! Each hash takes ~19 MiB and tens of milliseconds of a core, so a burst of log-ins must not
//! run them all at once: a fixed set of threads (one per core) does every hash, fed by a
//! bounded queue. Past the queue, a log-in or sign-up gets 503 with `Retry-After` at once
//! instead of memory. Each thread hashes in one block of memory of its own, allocated once and
//! reused (argon2's `hash_password_into_with_memory`), so a burst of log-ins costs no memory
//! beyond that (the allocator would otherwise keep a freed 19 MiB block per thread and per
//! size class, which measured 100+ MB after a few hundred hashes).

use argon2::password_hash::{rand_core::OsRng, Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use confab_core::input::Password;
use confab_core::{DomainError, ErrorCode};
use std::cell::RefCell;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

/// Hashes waiting per hashing thread before callers are turned away.
const QUEUE_PER_THREAD: usize = 32;

pub struct Passwords {
    jobs: SyncSender<Job>,
}

fn busy() -> DomainError {
    DomainError::new(
        ErrorCode::Unavailable,
        "too many sign-ins at once; try again in a moment",
    )
}

/// Most memory a stored hash may ask for (KiB): a hash from elsewhere with a larger `m` is
/// refused rather than allowed to make a thread allocate it.
const MAX_M_COST: u32 = 64 * 1024;

thread_local! {
    /// This hashing thread's argon2 memory, grown to the largest cost seen and kept.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs argon2 with `params` in this thread's memory block.
fn hash_into(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    pwd: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    if params.m_cost() > MAX_M_COST {
        return Err(argon2::Error::MemoryTooMuch);
    }
    let argon = Argon2::new(algorithm, version, params);
    let n = argon.params().block_count();
    MEMORY.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() < n {
            m.resize(n, Block::default());
        }
        argon.hash_password_into_with_memory(pwd, salt, out, &mut m[..n])
    })
}

/// A new PHC hash string of `pwd` (argon2id, default parameters, random salt).
fn new_hash(pwd: &[u8]) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut raw_salt = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut raw_salt).map_err(|e| e.to_string())?;
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hash_into(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        pwd,
        salt_bytes,
        &mut out,
    )
    .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e: argon2::password_hash::Error| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `pwd` matches the PHC string `phc` (compared in constant time).
fn matches(pwd: &[u8], phc: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(want)) = (h.salt, h.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(h.algorithm) else {
        return false;
    };
    let version = match h.version.map(Version::try_from) {
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
        None => Version::default(),
    };
    let Ok(params) = Params::try_from(&h) else {
        return false;
    };
    let mut raw_salt = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut raw_salt) else {
        return false;
    };
    let mut out = vec![0u8; want.len()];
    if hash_into(algorithm, version, params, pwd, salt_bytes, &mut out).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|got| got == want)
}

/// A hash of a random password, checked when a log-in names no account, so that a wrong
/// username takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| new_hash(b"decoy-password").unwrap_or_default())
}

impl Passwords {
    /// `threads` hashing threads (0: one per core).
    pub fn new(threads: usize) -> Passwords {
        let n = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let (jobs, rx) = sync_channel::<Job>(n * QUEUE_PER_THREAD);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("confab-hash-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Passwords { jobs }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(busy()),
            Err(TrySendError::Disconnected(_)) => return Err(DomainError::internal()),
        }
        rx.await.map_err(|_| DomainError::internal())
    }

    /// The PHC string of a new hash of `p`.
    pub async fn hash(&self, p: Password) -> Result<String, DomainError> {
        self.run(move || new_hash(p.as_str().as_bytes()))
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "argon2 hashing failed");
                DomainError::internal()
            })
    }

    /// Whether `p` matches `hash`; with no hash, a decoy is checked (same cost) and false returned.
    pub async fn verify(&self, p: String, hash: Option<String>) -> Result<bool, DomainError> {
        self.run(move || {
            let real = hash.is_some();
            let h = hash.as_deref().unwrap_or_else(|| decoy_hash());
            matches(p.as_bytes(), h) && real
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Ours verify with the crate's own verifier...
        let ours = new_hash(b"pw one").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"pw one", &parsed)
            .is_ok());
        // ...and the crate's (hashes stored before this change) verify with ours.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"pw two", &salt)
            .unwrap()
            .to_string();
        assert!(matches(b"pw two", &theirs));
        assert!(!matches(b"pw three", &theirs));
        assert!(!matches(b"pw two", "not a hash"));
        // A stored hash that asks for more memory than the cap is refused, not allocated.
        let greedy = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(MAX_M_COST * 2, 1, 1, None).unwrap(),
        );
        let big = PasswordHash::generate(greedy, b"pw", salt.as_salt());
        if let Ok(big) = big {
            assert!(!matches(b"pw", &big.to_string()));
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_a_full_queue_is_refused_not_grown() {
        let p = std::sync::Arc::new(Passwords::new(1));
        let h = p
            .hash(Password::parse("correct horse battery").unwrap())
            .await
            .unwrap();
        assert!(p
            .verify("correct horse battery".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!p.verify("wrong".into(), Some(h.clone())).await.unwrap());
        assert!(!p.verify("decoy-password".into(), None).await.unwrap());
        // One thread, QUEUE_PER_THREAD waiting: more at once are turned away.
        let many: Vec<_> = (0..QUEUE_PER_THREAD + 20)
            .map(|_| {
                let (p, h) = (p.clone(), h.clone());
                tokio::spawn(async move { p.verify("x".into(), Some(h)).await })
            })
            .collect();
        let mut results = Vec::new();
        for t in many {
            results.push(t.await.unwrap());
        }
        let refused = results
            .iter()
            .filter(|r| r.as_ref().is_err_and(|e| e.code == ErrorCode::Unavailable))
            .count();
        assert!(refused >= 19, "{refused} refused");
        assert!(results.iter().filter(|r| r.is_ok()).count() <= QUEUE_PER_THREAD + 1);
    }
}
