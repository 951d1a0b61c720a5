//! The Key Vault secret store: a whole ring in one Key Vault secret, in the format of the community
//! `AzureKeyVaultKeyRingRepository` (feature `azure`).
//!
//! Location: `https://VAULT.vault.azure.net/secrets/NAME`, or `kvsecret+https://HOST/secrets/NAME`
//! for any other host (sovereign clouds, private endpoints, a local test vault). The credential is
//! the one given in [`SecretStoreOptions`], or the chain of
//! [`CredentialConfig::from_env`](crate::azure::credentials::CredentialConfig::from_env).
//!
//! Format (STORES.md): the secret's value is the base64 of the UTF-8 XML of a `<root>` document
//! holding the elements, indented by two spaces, without declaration or BOM; content type
//! `text/plain`. The latest version is read. Nothing is dropped when reading (the community
//! repository silently drops keys older than 180 days when it loads; dpwrap does not), and an
//! element that cannot be read fails the load, as in every store.
//!
//! Writing: read the latest version, add (or replace) the elements, and set a new version.
//! Key Vault secrets are limited to 25 KB, about five keys protected with a 2048-bit certificate
//! (nine with Key Vault); the size is checked before anything is sent, and the error says how
//! many of the ring's elements would fit.
//! Old keys are removed only when asked ([`SecretStoreOptions::prune_older_than`], the CLI's
//! `--prune-older-than`): keys that expired before the cutoff, revocations of keys no longer in
//! the ring, and mass revocations that no remaining key falls under.
//!
//! **Concurrent writers can lose keys with this store, and nothing can prevent it.** Key Vault
//! offers no precondition on secrets (no ETag, no compare-and-set): the last writer wins. Two
//! instances that read the ring, each add a key and each set a new version leave only one of the
//! two keys. dpwrap narrows the window: after setting the secret it reads it again and starts over
//! when its own elements are missing (another writer's version replaced it), up to
//! [`SecretStoreOptions::write_attempts`] times. A writer that sets its version just after that
//! check still removes dpwrap's key, and a .NET instance using the community repository never
//! checks at all. Keep rings written by several instances at once in Blob storage or Redis.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::copy::contains;
use super::location::redact;
use super::{
    Addition, Change, Entry, KeyStore, StoredElement, conflict, has_scheme, ring_document,
};
use crate::azure::credentials::CredentialConfig;
use crate::azure::key_vault::KeyVaultOptions;
use crate::azure::secret::KeyVaultSecrets;
use crate::error::{Error, ErrorKind, Result};
use crate::key_file::{Key, Revocation, RevocationTarget};
use crate::timestamp::Timestamp;
use crate::xml::{self, Element, Name, Node, WriteOptions};

/// The content type the community repository sets.
pub const CONTENT_TYPE: &str = "text/plain";

/// Key Vault's largest secret value, in bytes (25 KB).
pub const MAX_VALUE_LEN: usize = 25 * 1024;

/// How a [`KeyVaultSecretStore`] reaches its secret and what it does when writing.
#[derive(Clone)]
pub struct SecretStoreOptions {
    /// The token credential. `None`: the credential chain the environment describes.
    pub credential: Option<Arc<dyn TokenCredential>>,
    /// Transport, retries, timeouts and challenge checking of the vault client.
    pub key_vault: KeyVaultOptions,
    /// On every write, remove keys that expired more than this long ago (and the revocations
    /// that no longer apply to any key). `None` (the default): remove nothing.
    pub prune_older_than: Option<time::Duration>,
    /// The largest value written (default Key Vault's limit, [`MAX_VALUE_LEN`]).
    pub max_value_len: usize,
    /// How often a write starts over when, read back, its elements are missing (default 5).
    pub write_attempts: u32,
}

