//! Password hashing and checking (argon2id), bounded.
//!
//! Each hash takes ~19 MiB and tens of milliseconds of a core, so a burst of log-ins must not
//! run them all at once: a fixed set of threads (one per core) does every hash, fed by a
//! bounded queue. Past the queue, a log-in or sign-up gets 503 with `Retry-After` at once
//! instead of memory. Fixed threads also keep the allocator's per-thread arenas to that few,
//! so the memory a burst took is reused by the next one rather than held by hundreds of
//! blocking-pool threads.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use confab_core::input::Password;
use confab_core::{DomainError, ErrorCode};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

/// Hashes waiting per hashing thread before callers are turned away.
const QUEUE_PER_THREAD: usize = 32;

pub struct Passwords {
    jobs: SyncSender<Job>,
}

fn busy() -> DomainError {
    DomainError::new(ErrorCode::Unavailable, "too many sign-ins at once; try again in a moment")
}

/// A hash of a random password, checked when a log-in names no account, so that a wrong
/// username takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(b"decoy-password", &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

impl Passwords {
    /// `threads` hashing threads (0: one per core).
    pub fn new(threads: usize) -> Passwords {
        let n = if threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { threads };
        let (jobs, rx) = sync_channel::<Job>(n * QUEUE_PER_THREAD);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("confab-hash-{i}")).spawn(move || loop {
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

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, DomainError> {
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
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default().hash_password(p.as_str().as_bytes(), &salt).map(|h| h.to_string())
        })
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
            let ok = PasswordHash::new(h).is_ok_and(|h| Argon2::default().verify_password(p.as_bytes(), &h).is_ok());
            ok && real
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_a_full_queue_is_refused_not_grown() {
        let p = std::sync::Arc::new(Passwords::new(1));
        let h = p.hash(Password::parse("correct horse battery").unwrap()).await.unwrap();
        assert!(p.verify("correct horse battery".into(), Some(h.clone())).await.unwrap());
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
        let refused = results.iter().filter(|r| r.as_ref().is_err_and(|e| e.code == ErrorCode::Unavailable)).count();
        assert!(refused >= 19, "{refused} refused");
        assert!(results.iter().filter(|r| r.is_ok()).count() <= QUEUE_PER_THREAD + 1);
    }
}
