//! Passwords: the policy a new password must meet ([`check_policy`]) and the hashes we
//! store ([`hash_password`], [`verify_password`], [`needs_rehash`]).
//!
//! New hashes are argon2id PHC strings with the argon2 crate's defaults (m = 19456 KiB,
//! t = 2, p = 1, the OWASP minimum). [`verify_password`] also accepts argon2id hashes with
//! other parameters (the original service used `m=65536,t=3,p=4`) and bcrypt hashes
//! (`$2a$`, `$2b$`, `$2y$`) of old imported accounts. After a successful login the server
//! asks [`needs_rehash`] and, when it says so, stores a fresh [`hash_password`] result, so
//! imported accounts move to our parameters one login at a time. A login for an unknown
//! account calls [`verify_dummy`] instead, so it takes as long as a wrong password.
//!
//! Hashing and verifying are CPU-heavy and synchronous. Measured on a 2-vCPU machine in a
//! release build: about 30–45 ms with our parameters, 220 ms for the original service's
//! argon2id parameters, 360 ms for bcrypt cost 12; debug builds are many times slower. The
//! server must call them through `tokio::task::spawn_blocking`, never on an async worker.
//!
//! To bound the work a damaged or hostile stored hash can cause, verification refuses
//! argon2 costs above [`MAX_M_COST_KIB`] / [`MAX_T_COST`] / [`MAX_P_COST`] and bcrypt costs
//! above [`MAX_BCRYPT_COST`] with [`AuthError::InvalidHash`].

mod policy;

pub use policy::{
    MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, PolicyError, check_policy, check_policy_all,
};

use std::fmt;

use argon2::password_hash::Error as PhcError;
use argon2::{
    ARGON2ID_IDENT, Argon2, Params, PasswordHash as Phc, PasswordHasher, PasswordVerifier, Version,
};

use super::AuthError;

/// The largest argon2 memory cost (KiB) [`verify_password`] computes: 256 MiB.
pub const MAX_M_COST_KIB: u32 = 256 * 1024;
/// The largest argon2 time cost (passes) [`verify_password`] computes.
pub const MAX_T_COST: u32 = 10;
/// The largest argon2 parallelism [`verify_password`] accepts.
pub const MAX_P_COST: u32 = 16;
/// The largest bcrypt cost [`verify_password`] computes (2¹⁵ rounds, about 3 s).
pub const MAX_BCRYPT_COST: u32 = 15;

/// An argon2id PHC string as it is stored in the `users` table.
///
/// Its `Debug` shows only the algorithm and parameters, never the salt and hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The PHC string, consuming the value.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<PasswordHash> for String {
    fn from(hash: PasswordHash) -> Self {
        hash.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // "$argon2id$v=19$m=19456,t=2,p=1$salt$hash": keep the first four `$` fields.
        let shown: Vec<&str> = self.0.split('$').take(4).collect();
        write!(f, "PasswordHash(\"{}$…\")", shown.join("$"))
    }
}

