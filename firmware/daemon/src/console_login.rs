//! The admin password of the box's console: an Argon2id hash (RFC 9106, OWASP parameters:
//! 19 MiB, 2 passes, 1 lane) kept in the identity region of the config disk beside the pair
//! key (never in the replicated config blob, so setting it on a fresh box does not fork the
//! pair's config history). Hashing is slow on purpose and runs on the console UI's thread,
//! never on the daemon's loop.
//!
//! Recovery needs physical presence: booting with `tandem.reset_password=1` on the kernel
//! command line (the boot loader's console) removes the hash, and the console asks for a new
//! password as on first boot. The config is untouched.

use crate::config_store::AnyDevice;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tandem_config::identity::IdentityStore;

use crate::logring::Log;
use crate::pair_service::secure_random;

/// The kernel command-line flag of the recovery path.
pub const RESET_FLAG: &str = "tandem.reset_password";

/// The console's credential, read and written on the UI's thread.
#[derive(Debug)]
pub struct ConsoleCredential {
    store: IdentityStore<AnyDevice>,
    log: Log,
}

fn hasher() -> Result<Argon2<'static>, String> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| format!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

impl ConsoleCredential {
    pub fn new(store: IdentityStore<AnyDevice>, log: Log) -> ConsoleCredential {
        ConsoleCredential { store, log }
    }

    /// Whether an admin password is set (a read error counts as set: the box never falls
    /// back to "no password" because a disk read failed).
    pub fn is_set(&mut self) -> bool {
        match self.store.load_credential() {
            Ok(hash) => hash.is_some(),
            Err(error) => {
                self.log
                    .line(format!("console: cannot read the admin password: {error}"));
                true
            }
        }
    }

    /// Checks a password against the stored hash.
    pub fn verify(&mut self, password: &str) -> bool {
        let Ok(Some(hash)) = self.store.load_credential() else {
            return false;
        };
        match hasher() {
            Ok(argon2) => argon2
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Hashes `password` with a fresh salt and stores it.
    pub fn set(&mut self, password: &str) -> Result<(), String> {
        let mut salt = [0u8; 16];
        secure_random(&mut salt).map_err(|e| format!("no randomness for the salt: {e}"))?;
        let hash = hasher()?
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map_err(|e| format!("hashing: {e}"))?
            .to_string();
        self.store
            .save_credential(Some(&hash))
            .map_err(|e| e.to_string())
    }

    /// A line for the box's log (logins, failures, logouts).
    pub fn log(&self, line: String) {
        self.log.line(line);
    }

    /// The recovery path: removes the password.
    pub fn reset(&mut self) -> Result<(), String> {
        self.store.save_credential(None).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_config::storage::MemDevice;

    fn credential() -> ConsoleCredential {
        let device = AnyDevice::new(Box::new(MemDevice::erased(8192)), "memory");
        ConsoleCredential::new(IdentityStore::new(device, 0), Log::default())
    }

    #[test]
    fn a_set_password_verifies_and_a_wrong_one_does_not() {
        let mut credential = credential();
        assert!(!credential.is_set());
        assert!(!credential.verify(""));
        credential.set("correct horse").unwrap();
        assert!(credential.is_set());
        assert!(credential.verify("correct horse"));
        assert!(!credential.verify("correct horsf"));
        credential.reset().unwrap();
        assert!(!credential.is_set());
        assert!(!credential.verify("correct horse"));
    }

    #[test]
    fn the_stored_hash_is_argon2id_with_a_salt_and_no_password() {
        let mut credential = credential();
        credential.set("hunter2hunter2").unwrap();
        let hash = credential.store.load_credential().unwrap().unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!hash.contains("hunter"));
        credential.set("hunter2hunter2").unwrap();
        let again = credential.store.load_credential().unwrap().unwrap();
        assert_ne!(hash, again, "the same password twice gets two salts");
    }
}
