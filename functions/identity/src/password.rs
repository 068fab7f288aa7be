//! argon2id password hashing (OWASP parameters: 19 MiB, 2 passes, 1 lane). It takes a
//! [`Password`] or a [`PasswordAttempt`], which cannot be printed, and reads their text
//! only to hash it.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use shutter_core::validate::{Password, PasswordAttempt};

use crate::model::PasswordHash;

/// Hashing failed (argon2 refused its input or parameters): a bug, never the user's fault.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn argon2() -> Argon2<'static> {
    #[allow(clippy::expect_used)]
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A new salted hash of `password`.
pub fn hash(password: &Password) -> Result<PasswordHash, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| PasswordHash::new(h.to_string()))
        .map_err(|e| HashError(e.to_string()))
}

/// True when `attempt` matches `stored`. A malformed stored hash never matches.
pub fn verify(attempt: &PasswordAttempt, stored: &PasswordHash) -> bool {
    password_hash::PasswordHash::new(stored.as_str()).is_ok_and(|h| {
        argon2()
            .verify_password(attempt.expose().as_bytes(), &h)
            .is_ok()
    })
}

/// A hash made like every stored one (same algorithm and costs), checked against when
/// there is no account: made once per process, on the first login for a missing user.
fn dummy_hash() -> &'static PasswordHash {
    static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let pw = Password::try_from("dummy-password-for-timing".to_owned())
            .unwrap_or_else(|_| unreachable!());
        hash(&pw).unwrap_or_else(|_| PasswordHash::new(String::new()))
    })
}

/// Spends the same time as a real check, so a login for a missing user is not faster.
pub fn verify_against_dummy(attempt: &PasswordAttempt) {
    let _ = verify(attempt, dummy_hash());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(text: &str) -> PasswordAttempt {
        PasswordAttempt::from(text.to_owned())
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let pw = Password::try_from("correct horse battery".to_owned()).unwrap();
        let h = hash(&pw).unwrap();
        assert!(h.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&attempt("correct horse battery"), &h));
        assert!(!verify(&attempt("wrong horse battery"), &h));
        assert!(!verify(
            &attempt("correct horse battery"),
            &PasswordHash::new("not a hash".to_owned())
        ));
        assert_ne!(h, hash(&pw).unwrap(), "salted");
    }

    #[test]
    fn the_dummy_hash_costs_what_a_stored_one_does() {
        // A login for a missing user checks against the dummy: the same algorithm,
        // version, memory, passes and output length as a real hash is the same work.
        let shape = |h: &PasswordHash| {
            let parsed = password_hash::PasswordHash::new(h.as_str()).unwrap();
            (
                parsed.algorithm.to_string(),
                parsed.version,
                parsed.params.to_string(),
                parsed.hash.map(|o| o.len()),
            )
        };
        let real = hash(&Password::try_from("correct horse battery".to_owned()).unwrap()).unwrap();
        assert_eq!(shape(dummy_hash()), shape(&real));
        assert!(
            dummy_hash()
                .as_str()
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
    }
}
