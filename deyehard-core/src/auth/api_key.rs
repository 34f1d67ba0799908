//! API keys: the credential devices (OpenDTU) and scripts send in `X-API-Key` or
//! `Authorization: Bearer`.
//!
//! A key looks like `dh_<prefix>_<secret>`, e.g. `dh_k3v9q2xa_mf4…` (44 characters):
//! - the *prefix*, 8 lower-case base32 characters (40 random bits), is stored in clear and
//!   shown in the account page so a user can tell their keys apart;
//! - the *secret*, 32 lower-case base32 characters, carries 160 bits from the operating
//!   system's random source.
//!
//! The database stores only [`hash`], the SHA-256 of the whole key in hex. A fast hash is
//! right here, unlike for passwords: a key has at least 128 bits of entropy, so nobody can
//! guess it or brute-force its hash, and a slow hash would only make every ingestion request
//! (one per device per minute) expensive. The server looks a key up by its hash
//! (`…_unscoped`) and then confirms it with [`verify`], which compares in constant time and
//! mints the [`TenantScope`].
//!
//! Legacy keys of the original service (`XXXX-XXXX-XXXX-XXXX`, A–Z and 2–9 without
//! ambiguous characters, about 78 bits) keep working after an import: they are stored
//! hashed with the same [`hash`], and [`legacy_prefix`] gives their display prefix.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::os_random;
use crate::{TenantScope, UserId};

/// The text every key of ours starts with.
pub const KEY_TAG: &str = "dh_";
/// Length of the public prefix, in characters.
pub const PREFIX_LEN: usize = 8;
/// Length of the secret, in characters.
pub const SECRET_LEN: usize = 32;
/// Bits of randomness per character of the prefix and secret (base32).
pub const BITS_PER_CHAR: usize = 5;

/// RFC 4648 base32 alphabet in lower case: no `0`, `1`, `8`, `9`, so no `0`/`o` or `1`/`l`
/// confusion when a key is read out.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

// The secret must carry at least 128 bits.
const _: () = assert!(SECRET_LEN * BITS_PER_CHAR >= 128);

/// A freshly generated key: the plaintext is shown to the user once and then dropped; the
/// prefix and hash are stored.
///
/// Its `Debug` does not show the plaintext.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The whole key, `dh_<prefix>_<secret>`. Show it once, never store or log it.
    pub plaintext: String,
    /// The public prefix (8 characters), for display.
    pub prefix: String,
    /// [`hash`] of the plaintext: the value to store.
    pub hash: String,
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("plaintext", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("hash", &self.hash)
            .finish()
    }
}

/// A key as the store holds it, found by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApiKey {
    /// The owner of the key.
    pub user_id: UserId,
    /// [`hash`] of the key.
    pub hash: String,
    /// Whether the key was revoked (`revoked_at` is set).
    pub revoked: bool,
}

/// Generates a new key from the operating system's random source.
///
/// # Panics
/// Only if the operating system cannot provide randomness.
pub fn generate() -> NewApiKey {
    // 5 random bytes = 40 bits = 8 base32 characters; 20 bytes = 160 bits = 32 characters.
    let prefix = base32(&os_random::<5>());
    let secret = base32(&os_random::<20>());
    let plaintext = format!("{KEY_TAG}{prefix}_{secret}");
    let hash = hash(&plaintext);
    NewApiKey {
        plaintext,
        prefix,
        hash,
    }
}

/// The value stored for a key: SHA-256 of the whole key as presented, in lower-case hex
/// (64 characters). Works on any string, so legacy keys are stored the same way.
pub fn hash(presented: &str) -> String {
    hex::encode(Sha256::digest(presented.as_bytes()))
}

/// The public prefix of a key in our format (`dh_<prefix>_<secret>`), or `None` when the
/// text does not have that shape.
pub fn parse_prefix(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(KEY_TAG)?;
    let (prefix, secret) = rest.split_once('_')?;
    let well_formed =
        |part: &str, len: usize| part.len() == len && part.bytes().all(|b| ALPHABET.contains(&b));
    (well_formed(prefix, PREFIX_LEN) && well_formed(secret, SECRET_LEN)).then_some(prefix)
}

