//! The plugin's global parameters (`params.get`; the fields are in `docs/abi.md`, "Global
//! parameters"), one row per field in `global_params`, the value as JSON.
//!
//! The service password is never stored in plain text (RM keeps its stored passwords encrypted
//! too): its row holds `{"encrypted": "chacha20poly1305:v1:<base64 of nonce ‖ ciphertext ‖
//! tag>"}`, sealed with ChaCha20-Poly1305 (ring, already in the build for TLS) under a 256-bit
//! key kept **outside the database**, in the key file beside it: `<database file>.key` (e.g.
//! `escola.db.key`), 64 hex digits, created with mode 0600 the first time a password is stored.
//! Whoever copies the database without the key file cannot read the password; losing the key
//! file means typing the password again. An in-memory database keeps its key in memory.
//!
//! [`SchoolDb::params`] answers the plain values (the host hands them to the plugin, which needs
//! the password to log in); [`SchoolDb::params_for_display`] masks the password for screens and
//! logs. A plain-text password left by an earlier host-sim is read as it is and encrypted on the
//! next write of any parameter. Connections run with `secure_delete`, so the replaced plain text
//! does not linger in free pages of the file.

use super::{DbError, DbResult, SchoolDb};
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS global_params (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// What [`SchoolDb::params_for_display`] shows instead of a password.
pub const PASSWORD_MASK: &str = "********";

/// The parameters stored encrypted.
const SECRET_PARAMS: [&str; 1] = ["service_password"];

const SCHEME: &str = "chacha20poly1305:v1:";

/// The key file of the database at `db_path`: `<file name>.key` in the same folder.
pub fn key_file_path(db_path: &Path) -> PathBuf {
    let mut name = db_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".key");
    db_path.with_file_name(name)
}

fn is_secret(name: &str) -> bool {
    SECRET_PARAMS.contains(&name)
}

fn aad(name: &str) -> Vec<u8> {
    format!("host-sim global_params {name}").into_bytes()
}

fn random_bytes<const N: usize>() -> DbResult<[u8; N]> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| DbError::storage("não foi possível gerar bytes aleatórios para a chave"))?;
    Ok(out)
}

fn sealing_key(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("a 32-byte key"))
}

fn encrypt(key: &[u8; 32], name: &str, value: &Value) -> DbResult<Value> {
    let nonce = random_bytes::<NONCE_LEN>()?;
    let mut in_out = serde_json::to_vec(value)?;
    sealing_key(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(name)),
            &mut in_out,
        )
        .map_err(|_| DbError::storage(format!("não foi possível cifrar o parâmetro {name}")))?;
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&in_out);
    Ok(json!({
        "encrypted": format!("{SCHEME}{}", base64::engine::general_purpose::STANDARD.encode(sealed))
    }))
}

/// The sealed text of a stored value, when it is an encrypted one.
fn sealed_text(stored: &Value) -> Option<&str> {
    stored.as_object()?.get("encrypted")?.as_str()
}

fn decrypt(key: &[u8; 32], name: &str, sealed: &str, key_path: &str) -> DbResult<Value> {
    let unreadable = || {
        DbError::storage(format!(
            "o parâmetro {name} está cifrado e não pôde ser decifrado com a chave {key_path} (chave trocada ou dado corrompido): informe o valor novamente"
        ))
    };
    let b64 = sealed.strip_prefix(SCHEME).ok_or_else(unreadable)?;
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| unreadable())?;
    if bytes.len() < NONCE_LEN {
        return Err(unreadable());
    }
    let mut in_out = bytes.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| unreadable())?;
    let plain = sealing_key(key)
        .open_in_place(nonce, Aad::from(aad(name)), &mut in_out)
        .map_err(|_| unreadable())?;
    serde_json::from_slice(plain).map_err(|_| unreadable())
}

