//! Turning STORE arguments into stores, and reading rings for the read-only commands.
//!
//! A STORE is a directory (one file per element), a `.xml` ring document, a single element file
//! (`key-….xml`, `revocation-….xml`), a store URL (`redis://…`, and the Azure stores where built)
//! or `env:NAME` holding any of these. Rows name an element as `{directory}/{file}` for
//! directories and single files, and `{redacted location}#{element name}` for the other stores.

use std::path::{Path, PathBuf};

use dpwrap::key_file::{self, Fragment, RingElement};
use dpwrap::store::{self, DirectoryStore, DocumentStore, KeyStore};
use dpwrap::{Key, Revocation};

use crate::fail::{Fail, Outcome};

/// How to reach the Azure stores and Key Vault: the same for every command.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Azure")]
pub struct ConnectionArgs {
    /// The Azure credential for Key Vault and the Azure stores (default: chosen from the
    /// environment, as DefaultAzureCredential does). A SAS in a blob URL needs none.
    #[arg(long = "credential", value_name = "KIND", value_parser = [
        "managed-identity", "workload-identity", "client-secret", "client-certificate",
        "azure-cli", "azure-developer-cli", "chain",
    ])]
    pub credential: Option<String>,
    /// Trust only this CA (PEM) for Key Vault, the Azure stores and the token endpoint: for a
    /// local test vault or emulator.
    #[arg(
        long = "key-vault-ca",
        value_name = "PEM",
        env = "DPWRAP_KEY_VAULT_CA",
        hide = true
    )]
    pub key_vault_ca: Option<PathBuf>,
}

/// Options of the commands that write to stores.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Stores written")]
pub struct StoreWriteArgs {
    /// Key Vault secret stores only: on every write, remove keys that expired more than
    /// DURATION ago (90d, 12h, 2w) and the revocations that no longer apply to any key. Without
    /// it nothing is ever removed.
    #[arg(long = "prune-older-than", value_name = "DURATION")]
    pub prune_older_than: Option<String>,
}

/// What opening a store needs besides its location.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// A CA to trust instead of the platform's roots (`--key-vault-ca`).
    #[cfg_attr(not(feature = "azure"), allow(dead_code))]
    ca: Option<Vec<u8>>,
    /// The credential kind (`--credential`).
    #[cfg_attr(not(feature = "azure"), allow(dead_code))]
    credential: Option<String>,
    /// `--prune-older-than`, for the stores written.
    prune_older_than: Option<time::Duration>,
}

impl Settings {
    /// The settings the connection options give.
    pub fn new(connection: &ConnectionArgs) -> Outcome<Settings> {
        let ca = match &connection.key_vault_ca {
            Some(p) => Some(crate::vault::read_ca(p)?),
            None => None,
        };
        Ok(Settings {
            ca,
            credential: connection.credential.clone(),
            prune_older_than: None,
        })
    }

    /// These settings for stores that are written, with the write options.
    pub fn writing(mut self, write: &StoreWriteArgs) -> Outcome<Settings> {
        self.prune_older_than = match &write.prune_older_than {
            Some(d) => Some(crate::dates::parse_duration("--prune-older-than", d)?),
            None => None,
        };
        Ok(self)
    }

    /// These settings for stores that are only read (never pruned).
    pub fn reading(&self) -> Settings {
        Settings {
            prune_older_than: None,
            ..self.clone()
        }
    }

    /// The store options for the (resolved) location.
    fn options(&self, location: &str) -> Outcome<store::OpenOptions> {
        if self.prune_older_than.is_some() && !is_key_vault_secret(location) {
            return Err(Fail::usage(format!(
                "--prune-older-than applies to Key Vault secret stores only (https://VAULT.vault.azure.net/secrets/NAME), not to {}",
                store::redact(location)
            )));
        }
        #[allow(unused_mut)]
        let mut options = store::OpenOptions::default();
        #[cfg(feature = "azure")]
        if has_scheme(location) && !is_redis(location) {
            self.azure_options(location, &mut options)?;
        }
        Ok(options)
    }

    #[cfg(feature = "azure")]
    fn azure_options(&self, location: &str, options: &mut store::OpenOptions) -> Outcome<()> {
        use dpwrap::azure::transport::TransportOptions;
        let transport = TransportOptions {
            trusted_roots_pem: self.ca.clone(),
            ..TransportOptions::default()
        };
        if self.credential.is_some() || self.ca.is_some() {
            let credential =
                crate::vault::credential_config(self.credential.as_deref(), &transport)?
                    .build()
                    .map_err(config)?;
            options.blob.credential = Some(std::sync::Arc::clone(&credential));
            options.secret.credential = Some(credential);
        }
        options.blob.transport = transport.clone();
        options.secret.key_vault.transport = transport;
        // A local vault is reached by IP address, which its challenge cannot name.
        options.secret.key_vault.verify_challenge_resource = !crate::vault::is_loopback(location);
        options.secret.prune_older_than = self.prune_older_than;
        Ok(())
    }
}