impl Default for SecretStoreOptions {
    fn default() -> SecretStoreOptions {
        SecretStoreOptions {
            credential: None,
            key_vault: KeyVaultOptions::default(),
            prune_older_than: None,
            max_value_len: MAX_VALUE_LEN,
            write_attempts: 5,
        }
    }
}

impl fmt::Debug for SecretStoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStoreOptions")
            .field("credential", &self.credential.as_ref().map(|_| "…"))
            .field("key_vault", &self.key_vault)
            .field("prune_older_than", &self.prune_older_than)
            .field("max_value_len", &self.max_value_len)
            .field("write_attempts", &self.write_attempts)
            .finish()
    }
}

/// Whether a location is a Key Vault secret URL (see the module documentation).
pub(crate) fn recognises(location: &str) -> bool {
    has_scheme(location, &["kvsecret+https"])
        || (has_scheme(location, &["https"])
            && super::host_of(location).is_some_and(|h| h.ends_with(".vault.azure.net")))
}

/// The vault URL and the secret name of a location.
fn parse_location(location: &str, described: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::config(format!("{described}: {why}"));
    let stripped = if has_scheme(location, &["kvsecret+https"]) {
        location.get(9..).unwrap_or_default()
    } else {
        location
    };
    let url = azure_core::http::Url::parse(stripped).map_err(|_| {
        bad("not a valid URL; write https://VAULT.vault.azure.net/secrets/NAME or kvsecret+https://HOST/secrets/NAME")
    })?;
    if url.scheme() != "https" {
        return Err(bad("Key Vault is reached over https only"));
    }
    if url.query().is_some() {
        return Err(bad("a Key Vault secret location takes no query parameters"));
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    let name = match segments.as_slice() {
        ["secrets", name] => *name,
        ["secrets", _, _] => {
            return Err(bad(
                "name the secret without a version: the store reads the latest version and writes new ones",
            ));
        }
        _ => return Err(bad("the path must be /secrets/NAME")),
    };
    let valid = !name.is_empty()
        && name.len() <= 127
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        return Err(bad(
            "a Key Vault secret name has 1 to 127 letters, digits and dashes",
        ));
    }
    let origin = url.origin().ascii_serialization();
    Ok((origin, name.to_owned()))
}

/// A ring kept in one Key Vault secret.
pub struct KeyVaultSecretStore {
    secrets: KeyVaultSecrets,
    name: String,
    described: String,
    options: SecretStoreOptions,
}

impl fmt::Debug for KeyVaultSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultSecretStore")
            .field("location", &self.described)
            .finish_non_exhaustive()
    }
}

/// The secret's value for a ring: base64 of the indented `<root>` document.
fn encode(elements: &[&Element]) -> Zeroizing<String> {
    let mut root = Element::new(Name::local("root"));
    for e in elements {
        root.push(Node::Element((*e).clone()));
    }
    let xml = xml::to_secret_bytes(&root, WriteOptions::INDENTED);
    zeroize::Zeroize::zeroize(&mut root);
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(xml.as_slice()))
}

impl KeyVaultSecretStore {
    /// The store at a secret URL (see the module documentation). Nothing is sent until it is used.
    pub fn open(location: &str, options: SecretStoreOptions) -> Result<KeyVaultSecretStore> {
        let described = redact(location);
        let (vault, name) = parse_location(location, &described)?;
        let credential = match &options.credential {
            Some(c) => Arc::clone(c),
            None => CredentialConfig::from_env()?.build()?,
        };
        let mut key_vault = options.key_vault.clone();
        // A connection per request: the store may be used from several tokio runtimes.
        key_vault.transport.fresh_connections = true;
        let secrets = KeyVaultSecrets::new(&vault, credential, key_vault)
            .map_err(|e| e.context(&described))?;
        Ok(KeyVaultSecretStore {
            secrets,
            name,
            described,
            options,
        })
    }

    /// The secret's name.
    pub fn secret_name(&self) -> &str {
        &self.name
    }

