//! Authentication primitives, with no I/O: everything the server needs to check who is
//! calling, and nothing that talks to a database or the network.
//!
//! - [`password`]: the password policy (with codes the UI can translate) and argon2id
//!   hashing; also verifies the argon2id and bcrypt hashes of imported accounts.
//! - [`api_key`]: generating, hashing and verifying the API keys devices (OpenDTU) send,
//!   including the legacy `XXXX-XXXX-XXXX-XXXX` keys of the original service.
//! - [`session`]: the HS256 JWT that carries a login for two days, with the user's session
//!   version so that a password change or "log out everywhere" revokes it.
//! - [`onetime`]: sealed (Fernet), time-limited tokens for email verification, password
//!   reset and email change links.
//!
//! Credentials turn into a [`TenantScope`](crate::TenantScope) here and only here:
//! [`api_key::verify`] and [`TenantScope::from_session`](crate::TenantScope::from_session).
//!
//! Password hashing and verification are deliberately slow and synchronous (tens to
//! hundreds of milliseconds of CPU): async callers run them on a blocking thread
//! (`tokio::task::spawn_blocking`). Everything else here is cheap.

pub mod api_key;
pub mod onetime;
pub mod password;
pub mod session;

pub use onetime::TokenError;
pub use password::PolicyError;

use rand::Rng;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;

/// What can go wrong in the authentication primitives, apart from the password policy
/// ([`PolicyError`]) and one-time links ([`TokenError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A stored password hash cannot be used: it is not a PHC argon2id or bcrypt string,
    /// it is damaged, or its cost parameters exceed what this server will compute.
    #[error("the stored password hash cannot be used: {0}")]
    InvalidHash(&'static str),
    /// Computing a password hash failed (for example, the system's random source failed).
    #[error("hashing the password failed: {0}")]
    Hashing(String),
    /// The session secret (`AUTH_SECRET`) is shorter than [`session::MIN_SECRET_LEN`] bytes.
    #[error(
        "the session secret (AUTH_SECRET) is {len} bytes long; it must be at least {min} bytes \
         of random data (for example 64 hex characters from `openssl rand -hex 32`)"
    )]
    WeakSecret {
        /// The length of the secret that was given, in bytes.
        len: usize,
        /// The minimum length in bytes.
        min: usize,
    },
    /// The Fernet key (`ENCRYPTION_KEY`) is not the URL-safe base64 encoding of 32 bytes.
    #[error(
        "the encryption key (ENCRYPTION_KEY) is not a Fernet key: it must be the URL-safe \
         base64 encoding of exactly 32 random bytes (44 characters ending in '=', for example \
         from `openssl rand -base64 32 | tr '+/' '-_'`)"
    )]
    InvalidEncryptionKey,
    /// A session token could not be created.
    #[error("the session token could not be created: {0}")]
    TokenIssue(String),
    /// A session token is not one of ours: bad format, bad signature, another algorithm,
    /// or claims that do not parse.
    #[error("the session token is invalid")]
    InvalidToken,
    /// A session token was ours but its lifetime is over.
    #[error("the session token has expired")]
    ExpiredToken,
}

/// `N` bytes from the operating system's random source.
///
/// # Panics
/// Only if the operating system cannot provide randomness at all, in which case no secret
/// can be made safely (the same contract as `rand::rng()`).
pub(crate) fn os_random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    UnwrapErr(SysRng).fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_random_differs_between_calls() {
        let a: [u8; 32] = os_random();
        let b: [u8; 32] = os_random();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