/// Whether a location is a Redis URL.
#[cfg_attr(not(feature = "azure"), allow(dead_code))]
fn is_redis(location: &str) -> bool {
    location
        .split_once("://")
        .is_some_and(|(s, _)| s.eq_ignore_ascii_case("redis") || s.eq_ignore_ascii_case("rediss"))
}

/// Whether a location names a Key Vault secret (as the library recognises one).
fn is_key_vault_secret(location: &str) -> bool {
    let Some((scheme, rest)) = location.split_once("://") else {
        return false;
    };
    if scheme.eq_ignore_ascii_case("kvsecret+https") {
        return true;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("").to_ascii_lowercase();
    scheme.eq_ignore_ascii_case("https") && host.ends_with(".vault.azure.net")
}

/// How the elements of a store are named in output.
#[derive(Debug, Clone)]
pub enum Naming {
    /// A directory: `{dir}/{file name}`.
    Directory(PathBuf),
    /// Any other store: `{location}#{element name}`.
    Location(String),
}

impl Naming {
    /// The row name of element `name`.
    pub fn of(&self, name: &str) -> String {
        match self {
            Naming::Directory(dir) => dir.join(name).display().to_string(),
            Naming::Location(location) => format!("{location}#{name}"),
        }
    }

    /// The store's name.
    pub fn store(&self) -> String {
        match self {
            Naming::Directory(dir) => dir.display().to_string(),
            Naming::Location(location) => location.clone(),
        }
    }
}

/// A store to read or write, with how its elements are named, and (for a single element file) the
/// only element to touch.
pub struct Opened {
    /// The store.
    pub store: Box<dyn KeyStore>,
    /// How its elements are named.
    pub naming: Naming,
    /// When the argument was one element file of a directory: that file's name.
    pub only: Option<String>,
}

impl Opened {
    /// A usage error when `location` named one element file rather than a whole store (what
    /// `command` writes to must be a store).
    pub fn require_whole(&self, location: &str, command: &str) -> Outcome<()> {
        match self.only {
            Some(_) => Err(Fail::usage(format!(
                "{location}: {command} adds to a store: give its directory, ring document or URL, not one of its files"
            ))),
            None => Ok(()),
        }
    }
}

/// What a local path holds, judged from its root element.
enum PathKind {
    Directory,
    Document,
    Element,
    Missing,
}

fn has_scheme(location: &str) -> bool {
    location.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

fn path_kind(path: &Path) -> PathKind {
    if path.is_dir() {
        return PathKind::Directory;
    }
    if !path.exists() {
        return PathKind::Missing;
    }
    match key_file::read_element(path) {
        Ok(e) if e.is(None, "repository") || e.is(None, "root") => PathKind::Document,
        Ok(_) => PathKind::Element,
        // Unreadable or not XML: an empty file is an empty ring document; anything else is
        // reported by whichever reader it goes to.
        Err(_) if is_xml_name(path) => PathKind::Document,
        Err(_) => PathKind::Element,
    }
}

fn is_xml_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
}

fn config(e: dpwrap::Error) -> Fail {
    if e.kind() == dpwrap::ErrorKind::Config {
        Fail::usage(e.to_string())
    } else {
        Fail::from(e)
    }
}

/// Opens a store. With `must_exist`, a local path that does not exist is an error (a store read
/// from); otherwise it is created on the first write (a destination).
pub fn open(location: &str, must_exist: bool, settings: &Settings) -> Outcome<Opened> {
    let resolved = store::resolve(location).map_err(config)?;
    let options = settings.options(&resolved)?;
    if has_scheme(&resolved) {
        let store = store::open_with(&resolved, &options).map_err(config)?;
        let naming = Naming::Location(store.describe());
        return Ok(Opened {
            store,
            naming,
            only: None,
        });
    }
    let path = PathBuf::from(resolved.as_str());
    if resolved.trim().is_empty() {
        return Err(Fail::usage("a store location is empty"));
    }
    let (store, naming, only): (Box<dyn KeyStore>, Naming, Option<String>) = match path_kind(&path)
    {
        PathKind::Directory => (
            Box::new(DirectoryStore::new(&path)),
            Naming::Directory(path.clone()),
            None,
        ),
        PathKind::Document => (
            Box::new(DocumentStore::new(&path)),
            Naming::Location(store::redact(&path.display().to_string())),
            None,
        ),
        PathKind::Element => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                Box::new(DirectoryStore::new(&dir)),
                Naming::Directory(dir),
                Some(name),
            )
        }
        PathKind::Missing if must_exist => {
            return Err(Fail::run(format!(
                "{}: no such file or directory",
                path.display()
            )));
        }
        PathKind::Missing if is_xml_name(&path) => (
            Box::new(DocumentStore::new(&path)),
            Naming::Location(store::redact(&path.display().to_string())),
            None,
        ),
        PathKind::Missing => (
            Box::new(DirectoryStore::new(&path)),
            Naming::Directory(path.clone()),
            None,
        ),
    };
    Ok(Opened {
        store,
        naming,
        only,
    })
}