fn parse_key(text: &str, path: &Path) -> DbResult<[u8; 32]> {
    let hex = text.trim();
    let corrupt = || {
        DbError::storage(format!(
            "o arquivo de chave {} está corrompido (esperados 64 dígitos hexadecimais)",
            path.display()
        ))
    };
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(corrupt());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| corrupt())?;
    }
    Ok(key)
}

/// Writes a new key file with mode 0600, atomically: the content goes to a private temporary
/// file that is then hard-linked to the final name, which fails when another process created
/// the key first (then its key is the one used).
fn create_key_file(path: &Path) -> DbResult<()> {
    let key = random_bytes::<32>()?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let tag: String = random_bytes::<6>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tmp = path.with_file_name(format!(
        ".{}.{}-{tag}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(format!("{hex}\n").as_bytes())?;
        f.sync_all()
    };
    let result = write().and_then(|()| match std::fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&tmp);
    result.map_err(|e| {
        DbError::storage(format!(
            "não foi possível criar o arquivo de chave {}: {e}",
            path.display()
        ))
    })
}

impl SchoolDb {
    /// Where this database's key lives, for messages.
    fn key_location(&self) -> String {
        match &self.path {
            Some(p) => key_file_path(p).display().to_string(),
            None => "(memória)".into(),
        }
    }

    /// The key of the encrypted parameters; created (file 0600, or in memory) when `create`.
    fn params_key(&self, create: bool) -> DbResult<Option<[u8; 32]>> {
        let Some(db_path) = &self.path else {
            if !create && self.memory_key.get().is_none() {
                return Ok(None);
            }
            if self.memory_key.get().is_none() {
                let _ = self.memory_key.set(random_bytes::<32>()?);
            }
            return Ok(self.memory_key.get().copied());
        };
        let path = key_file_path(db_path);
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_key(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                create_key_file(&path)?;
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    DbError::storage(format!("não foi possível ler {}: {e}", path.display()))
                })?;
                parse_key(&text, &path).map(Some)
            }
            Err(e) => Err(DbError::storage(format!(
                "não foi possível ler o arquivo de chave {}: {e}",
                path.display()
            ))),
        }
    }

    /// Sets one parameter (null removes it); see [`SchoolDb::merge_params`].
    pub fn set_param(&self, name: &str, value: &Value) -> DbResult<()> {
        let mut one = Map::new();
        one.insert(name.to_string(), value.clone());
        self.merge_params(&Value::Object(one))
    }

    /// The same as [`SchoolDb::merge_params`] (the name the seeds and older tests use).
    pub fn set_params(&self, values: &Value) -> DbResult<()> {
        self.merge_params(values)
    }

    /// Merges a JSON object into the stored parameters, field by field, in one transaction:
    /// each given field replaces the stored one, `null` removes it, fields not given stay. The
    /// caller validates the values first (through the plugin's `configure validate`): nothing
    /// here checks them. The service password is stored encrypted, and a plain-text one left
    /// by an earlier host-sim is encrypted now.
    pub fn merge_params(&self, values: &Value) -> DbResult<()> {
        let obj = values
            .as_object()
            .ok_or_else(|| DbError::invalid("os parâmetros globais devem ser um objeto JSON"))?;
        let needs_key =
            obj.iter().any(|(k, v)| is_secret(k) && !v.is_null()) || self.plain_secrets_stored()?;
        let key = if needs_key {
            self.params_key(true)?
        } else {
            None
        };
        let tx = self.immediate()?;
        for (name, value) in obj {
            Self::write_param(&tx, key.as_ref(), name, value)?;
        }
        // Encrypt a plain-text secret an earlier host-sim stored.
        for name in SECRET_PARAMS {
            if let Some(stored) = Self::stored_param(&tx, name)? {
                if sealed_text(&stored).is_none() {
                    Self::write_param(&tx, key.as_ref(), name, &stored)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn write_param(
        conn: &Connection,
        key: Option<&[u8; 32]>,
        name: &str,
        value: &Value,
    ) -> DbResult<()> {
        if value.is_null() {
            conn.execute("DELETE FROM global_params WHERE name = ?1", params![name])?;
            return Ok(());
        }
        let stored = if is_secret(name) {
            let key = key.ok_or_else(|| {
                DbError::storage(format!("sem chave para cifrar o parâmetro {name}"))
            })?;
            encrypt(key, name, value)?
        } else {
            value.clone()
        };
        conn.execute(
            "INSERT OR REPLACE INTO global_params (name, value) VALUES (?1, ?2)",
            params![name, serde_json::to_string(&stored)?],
        )?;
        Ok(())
    }

    fn stored_param(conn: &Connection, name: &str) -> DbResult<Option<Value>> {
        let text: Option<String> = conn
            .query_row(
                "SELECT value FROM global_params WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match text {
            Some(t) => Some(serde_json::from_str(&t)?),
            None => None,
        })
    }

    fn plain_secrets_stored(&self) -> DbResult<bool> {
        for name in SECRET_PARAMS {
            if let Some(stored) = Self::stored_param(&self.conn, name)? {
                if sealed_text(&stored).is_none() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn stored_params(&self) -> DbResult<Map<String, Value>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, value FROM global_params ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Map::new();
        for row in rows {
            let (k, v) = row?;
            out.insert(k, serde_json::from_str(&v)?);
        }
        Ok(out)
    }

    /// The stored parameters with the plain values, the password decrypted: the answer of
    /// `params.get` (the plugin needs the password to log in). Never print it; screens and logs
    /// use [`SchoolDb::params_for_display`].
    pub fn params(&self) -> DbResult<Map<String, Value>> {
        let mut out = self.stored_params()?;
        for name in SECRET_PARAMS {
            let Some(sealed) = out.get(name).and_then(sealed_text).map(str::to_string) else {
                continue;
            };
            let key = self.params_key(false)?.ok_or_else(|| {
                DbError::storage(format!(
                    "o parâmetro {name} está cifrado, mas a chave {} não foi encontrada: informe o valor novamente",
                    self.key_location()
                ))
            })?;
            let plain = decrypt(&key, name, &sealed, &self.key_location())?;
            out.insert(name.to_string(), plain);
        }
        Ok(out)
    }

    /// The stored parameters for a screen or a log: the password as [`PASSWORD_MASK`] (never
    /// decrypted here, so this works without the key file).
    pub fn params_for_display(&self) -> DbResult<Map<String, Value>> {
        let mut out = self.stored_params()?;
        for name in SECRET_PARAMS {
            if let Some(v) = out.get_mut(name) {
                let empty = v.as_str().is_some_and(str::is_empty);
                if !empty {
                    *v = Value::String(PASSWORD_MASK.into());
                }
            }
        }
        Ok(out)
    }

    /// Points the global parameters at a TAE base URL (`<base>/identityintegration`, `<base>`),
    /// with the service user and password; merges like [`SchoolDb::merge_params`].
    pub fn configure_tae(
        &self,
        base_url: &str,
        service_user: &str,
        service_password: &str,
    ) -> DbResult<()> {
        let base = base_url.trim_end_matches('/');
        self.merge_params(&json!({
            "auth_url": format!("{base}/identityintegration"),
            "api_url": base,
            "web_login_url": format!("{base}/webapptotvssign/#/auth/login?external=true"),
            "service_user": service_user,
            "service_password": service_password,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "Senha-Secreta-do-Servico-7731";

    fn file_bytes_contain(dir: &Path, needle: &[u8]) -> Vec<String> {
        let mut hits = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(p.display().to_string());
            }
        }
        hits
    }

    #[test]
    fn merge_keeps_other_fields_and_null_removes() {
        let db = SchoolDb::in_memory().unwrap();
        db.merge_params(&json!({"api_url": "http://127.0.0.1:1", "max_concurrency": 8}))
            .unwrap();
        db.merge_params(&json!({"max_concurrency": 4, "witness_count": 1}))
            .unwrap();
        let p = db.params().unwrap();
        assert_eq!(p["api_url"], "http://127.0.0.1:1");
        assert_eq!(p["max_concurrency"], 4);
        assert_eq!(p["witness_count"], 1);
        db.merge_params(&json!({"witness_count": null})).unwrap();
        assert!(!db.params().unwrap().contains_key("witness_count"));
        assert!(db.merge_params(&json!(["x"])).is_err());
    }

    #[test]
    fn the_password_is_encrypted_in_the_file_and_the_key_is_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("escola.db");
        let db = SchoolDb::open(&path).unwrap();
        assert!(
            !key_file_path(&path).exists(),
            "the key is made on first need"
        );
        db.configure_tae("http://127.0.0.1:9", "servico@escola", PASSWORD)
            .unwrap();
        let key_path = key_file_path(&path);
        assert_eq!(key_path, dir.path().join("escola.db.key"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(db.params().unwrap()["service_password"], PASSWORD);
        assert_eq!(
            db.params_for_display().unwrap()["service_password"],
            PASSWORD_MASK
        );
        assert_eq!(
            db.params_for_display().unwrap()["service_user"],
            "servico@escola"
        );
        // Not in the database, its WAL, nor anywhere but... nowhere: the key file holds the key.
        db.conn()
            .query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))
            .unwrap();
        assert_eq!(
            file_bytes_contain(dir.path(), PASSWORD.as_bytes()),
            Vec::<String>::new()
        );
        let raw: String = db
            .conn()
            .query_row(
                "SELECT value FROM global_params WHERE name = 'service_password'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(raw.contains("chacha20poly1305:v1:"), "{raw}");
        // Another process (another connection) reads it with the same key file.
        let other = SchoolDb::open_existing(&path).unwrap();
        assert_eq!(other.params().unwrap()["service_password"], PASSWORD);
        // Two writes of the same password differ (fresh nonce).
        db.set_param("service_password", &json!(PASSWORD)).unwrap();
        let raw2: String = db
            .conn()
            .query_row(
                "SELECT value FROM global_params WHERE name = 'service_password'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_ne!(raw, raw2);
        // Without the key the password cannot be read; the display still works.
        std::fs::rename(&key_path, dir.path().join("guardada.key")).unwrap();
        let e = other.params().unwrap_err();
        assert!(
            e.message.contains("escola.db.key") && e.message.contains("não foi encontrada"),
            "{e}"
        );
        assert!(!e.message.contains(PASSWORD));
        assert_eq!(
            other.params_for_display().unwrap()["service_password"],
            PASSWORD_MASK
        );
        // A different key is refused, not misread.
        std::fs::write(&key_path, format!("{}\n", "ab".repeat(32))).unwrap();
        let e = other.params().unwrap_err();
        assert!(e.message.contains("não pôde ser decifrado"), "{e}");
    }

    #[test]
    fn a_plain_text_password_is_read_and_encrypted_on_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("antigo.db");
        let db = SchoolDb::open(&path).unwrap();
        // As an earlier host-sim stored it.
        db.conn()
            .execute(
                "INSERT INTO global_params (name, value) VALUES ('service_password', ?1)",
                params![serde_json::to_string(&json!(PASSWORD)).unwrap()],
            )
            .unwrap();
        db.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        assert!(!file_bytes_contain(dir.path(), PASSWORD.as_bytes()).is_empty());
        assert_eq!(db.params().unwrap()["service_password"], PASSWORD);
        assert_eq!(
            db.params_for_display().unwrap()["service_password"],
            PASSWORD_MASK
        );
        // Any write of the parameters encrypts it.
        db.merge_params(&json!({"max_concurrency": 4})).unwrap();
        assert_eq!(db.params().unwrap()["service_password"], PASSWORD);
        db.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        assert_eq!(
            file_bytes_contain(dir.path(), PASSWORD.as_bytes()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn two_processes_creating_the_key_at_once_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("escola.db");
        let key_path = key_file_path(&path);
        let keys: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        create_key_file(&key_path).unwrap();
                        std::fs::read_to_string(&key_path).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| k == &keys[0] && k.trim().len() == 64));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }
}