/// Hashes a password with argon2id and a fresh random salt (our parameters: the argon2
/// crate's defaults, m = 19456 KiB, t = 2, p = 1).
///
/// CPU-heavy and synchronous: call it through `spawn_blocking` from async code. It does
/// not check the policy; call [`check_policy`] first for passwords chosen by a user.
///
/// # Errors
/// [`AuthError::Hashing`] if the salt cannot be generated or argon2 fails.
pub fn hash_password(password: &str) -> Result<PasswordHash, AuthError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|phc| PasswordHash(phc.to_string()))
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// Checks a password against a stored hash: an argon2id PHC string with any parameters
/// within the limits of this module, or a bcrypt hash (`$2a$`, `$2b$`, `$2y$`; bcrypt only
/// looks at the first 72 bytes of a password, as the systems that wrote them did).
///
/// CPU-heavy and synchronous: call it through `spawn_blocking` from async code. The
/// comparison of the computed and stored hash is constant-time.
///
/// Returns `Ok(false)` for a wrong password.
///
/// # Errors
/// [`AuthError::InvalidHash`] when the stored string is not a usable hash (unknown scheme,
/// damaged, costs above the limits). It never panics on bad input.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, AuthError> {
    if is_bcrypt(phc) {
        return verify_bcrypt(password, phc);
    }
    let parsed = parse_argon2id(phc)?;
    let params =
        Params::try_from(&parsed).map_err(|_| AuthError::InvalidHash("bad argon2 parameters"))?;
    if params.m_cost() > MAX_M_COST_KIB
        || params.t_cost() > MAX_T_COST
        || params.p_cost() > MAX_P_COST
    {
        return Err(AuthError::InvalidHash(
            "argon2 costs are above this server's limits",
        ));
    }
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(PhcError::PasswordInvalid) => Ok(false),
        Err(_) => Err(AuthError::InvalidHash(
            "argon2 could not use the stored hash",
        )),
    }
}

/// Whether a stored hash should be replaced by a fresh [`hash_password`] result after the
/// next successful login: true for bcrypt, for argon2 hashes whose algorithm, version,
/// parameters or output length differ from ours, and for anything unreadable.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = parse_argon2id(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    let ours = Params::DEFAULT;
    let same = parsed.version == Some(Version::V0x13.into())
        && params.m_cost() == ours.m_cost()
        && params.t_cost() == ours.t_cost()
        && params.p_cost() == ours.p_cost()
        && params.output_len() == Some(Params::DEFAULT_OUTPUT_LEN)
        && params.keyid().is_empty()
        && params.data().is_empty();
    !same
}

/// A hash with our parameters of a throw-away text, for [`verify_dummy`].
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$txQ+Ne6hxNPhs7fy48FnxQ$d7370cemosdEAsDt3Xy4izA9dsCr1flH2pD2X4r6QGM";

/// Spends the time of one [`verify_password`] with our parameters and always fails.
///
/// Call it when a login names an unknown (or deactivated) account, so that the answer takes
/// as long as for a known account with a wrong password and response times do not reveal
/// which email addresses are registered. CPU-heavy like [`verify_password`].
pub fn verify_dummy(password: &str) {
    // The result is irrelevant: no password is known to match this hash, and the caller
    // rejects the login whatever happens here.
    let _ = verify_password(password, DUMMY_HASH);
}

/// bcrypt hashes start with `$2a$`, `$2b$`, `$2x$` or `$2y$`.
fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| hash.starts_with(p))
}

fn verify_bcrypt(password: &str, hash: &str) -> Result<bool, AuthError> {
    // `$2b$12$…`: the cost is the two digits after the second `$`.
    let cost = hash
        .get(4..6)
        .and_then(|c| c.parse::<u32>().ok())
        .ok_or(AuthError::InvalidHash("bcrypt hash without a cost"))?;
    if cost > MAX_BCRYPT_COST {
        return Err(AuthError::InvalidHash(
            "bcrypt cost is above this server's limit",
        ));
    }
    bcrypt::verify(password, hash).map_err(|_| AuthError::InvalidHash("damaged bcrypt hash"))
}