/// One element of a ring as the read-only commands see it.
pub enum What {
    /// A key.
    Key(Box<Key>),
    /// A revocation.
    Revocation(Revocation),
    /// A protected secret on its own (not a ring element).
    Fragment(Fragment),
    /// Unreadable: why.
    Failed(dpwrap::Error),
}

/// An element and its row name.
pub struct Item {
    /// The row name.
    pub file: String,
    /// What it is.
    pub what: What,
}

/// A ring: the elements of one store, or of the single element files given.
pub struct Ring {
    /// The elements, in store order.
    pub items: Vec<Item>,
}

impl Ring {
    /// The revocations of the ring.
    pub fn revocations(&self) -> Vec<&Revocation> {
        self.items
            .iter()
            .filter_map(|i| match &i.what {
                What::Revocation(r) => Some(r),
                _ => None,
            })
            .collect()
    }
}

fn classify(element: dpwrap::xml::Element, path: Option<&Path>) -> What {
    let fragment = Fragment::recognise(&element);
    match RingElement::from_element(element) {
        Ok(RingElement::Key(key)) => match path.map(|p| key_file::check_file_name(p, key.id())) {
            Some(Err(e)) => What::Failed(e),
            _ => What::Key(key),
        },
        Ok(RingElement::Revocation(r)) => What::Revocation(r),
        Err(e) => match fragment {
            Some(f) => What::Fragment(f),
            None => What::Failed(e),
        },
    }
}

/// Reads the rings named by `locations`: one ring per store, and one for all the single element
/// files together (a revocation file given beside its key file applies to it). A store that
/// cannot be read is one failed item; a location that is wrong on its face (an unset `env:`
/// variable, an unknown scheme) is a usage error.
pub async fn read_rings(locations: &[String], settings: &Settings) -> Outcome<Vec<Ring>> {
    let settings = settings.reading();
    let mut rings = Vec::new();
    let mut loose = Vec::new();
    for location in locations {
        let opened = match open(location, true, &settings) {
            Ok(o) => o,
            Err(Fail::Usage(m)) => return Err(Fail::Usage(m)),
            Err(Fail::Run(m)) => {
                rings.push(Ring {
                    items: vec![Item {
                        file: store::redact(location),
                        what: What::Failed(dpwrap::Error::new(dpwrap::ErrorKind::Store, m)),
                    }],
                });
                continue;
            }
        };
        if let (Some(name), Naming::Directory(dir)) = (&opened.only, &opened.naming) {
            let path = dir.join(name);
            let what = match key_file::read_element(&path) {
                Ok(e) => classify(e, Some(&path)),
                Err(e) => What::Failed(e),
            };
            loose.push(Item {
                file: path.display().to_string(),
                what,
            });
            continue;
        }
        let items = match opened.store.read().await {
            Ok(entries) => entries
                .into_iter()
                .map(|entry| {
                    let file = opened.naming.of(&entry.name);
                    let what = match entry.element {
                        Ok(stored) => classify(stored.into_element(), None),
                        Err(e) => What::Failed(e),
                    };
                    Item { file, what }
                })
                .collect(),
            Err(e) => vec![Item {
                file: opened.naming.store(),
                what: What::Failed(e),
            }],
        };
        rings.push(Ring { items });
    }
    if !loose.is_empty() {
        rings.push(Ring { items: loose });
    }
    Ok(rings)
}

/// The revocation that revokes `key` among `revocations` (a single-key one first, else the latest
/// mass revocation).
pub fn revocation_for<'a>(key: &Key, revocations: &[&'a Revocation]) -> Option<&'a Revocation> {
    let single = revocations
        .iter()
        .copied()
        .find(|r| matches!(r.target(), key_file::RevocationTarget::Key(_)) && r.revokes(key));
    single.or_else(|| {
        revocations
            .iter()
            .copied()
            .filter(|r| {
                r.target() == key_file::RevocationTarget::AllCreatedBefore && r.revokes(key)
            })
            .max_by(|a, b| a.date().cmp(b.date()))
    })
}
