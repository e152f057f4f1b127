//! Secrets (passwords, tokens) never reach a log line or a response: every string that leaves
//! the plugin through `log` passes through [`redact`]. Code that learns a secret registers it at
//! once with [`register_secret`].

use parking_lot::RwLock;
use std::sync::LazyLock;

static SECRETS: LazyLock<RwLock<Vec<String>>> = LazyLock::new(|| RwLock::new(Vec::new()));

/// Remembers a secret so that [`redact`] masks it. Empty and very short strings are ignored
/// (masking "a" everywhere would garble every message).
pub fn register_secret(secret: &str) {
    if secret.len() < 4 {
        return;
    }
    let mut secrets = SECRETS.write();
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_string());
    }
}

/// Forgets a secret (a dropped session's token).
pub fn forget_secret(secret: &str) {
    SECRETS.write().retain(|s| s != secret);
}

/// Replaces every registered secret in `text` with `***`.
pub fn redact(text: &str) -> String {
    let secrets = SECRETS.read();
    let mut out = text.to_string();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_secrets_only() {
        register_secret("s3cr3t-password");
        assert_eq!(redact("login with s3cr3t-password ok"), "login with *** ok");
        assert_eq!(redact("nothing here"), "nothing here");
        forget_secret("s3cr3t-password");
        assert_eq!(redact("s3cr3t-password"), "s3cr3t-password");
    }
}