    /// The elements of the latest version (empty when there is no secret or it is empty).
    async fn fetch(&self) -> Result<Vec<Entry>> {
        let Some(secret) = self
            .secrets
            .get_if_exists(&self.name, None)
            .await
            .map_err(|e| e.context(&self.described))?
        else {
            return Ok(Vec::new());
        };
        // Sized once: growing a collected String would free copies of the ring unwiped.
        let mut text = Zeroizing::new(String::with_capacity(secret.expose().len()));
        text.extend(secret.expose().chars().filter(|c| !c.is_ascii_whitespace()));
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|_| {
                    Error::format(format!(
                        "{}: the secret's value is not base64; a ring in a Key Vault secret is the base64 of a <root> document (as AzureKeyVaultKeyRingRepository writes it)",
                        self.described
                    ))
                })?,
        );
        ring_document::entries(&bytes, &self.described)
    }

    /// Every element of the latest version, or an error when one cannot be read: a write never
    /// drops what it could not read.
    async fn load_for_write(&self) -> Result<Vec<StoredElement>> {
        let mut out = Vec::new();
        for entry in self.fetch().await? {
            match entry.element {
                Ok(e) => out.push(e),
                Err(e) => {
                    return Err(e.context(format!(
                        "{}: {} could not be read; nothing was written",
                        self.described, entry.name
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The elements kept by pruning (all of them unless pruning was asked for).
    fn pruned<'a>(&self, elements: Vec<&'a Element>) -> Vec<&'a Element> {
        let Some(age) = self.options.prune_older_than else {
            return elements;
        };
        let Some(cutoff) = Timestamp::now().datetime().checked_sub(age) else {
            return elements;
        };
        let kept: Vec<&Element> = elements
            .iter()
            .copied()
            .filter(|e| {
                !(e.is(None, "key")
                    && Key::from_element((*e).clone())
                        .is_ok_and(|k| k.expiration_date().datetime() < cutoff))
            })
            .collect();
        let keys: Vec<Key> = kept
            .iter()
            .filter(|e| e.is(None, "key"))
            .filter_map(|e| Key::from_element((*e).clone()).ok())
            .collect();
        kept.into_iter()
            .filter(|e| {
                if !e.is(None, "revocation") {
                    return true;
                }
                let Ok(r) = Revocation::from_element(e) else {
                    return true;
                };
                match r.target() {
                    RevocationTarget::Key(id) => keys.iter().any(|k| k.id() == id),
                    RevocationTarget::AllCreatedBefore => keys.iter().any(|k| r.revokes(k)),
                }
            })
            .collect()
    }

    /// The value for `elements`, or a size error saying how many of them fit.
    fn value_for(&self, elements: &[&Element]) -> Result<Zeroizing<String>> {
        let value = encode(elements);
        let limit = self.options.max_value_len;
        if value.len() <= limit {
            return Ok(value);
        }
        // The newest elements that fit, found by bisection.
        let (mut lo, mut hi) = (0usize, elements.len());
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            let tail = elements.get(elements.len() - mid..).unwrap_or_default();
            if encode(tail).len() <= limit {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Err(Error::new(
            ErrorKind::Limit,
            format!(
                "{}: the ring would be a secret value of {} bytes, over Key Vault's limit of {limit}: it has {} elements and only {lo} of them fit (the newest); nothing was written. Prune expired keys (--prune-older-than), or keep this ring in Blob storage",
                self.described,
                value.len(),
                elements.len()
            ),
        ))
    }

    /// Sets a new version holding `elements`, then reads it back: `Ok(true)` when `check` finds
    /// what this write added in the latest version.
    async fn set_and_check(
        &self,
        elements: &[&Element],
        check: impl Fn(&[StoredElement]) -> bool,
    ) -> Result<bool> {
        let value = self.value_for(elements)?;
        self.secrets
            .set(&self.name, &value, Some(CONTENT_TYPE))
            .await
            .map_err(|e| e.context(&self.described))?;
        let back = self.load_for_write().await?;
        Ok(check(&back))
    }

    fn overwritten(&self, attempts: u32) -> Error {
        Error::new(
            ErrorKind::Store,
            format!(
                "{}: another writer replaced the secret after each of {attempts} writes, so this write's elements are not in it; Key Vault secrets cannot be written safely by several writers at once: retry, and move this ring to Blob storage or Redis",
                self.described
            ),
        )
    }
}

#[async_trait]
impl KeyStore for KeyVaultSecretStore {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn read(&self) -> Result<Vec<Entry>> {
        self.fetch().await
    }

    async fn append(&self, additions: &[Addition]) -> Result<()> {
        if additions.is_empty() {
            return Ok(());
        }
        let attempts = self.options.write_attempts.max(1);
        for _ in 0..attempts {
            let current = self.load_for_write().await?;
            let mut elements: Vec<&Element> = current.iter().map(StoredElement::element).collect();
            for a in additions {
                if !contains(&elements, &a.element) {
                    elements.push(&a.element);
                }
            }
            let elements = self.pruned(elements);
            // What pruning removed (an addition already expired past the bound) is not expected
            // back.
            let landed = self
                .set_and_check(&elements, |back| {
                    let present: Vec<&Element> = back.iter().map(StoredElement::element).collect();
                    additions
                        .iter()
                        .filter(|a| contains(&elements, &a.element))
                        .all(|a| contains(&present, &a.element))
                })
                .await?;
            if landed {
                return Ok(());
            }
        }
        Err(self.overwritten(attempts))
    }

    async fn replace(&self, changes: &[Change<'_>]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let attempts = self.options.write_attempts.max(1);
        for _ in 0..attempts {
            let current = self.load_for_write().await?;
            let mut elements: Vec<&Element> = current.iter().map(StoredElement::element).collect();
            for c in changes {
                let slot = elements.get_mut(c.old.position());
                let same = current
                    .get(c.old.position())
                    .is_some_and(|e| e.raw() == c.old.raw());
                match slot {
                    Some(slot) if same => *slot = &c.new,
                    // Already replaced by an earlier round whose check saw another writer's version.
                    Some(slot) if **slot == c.new => {}
                    _ => return Err(conflict(&self.described, c.old.name())),
                }
            }
            let elements = self.pruned(elements);
            let landed = self
                .set_and_check(&elements, |back| {
                    let present: Vec<&Element> = back.iter().map(StoredElement::element).collect();
                    changes
                        .iter()
                        .filter(|c| elements.contains(&&c.new))
                        .all(|c| present.contains(&&c.new))
                })
                .await?;
            if landed {
                return Ok(());
            }
        }
        Err(self.overwritten(attempts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_taken_apart() {
        assert_eq!(
            parse_location("https://myvault.vault.azure.net/secrets/dp-ring", "x").unwrap(),
            (
                "https://myvault.vault.azure.net".to_owned(),
                "dp-ring".to_owned()
            )
        );
        assert_eq!(
            parse_location("kvsecret+https://127.0.0.1:8443/secrets/ring", "x").unwrap(),
            ("https://127.0.0.1:8443".to_owned(), "ring".to_owned())
        );
        for bad in [
            "https://v.vault.azure.net/secrets/ring/0123abcd",
            "https://v.vault.azure.net/keys/ring",
            "https://v.vault.azure.net/secrets/bad_name",
            "kvsecret+https://h/secrets/ring?x=1",
        ] {
            assert_eq!(
                parse_location(bad, "x").unwrap_err().kind(),
                ErrorKind::Config,
                "{bad}"
            );
        }
        assert!(recognises("https://v.vault.azure.net/secrets/r"));
        assert!(recognises("KVSECRET+HTTPS://h/secrets/r"));
        assert!(!recognises("https://a.blob.core.windows.net/c/b"));
    }
}