/// The display prefix of a legacy key of the original service (`XXXX-XXXX-XXXX-XXXX`,
/// upper-case letters and digits 2–9): its first group, e.g. `ABCD`. `None` when the text
/// does not have that shape.
pub fn legacy_prefix(presented: &str) -> Option<&str> {
    let groups: Vec<&str> = presented.split('-').collect();
    let legacy_char = |b: u8| b.is_ascii_uppercase() || (b'2'..=b'9').contains(&b);
    let well_formed = groups.len() == 4
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.bytes().all(legacy_char));
    groups.first().copied().filter(|_| well_formed)
}

/// Checks a presented key against the stored key found by its hash and, when it matches and
/// is not revoked, mints the owner's [`TenantScope`].
///
/// The hashes are compared in constant time. `None` for a wrong or revoked key.
pub fn verify(presented: &str, stored: &StoredApiKey) -> Option<TenantScope> {
    let matches: bool = hash(presented)
        .as_bytes()
        .ct_eq(stored.hash.as_bytes())
        .into();
    (matches && !stored.revoked).then(|| TenantScope::new(stored.user_id))
}

/// Base32 (RFC 4648 alphabet, lower case, no padding); a partial last character is filled
/// with zero bits.
fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(BITS_PER_CHAR) * 8);
    // At most 4 left-over bits + 8 new ones are pending at any time.
    let mut pending: u16 = 0;
    let mut bits = 0;
    for &byte in bytes {
        pending = (pending << 8) | u16::from(byte);
        bits += 8;
        while bits >= BITS_PER_CHAR {
            bits -= BITS_PER_CHAR;
            out.push(char::from(ALPHABET[usize::from((pending >> bits) & 0x1f)]));
        }
        pending &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[usize::from((pending << (BITS_PER_CHAR - bits)) & 0x1f)],
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn stored(key: &str, revoked: bool) -> StoredApiKey {
        StoredApiKey {
            user_id: UserId::new(7),
            hash: hash(key),
            revoked,
        }
    }

    #[test]
    fn generated_keys_have_the_documented_format() {
        let key = generate();
        assert_eq!(
            key.plaintext.len(),
            KEY_TAG.len() + PREFIX_LEN + 1 + SECRET_LEN
        );
        assert!(key.plaintext.starts_with(&format!("dh_{}_", key.prefix)));
        assert_eq!(parse_prefix(&key.plaintext), Some(key.prefix.as_str()));
        assert_eq!(key.hash, hash(&key.plaintext));
        assert_eq!(key.hash.len(), 64);
        assert!(
            key.hash
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn the_secret_carries_at_least_128_bits() {
        let unique: HashSet<&u8> = ALPHABET.iter().collect();
        assert_eq!(unique.len(), ALPHABET.len());
        let bits_per_char = usize::try_from(unique.len().ilog2()).unwrap();
        assert_eq!(bits_per_char, BITS_PER_CHAR);
        let key = generate();
        let secret = key.plaintext.rsplit('_').next().unwrap();
        assert_eq!(secret.len(), SECRET_LEN);
        assert!(
            secret.len() * bits_per_char >= 128,
            "{} bits",
            secret.len() * bits_per_char
        );
    }

    #[test]
    fn a_thousand_keys_are_all_different() {
        let mut plaintexts = HashSet::new();
        let mut hashes = HashSet::new();
        let mut prefixes = HashSet::new();
        for _ in 0..1000 {
            let key = generate();
            hashes.insert(key.hash);
            prefixes.insert(key.prefix);
            plaintexts.insert(key.plaintext);
        }
        assert_eq!(plaintexts.len(), 1000);
        assert_eq!(hashes.len(), 1000);
        // 40-bit prefixes: a collision among 1000 has a probability of about 5e-7.
        assert_eq!(prefixes.len(), 1000);
    }

    #[test]
    fn the_characters_are_spread_over_the_alphabet() {
        let mut seen = HashSet::new();
        for _ in 0..50 {
            seen.extend(
                generate().plaintext[KEY_TAG.len()..]
                    .bytes()
                    .filter(|&b| b != b'_'),
            );
        }
        // 2000 draws from 32 characters: missing one by chance has a probability of ~1e-26.
        assert_eq!(seen.len(), 32);
    }

    #[test]
    fn verify_accepts_the_key_and_rejects_wrong_or_revoked_ones() {
        let key = generate();
        let scope = verify(&key.plaintext, &stored(&key.plaintext, false));
        assert_eq!(scope.map(|s| s.user_id()), Some(UserId::new(7)));
        assert_eq!(
            verify(&generate().plaintext, &stored(&key.plaintext, false)),
            None
        );
        assert_eq!(
            verify(
                &key.plaintext[..key.plaintext.len() - 1],
                &stored(&key.plaintext, false)
            ),
            None
        );
        assert_eq!(verify("", &stored(&key.plaintext, false)), None);
        assert_eq!(verify(&key.plaintext, &stored(&key.plaintext, true)), None);
    }

    #[test]
    fn legacy_keys_are_hashed_and_verified_the_same_way() {
        let legacy = "AB3D-EFGH-JK4M-NP7R";
        assert_eq!(legacy_prefix(legacy), Some("AB3D"));
        assert_eq!(parse_prefix(legacy), None);
        let scope = verify(legacy, &stored(legacy, false));
        assert_eq!(scope.map(|s| s.user_id()), Some(UserId::new(7)));
        assert_eq!(verify("ab3d-efgh-jk4m-np7r", &stored(legacy, false)), None);
        for bad in [
            "AB3D-EFGH-JK4M",
            "AB3D-EFGH-JK4M-NP7R-",
            "ab3d-EFGH-JK4M-NP7R",
            "AB1D-EFGH-JK4M-NP7R",
            "ABCDE-FGH-JK4M-NP7R",
            "",
        ] {
            assert_eq!(legacy_prefix(bad), None, "{bad}");
        }
    }

    #[test]
    fn parse_prefix_refuses_other_shapes() {
        let key = generate().plaintext;
        for bad in [
            String::new(),
            "dh_".to_owned(),
            key.replacen("dh_", "xx_", 1),
            key[..key.len() - 1].to_owned(),
            format!("{key}a"),
            key.to_uppercase(),
            format!("dh_abcdefg_{}", "a".repeat(SECRET_LEN)),
            format!("dh_abcdefgh_{}", "1".repeat(SECRET_LEN)),
        ] {
            assert_eq!(parse_prefix(&bad), None, "{bad}");
        }
        assert_eq!(
            parse_prefix(&format!("dh_abcdefgh_{}", "a".repeat(SECRET_LEN))),
            Some("abcdefgh")
        );
    }

    #[test]
    fn hash_is_sha256_hex_of_the_whole_key() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn debug_redacts_the_plaintext() {
        let key = generate();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.plaintext));
        assert!(!shown.contains(key.plaintext.rsplit('_').next().unwrap()));
        assert!(shown.contains("<redacted>") && shown.contains(&key.prefix));
    }

    #[test]
    fn base32_encodes_rfc4648_vectors() {
        // RFC 4648 §10: BASE32("fooba") = "MZXW6YTB".
        assert_eq!(base32(b"fooba"), "mzxw6ytb");
        assert_eq!(base32(&[0u8; 5]), "aaaaaaaa");
        assert_eq!(base32(&[0xffu8; 5]), "77777777");
        assert_eq!(base32(b"f"), "my");
        assert_eq!(base32(b"foob"), "mzxw6yq");
        assert_eq!(base32(b""), "");
    }
}
