//! Where key rings live: the [`KeyStore`] seam and [`open`], which turns a path or URL into a
//! store (STORES.md).
//!
//! A store holds an ordered list of top-level XML elements (`<key>`, `<revocation>`). It moves
//! elements and never decrypts them: protection is the business of the protectors. Every store
//! keeps .NET's reading rule: [`KeyStore::load`] returns every element or an error, never a partial
//! ring, because an element that cannot be read may be a revocation.
//!
//! Stores in this build:
//!
//! | location | store |
//! | --- | --- |
//! | a directory | [`DirectoryStore`]: one file per element (`FileSystemXmlRepository`) |
//! | a path ending in `.xml` | [`DocumentStore`]: the whole ring in one document (the Blob layout) |
//! | `redis://…`, `rediss://…` | `RedisStore` (feature `redis`): one Redis list |
//! | `https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB[?SAS]`, `blob+https://…`, `blob+http://…` | `BlobStore` (feature `azure`): one Azure blob in the one-document layout |
//! | `https://VAULT.vault.azure.net/secrets/NAME`, `kvsecret+https://…` | `KeyVaultSecretStore` (feature `azure`): one Key Vault secret (base64 `<root>` document) |
//! | `env:NAME` | the location held by environment variable `NAME` |
//!
//! Locations are printed only through [`redact`], which hides passwords, SAS signatures and
//! account keys.

use std::fmt;

use async_trait::async_trait;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, Result};
use crate::key_file::RingElement;
use crate::xml::{Element, Name};

#[cfg(feature = "azure")]
pub mod blob;
pub mod copy;
pub mod directory;
pub mod document;
#[cfg(feature = "azure")]
pub mod key_vault_secret;
pub mod location;
#[cfg(feature = "redis")]
pub mod redis;
pub mod rewrap;
pub(crate) mod ring_document;

#[cfg(feature = "azure")]
pub use blob::{BlobOptions, BlobStore};
pub use directory::DirectoryStore;
pub use document::DocumentStore;
#[cfg(feature = "azure")]
pub use key_vault_secret::{KeyVaultSecretStore, SecretStoreOptions};
pub use location::{redact, resolve};
#[cfg(feature = "redis")]
pub use redis::{RedisOptions, RedisStore};

/// One element as a store holds it: the parsed element, the name it is known by in the store, and
/// the exact bytes it was read from (what [`KeyStore::replace`] compares before it writes).
///
/// The element and its bytes are wiped on drop: an unprotected key holds its master key in the
/// clear.
pub struct StoredElement {
    element: Element,
    name: String,
    raw: Zeroizing<Vec<u8>>,
    position: usize,
}

impl StoredElement {
    /// A stored element (for store implementations).
    pub fn new(element: Element, name: String, raw: Zeroizing<Vec<u8>>, position: usize) -> Self {
        StoredElement {
            element,
            name,
            raw,
            position,
        }
    }

    /// The element.
    pub fn element(&self) -> &Element {
        &self.element
    }

    /// Where the element is in its store: a file name (`key-{guid}.xml`), a list item
    /// (`item 3`), a document element (`element 3`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bytes the element was read from, exactly as stored. They hold an unprotected key's
    /// master key in the clear: never log them.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The element's position in the order the store returned it (0-based).
    pub fn position(&self) -> usize {
        self.position
    }

    /// Parses the element as a key or a revocation (the element is copied; this one stays).
    pub fn parse(&self) -> Result<RingElement> {
        RingElement::from_element(self.element.clone()).map_err(|e| e.context(&self.name))
    }

    /// Takes the element out.
    pub fn into_element(mut self) -> Element {
        std::mem::replace(&mut self.element, Element::new(Name::local("taken")))
    }
}

impl Drop for StoredElement {
    fn drop(&mut self) {
        self.element.zeroize();
    }
}

impl fmt::Debug for StoredElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredElement")
            .field("name", &self.name)
            .field("element", &self.element.name())
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// One entry of a store as read: its name and the element, or why it could not be read. Tools
/// that list what they could read (`inspect`) use [`KeyStore::read`]; everything else uses
/// [`KeyStore::load`].
#[derive(Debug)]
pub struct Entry {
    /// Where the entry is in its store (see [`StoredElement::name`]).
    pub name: String,
    /// The element, or why it could not be read.
    pub element: Result<StoredElement>,
}

/// An element to add to a store, with the friendly name .NET would give it.
#[derive(Debug)]
pub struct Addition {
    /// The element (a `<key>` or a `<revocation>`).
    pub element: Element,
    /// The friendly name (`key-{guid}`, `revocation-{guid}`, `revocation-{date}`). The directory
    /// store names the file after it; the other stores ignore it, as .NET's do.
    pub friendly_name: String,
}

impl Addition {
    /// An element with an explicit friendly name.
    pub fn new(element: Element, friendly_name: impl Into<String>) -> Addition {
        Addition {
            element,
            friendly_name: friendly_name.into(),
        }
    }