fn parse_argon2id(phc: &str) -> Result<Phc, AuthError> {
    let parsed = Phc::new(phc).map_err(|_| AuthError::InvalidHash("not a PHC string"))?;
    if parsed.algorithm != ARGON2ID_IDENT {
        return Err(AuthError::InvalidHash("not an argon2id or bcrypt hash"));
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(AuthError::InvalidHash("PHC string without salt or hash"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::Algorithm;

    /// An argon2id hash with the original service's parameters (m=65536, t=3, p=4).
    fn original_service_hash(password: &str) -> String {
        let params = Params::new(65536, 3, 4, None).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(password.as_bytes(), b"saltsaltsaltsalt")
            .unwrap()
            .to_string()
    }

    #[test]
    fn hash_then_verify_round_trips_and_rejects_a_wrong_password() {
        let hash = hash_password("Correct-Horse-9").unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(verify_password("Correct-Horse-9", hash.as_str()), Ok(true));
        assert_eq!(verify_password("correct-horse-9", hash.as_str()), Ok(false));
        assert!(!needs_rehash(hash.as_str()));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        let a = hash_password("Same-Password-1").unwrap();
        let b = hash_password("Same-Password-1").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn debug_hides_salt_and_hash() {
        let hash = hash_password("Debug-Me-42").unwrap();
        let salt_and_hash = hash.as_str().rsplitn(3, '$').take(2).collect::<Vec<_>>();
        let shown = format!("{hash:?}");
        assert_eq!(shown, "PasswordHash(\"$argon2id$v=19$m=19456,t=2,p=1$…\")");
        for part in salt_and_hash {
            assert!(!shown.contains(part));
        }
    }

    #[test]
    fn the_dummy_hash_costs_what_ours_do_and_matches_nothing_common() {
        assert!(!needs_rehash(DUMMY_HASH));
        assert_eq!(verify_password("Password1", DUMMY_HASH), Ok(false));
        verify_dummy("");
    }

    #[test]
    fn original_service_parameters_verify_and_need_rehash() {
        let phc = original_service_hash("Sonnenschein7");
        assert!(phc.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"));
        assert_eq!(verify_password("Sonnenschein7", &phc), Ok(true));
        assert!(needs_rehash(&phc));
    }

    #[test]
    fn bcrypt_hashes_verify_and_need_rehash() {
        let phc = bcrypt::hash("Legacy-Pass-1", 4).unwrap();
        assert!(phc.starts_with("$2b$04$"));
        assert_eq!(verify_password("Legacy-Pass-1", &phc), Ok(true));
        assert_eq!(verify_password("Legacy-Pass-2", &phc), Ok(false));
        assert!(needs_rehash(&phc));
        // The `$2y$` spelling (PHP) of the same hash verifies too.
        let php = phc.replacen("$2b$", "$2y$", 1);
        assert_eq!(verify_password("Legacy-Pass-1", &php), Ok(true));
    }

    #[test]
    fn excessive_costs_are_refused_before_any_work() {
        let bcrypt31 = format!("$2b$31${}", "a".repeat(53));
        assert!(matches!(
            verify_password("x", &bcrypt31),
            Err(AuthError::InvalidHash(_))
        ));
        let huge_m = "$argon2id$v=19$m=4194304,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$\
                      AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(matches!(
            verify_password("x", huge_m),
            Err(AuthError::InvalidHash(_))
        ));
        let many_passes = huge_m.replace("m=4194304,t=3", "m=1024,t=1000");
        assert!(matches!(
            verify_password("x", &many_passes),
            Err(AuthError::InvalidHash(_))
        ));
    }

    #[test]
    fn garbage_hashes_are_errors_not_panics() {
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::DEFAULT)
            .hash_password_with_salt(b"pw", b"saltsaltsaltsalt")
            .unwrap()
            .to_string();
        let truncated = hash_password("Truncate-Me-1").unwrap().into_string();
        let no_hash = truncated
            .rsplit_once('$')
            .map(|(head, _)| head.to_owned())
            .unwrap();
        for bad in [
            "",
            "$",
            "plaintext",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=abc,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            "$argon2id$v=19$m=1,t=0,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo",
            "$argon2id$v=99$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=19456,t=2,p=1$!!!$???",
            "$2b$",
            "$2b$xx$",
            "$2b$10$short",
            "$2b$10$ääääääääääääääääääääääääääääääääääääääääääääääääääää",
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            &argon2i,
            &no_hash,
        ] {
            assert!(
                matches!(verify_password("pw", bad), Err(AuthError::InvalidHash(_))),
                "{bad:?} should be an invalid hash"
            );
            assert!(needs_rehash(bad), "{bad:?}");
        }
    }
}