    /// An element with the friendly name .NET's `XmlKeyManager` gives it: `key-{id}` for a key,
    /// `revocation-{id}` or `revocation-{yyyyMMddTHHmmssFFFFFFFZ}` for a revocation.
    pub fn named_as_dotnet(element: Element) -> Result<Addition> {
        let name = friendly_name_of(&element)?;
        Ok(Addition::new(element, name))
    }
}

/// The friendly name .NET's `XmlKeyManager` gives an element (see [`Addition::named_as_dotnet`]).
pub fn friendly_name_of(element: &Element) -> Result<String> {
    if element.is(None, "key") {
        let id = element
            .attribute(None, "id")
            .ok_or_else(|| Error::format("the key has no id attribute"))?;
        let id = uuid::Uuid::parse_str(id.trim())
            .map_err(|_| Error::format("the key's id is not a GUID"))?;
        return Ok(format!("key-{id}"));
    }
    Ok(crate::key_file::Revocation::from_element(element)?.friendly_name())
}

/// An in-place change: the element as it was read, and what replaces it.
#[derive(Debug)]
pub struct Change<'a> {
    /// The element as loaded from this store.
    pub old: &'a StoredElement,
    /// Its replacement (the same key, re-protected).
    pub new: Element,
}

/// A place where a key ring lives.
///
/// Implementations do blocking file I/O inside their async methods where they touch local files
/// (the directory and one-document stores); network stores are asynchronous throughout. None of
/// them needs a particular runtime except the network ones (tokio for Redis).
#[async_trait]
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// The location, redacted (no password, SAS signature or account key): for messages and
    /// JSON output.
    fn describe(&self) -> String;

    /// Every entry of the store, each with its element or why it could not be read. Fails as a
    /// whole when the store cannot be read at all (unreachable, not XML, wrong type).
    async fn read(&self) -> Result<Vec<Entry>>;

    /// Every element of the store, or an error naming the first one that could not be read.
    async fn load(&self) -> Result<Vec<StoredElement>> {
        let entries = self.read().await?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry.element {
                Ok(e) => out.push(e),
                Err(e) => {
                    return Err(e.context(format!(
                        "{}: {} could not be read, and the ring is refused as a whole (it may be a revocation)",
                        self.describe(),
                        entry.name
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Adds elements after the existing ones, in order, as .NET adds them.
    async fn append(&self, elements: &[Addition]) -> Result<()>;

    /// Replaces elements in place (re-wrapping). Each change names the element as it was loaded;
    /// if that element changed since, the store refuses with an [`ErrorKind::Store`] conflict
    /// error (or, where the store can, finds the element where it moved). Elements added by
    /// others since the load stay.
    async fn replace(&self, changes: &[Change<'_>]) -> Result<()>;
}

/// A conflict: the element changed in the store since it was loaded.
pub(crate) fn conflict(store: &str, name: &str) -> Error {
    Error::new(
        ErrorKind::Store,
        format!(
            "{store}: {name} changed since it was read; nothing was replaced for it: load the ring again and retry"
        ),
    )
}

/// A store kind that [`open`] recognises by the shape of the location.
struct Backend {
    /// Whether the (resolved) location is for this kind.
    recognises: fn(&str) -> bool,
    /// Opens it.
    open: fn(&str) -> Result<Box<dyn KeyStore>>,
}

/// The store kinds recognised by URL, first match wins; anything else is a path.
#[allow(clippy::vec_init_then_push)] // the entries depend on cargo features
fn backends() -> Vec<Backend> {
    let mut out = Vec::new();
    #[cfg(feature = "redis")]
    out.push(Backend {
        recognises: redis::recognises,
        open: |l| Ok(Box::new(RedisStore::open(l, RedisOptions::default())?)),
    });
    #[cfg(not(feature = "redis"))]
    out.push(Backend {
        recognises: |l| has_scheme(l, &["redis", "rediss"]),
        open: |l| Err(not_built(l, "the Redis store", "redis")),
    });
    #[cfg(feature = "azure")]
    out.push(Backend {
        recognises: blob::recognises,
        open: |l| Ok(Box::new(BlobStore::open(l, BlobOptions::default())?)),
    });
    #[cfg(not(feature = "azure"))]
    out.push(Backend {
        recognises: is_azure_blob,
        open: |l| Err(not_built(l, "the Azure Blob store", "azure")),
    });
    #[cfg(feature = "azure")]
    out.push(Backend {
        recognises: key_vault_secret::recognises,
        open: |l| {
            Ok(Box::new(KeyVaultSecretStore::open(
                l,
                SecretStoreOptions::default(),
            )?))
        },
    });
    #[cfg(not(feature = "azure"))]
    out.push(Backend {
        recognises: is_key_vault_secret,
        open: |l| Err(not_built(l, "the Key Vault secret store", "azure")),
    });
    out
}

#[cfg(not(all(feature = "redis", feature = "azure")))]
fn not_built(location: &str, what: &str, feature: &str) -> Error {
    Error::config(format!(
        "{}: {what} is not built into this dpwrap (cargo feature `{feature}`)",
        redact(location)
    ))
}

/// Whether `location` starts with one of `schemes` followed by `://` (case-insensitive).
pub(crate) fn has_scheme(location: &str, schemes: &[&str]) -> bool {
    scheme_of(location).is_some_and(|s| schemes.iter().any(|x| s.eq_ignore_ascii_case(x)))
}

/// The URL scheme of `location`, if it is written `scheme://…`.
pub(crate) fn scheme_of(location: &str) -> Option<&str> {
    let (scheme, _) = location.split_once("://")?;
    let valid = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

pub(crate) fn host_of(location: &str) -> Option<String> {
    let (_, rest) = location.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("");
    Some(host.to_ascii_lowercase())
}

#[cfg(not(feature = "azure"))]
fn is_azure_blob(location: &str) -> bool {
    has_scheme(location, &["blob+https", "blob+http"])
        || (has_scheme(location, &["https"])
            && host_of(location).is_some_and(|h| h.ends_with(".blob.core.windows.net")))
}

#[cfg(not(feature = "azure"))]
fn is_key_vault_secret(location: &str) -> bool {
    has_scheme(location, &["kvsecret+https"])
        || (has_scheme(location, &["https"])
            && host_of(location).is_some_and(|h| h.ends_with(".vault.azure.net")))
}

/// Opens the store at `location`:
///
/// - `env:NAME`: the location is the value of environment variable `NAME` (keeps passwords and
///   SAS tokens out of the command line);
/// - `redis://[user[:password]@]host[:port][/db][?key=NAME]`, `rediss://…`: a Redis list
///   (feature `redis`);
/// - `https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB[?SAS]`, `blob+https://…`,
///   `blob+http://…`: an Azure blob (feature `azure`);
/// - `https://VAULT.vault.azure.net/secrets/NAME`, `kvsecret+https://…`: a Key Vault secret
///   (feature `azure`);
/// - a path ending in `.xml` (that is not a directory): the whole ring in one document;
/// - any other path: a directory with one file per element.
///
/// Nothing is read or connected until the store is used.
pub fn open(location: &str) -> Result<Box<dyn KeyStore>> {
    let resolved = resolve(location)?;
    let resolved: &str = &resolved;
    for backend in backends() {
        if (backend.recognises)(resolved) {
            return (backend.open)(resolved);
        }
    }
    if let Some(scheme) = scheme_of(resolved) {
        return Err(Error::config(format!(
            "{}: no store is known for '{scheme}://' locations; use a directory, a .xml file, a redis:// URL, a blob URL or a Key Vault secret URL",
            redact(resolved)
        )));
    }
    if resolved.is_empty() {
        return Err(Error::config("the store location is empty"));
    }
    let path = std::path::Path::new(resolved);
    let is_document = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
        && !path.is_dir();
    if is_document {
        Ok(Box::new(DocumentStore::new(path)))
    } else {
        Ok(Box::new(DirectoryStore::new(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_chooses_the_store_from_the_location() {
        let dir = open("/tmp/some-ring").unwrap();
        assert!(format!("{dir:?}").contains("DirectoryStore"));
        let doc = open("/tmp/ring.XML").unwrap();
        assert!(format!("{doc:?}").contains("DocumentStore"));
        let e = open("ftp://example/ring").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[cfg(not(feature = "azure"))]
    #[test]
    fn azure_locations_name_the_missing_feature() {
        let e = open("https://acct.blob.core.windows.net/c/b?sig=SECRET").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("SECRET"), "{e}");
        assert!(e.to_string().contains("`azure`"), "{e}");
        let e = open("kvsecret+https://vault.local/secrets/ring").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[cfg(feature = "azure")]
    #[test]
    fn azure_locations_open_their_stores() {
        let blob = open("https://acct.blob.core.windows.net/c/b?sv=1&sig=SECRET").unwrap();
        assert!(format!("{blob:?}").contains("BlobStore"));
        assert!(!format!("{blob:?}").contains("SECRET"));
        assert!(blob.describe().ends_with("sig=***"), "{}", blob.describe());
    }

    #[test]
    fn schemes_are_recognised_strictly() {
        assert_eq!(scheme_of("redis://h"), Some("redis"));
        assert_eq!(scheme_of("blob+https://h/c/b"), Some("blob+https"));
        assert_eq!(scheme_of("C:\\keys"), None);
        assert_eq!(scheme_of("./a://b"), None);
        assert_eq!(
            host_of("https://u:p@Acct.Blob.core.windows.net:443/c").as_deref(),
            Some("acct.blob.core.windows.net")
        );
    }
}
