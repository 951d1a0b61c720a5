//! Reading the elements of a key ring: `<key>` (`key-{guid}.xml`) and `<revocation>`
//! (`revocation-{guid}.xml`, or `revocation-{date}.xml` for a mass revocation).
//!
//! Parsing a key never decrypts it: the id, dates, descriptor algorithms and the kind of
//! protection are all readable without key material. [`Key::master_key`] decrypts.

use std::fmt;
use std::path::Path;

use uuid::Uuid;

use crate::decryptors::{Decryptors, missing_decryptor, windows_only};
use crate::envelope::{self, open_encrypted_secret};
use crate::error::{Error, ErrorKind, Result};
use crate::protector::{DecryptorType, Protection};
use crate::secret::{MasterKey, SecretElement};
use crate::timestamp::Timestamp;
use crate::xml::{self, Element, Limits, NS_DP};

/// A `<key>` element, parsed.
pub struct Key {
    id: Uuid,
    version: Option<String>,
    creation_date: Timestamp,
    activation_date: Timestamp,
    expiration_date: Timestamp,
    deserializer_type: DecryptorType,
    encryption_algorithm: Option<String>,
    validation_algorithm: Option<String>,
    protection: Protection,
    decryptor_type: Option<DecryptorType>,
    element: Element,
}

impl Key {
    /// Parses a `<key>` element.
    pub fn from_element(element: Element) -> Result<Key> {
        if !element.is(None, "key") {
            return Err(Error::format(format!(
                "expected a <key> element, found <{}>",
                element.name()
            )));
        }
        let id = parse_guid(
            element
                .attribute(None, "id")
                .ok_or_else(|| Error::format("the key has no id attribute"))?,
        )?;
        let version = element.attribute(None, "version").map(str::to_owned);
        let date = |name: &str| -> Result<Timestamp> {
            let el = single_child(&element, name)?;
            Timestamp::parse(&el.text()).map_err(|e| e.context(format!("<{name}>")))
        };
        let creation_date = date("creationDate")?;
        let activation_date = date("activationDate")?;
        let expiration_date = date("expirationDate")?;

        let outer = single_child(&element, "descriptor")?;
        let deserializer_type =
            DecryptorType::parse(outer.attribute(None, "deserializerType").ok_or_else(|| {
                Error::format("the key's descriptor has no deserializerType attribute")
            })?)
            .map_err(|e| e.context("deserializerType"))?;
        let mut inner = outer.elements();
        let (Some(descriptor), None) = (inner.next(), inner.next()) else {
            return Err(Error::format(
                "the key's <descriptor> must contain exactly one element",
            ));
        };

        let (encryption_algorithm, validation_algorithm) = algorithms(descriptor);
        let (protection, decryptor_type) = classify(descriptor)?;
        drop(inner);
        Ok(Key {
            id,
            version,
            creation_date,
            activation_date,
            expiration_date,
            deserializer_type,
            encryption_algorithm,
            validation_algorithm,
            protection,
            decryptor_type,
            element,
        })
    }

    /// The key id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The `version` attribute (`1` in every file .NET writes).
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// When the key was created.
    pub fn creation_date(&self) -> &Timestamp {
        &self.creation_date
    }

    /// When the key becomes the default key.
    pub fn activation_date(&self) -> &Timestamp {
        &self.activation_date
    }

    /// When the key stops being used for new data.
    pub fn expiration_date(&self) -> &Timestamp {
        &self.expiration_date
    }

    /// The descriptor deserializer type.
    pub fn deserializer_type(&self) -> &DecryptorType {
        &self.deserializer_type
    }

    /// The descriptor's encryption algorithm (`AES_256_CBC`, …; for CNG and managed descriptors
    /// the algorithm name with its key length, for example `AES-256`).
    pub fn encryption_algorithm(&self) -> Option<&str> {
        self.encryption_algorithm.as_deref()
    }

    /// The descriptor's validation algorithm (`HMACSHA256`, …; none for GCM).
    pub fn validation_algorithm(&self) -> Option<&str> {
        self.validation_algorithm.as_deref()
    }

    /// How the master key is protected.
    pub fn protection(&self) -> Protection {
        self.protection
    }

    /// The decryptor type named in the key's `encryptedSecret`, if it has one.
    pub fn decryptor_type(&self) -> Option<&DecryptorType> {
        self.decryptor_type.as_ref()
    }

    /// The key element as stored. For an unprotected key it holds the master key in the clear:
    /// never log it.
    pub fn element(&self) -> &Element {
        &self.element
    }

    /// The inner descriptor element (the child of `<descriptor deserializerType=…>`).
    pub fn descriptor(&self) -> Result<&Element> {
        let outer = single_child(&self.element, "descriptor")?;
        outer
            .elements()
            .next()
            .ok_or_else(|| Error::format("the key's <descriptor> is empty"))
    }

    /// Decrypts the key's descriptor, returning it with the master key in the clear.
    pub async fn decrypt_descriptor(&self, decryptors: &Decryptors) -> Result<SecretElement> {
        match self.protection {
            Protection::Dpapi | Protection::DpapiNg => return Err(windows_only(self.protection)),
            _ => {}
        }
        envelope::decrypt_element(self.descriptor()?, decryptors).await
    }

    /// Decrypts the master key. Fails with [`ErrorKind::UnknownDeserializer`] for a descriptor
    /// type ASP.NET does not define, since dpwrap cannot know where such a descriptor keeps it.
    pub async fn master_key(&self, decryptors: &Decryptors) -> Result<MasterKey> {
        if !is_known_deserializer(&self.deserializer_type) {
            return Err(Error::new(
                ErrorKind::UnknownDeserializer,
                format!(
                    "the key's descriptor deserializer '{}' is not one of ASP.NET's; dpwrap reads the authenticated-encryptor, CNG and managed descriptors",
                    self.deserializer_type
                        .as_str()
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
            ));
        }
        let descriptor = self.decrypt_descriptor(decryptors).await?;
        master_key_of(descriptor.expose())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("creation_date", &self.creation_date)
            .field("activation_date", &self.activation_date)
            .field("expiration_date", &self.expiration_date)
            .field("encryption_algorithm", &self.encryption_algorithm)
            .field("validation_algorithm", &self.validation_algorithm)
            .field("protection", &self.protection)
            .finish_non_exhaustive()
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // An unprotected key holds its master key in the element.
        if self.protection.is_unprotected() {
            zeroize::Zeroize::zeroize(&mut self.element);
        }
    }
}

/// The descriptor deserializers whose descriptors dpwrap reads (each holds a `masterKey`).
const KNOWN_DESERIALIZERS: &[&str] = &[
    "Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel.AuthenticatedEncryptorDescriptorDeserializer",
    "Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel.CngCbcAuthenticatedEncryptorDescriptorDeserializer",
    "Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel.CngGcmAuthenticatedEncryptorDescriptorDeserializer",
    "Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel.ManagedAuthenticatedEncryptorDescriptorDeserializer",
];

/// Whether `deserializer_type` is one of ASP.NET's descriptor deserializers.
pub fn is_known_deserializer(deserializer_type: &DecryptorType) -> bool {
    KNOWN_DESERIALIZERS.contains(&deserializer_type.type_name())
        && deserializer_type
            .assembly()
            .is_none_or(|a| a == "Microsoft.AspNetCore.DataProtection")
}

/// The master key inside a decrypted descriptor: the only `masterKey` element, whose `value`
/// child (or, failing that, its own text) is the base64 of the key.
pub fn master_key_of(descriptor: &Element) -> Result<MasterKey> {
    let mut found = std::iter::once(descriptor)
        .chain(descriptor.descendants())
        .filter(|e| e.is(None, "masterKey"));
    let master = match (found.next(), found.next()) {
        (Some(m), None) => m,
        (None, _) => return Err(Error::format("the descriptor has no masterKey element")),
        (Some(_), Some(_)) => {
            return Err(Error::format(
                "the descriptor has more than one masterKey element; the key file is malformed or tampered with",
            ));
        }
    };
    let mut values = master.elements_named(None, "value");
    let text = match (values.next(), values.next()) {
        (Some(v), None) => v.secret_text(),
        (None, _) => master.secret_text(),
        (Some(_), Some(_)) => {
            return Err(Error::format(
                "the masterKey element has more than one <value>",
            ));
        }
    };
    MasterKey::from_base64(&text)
}

fn algorithms(descriptor: &Element) -> (Option<String>, Option<String>) {
    let with_length = |e: &Element| -> Option<String> {
        let alg = e.attribute(None, "algorithm")?;
        Some(match e.attribute(None, "keyLength") {
            Some(len) => format!("{alg}-{len}"),
            None => alg.to_owned(),
        })
    };
    let encryption = descriptor.element(None, "encryption").and_then(with_length);
    // Managed descriptors name the validation algorithm `validation`; CNG CBC ones `hash`.
    let validation = descriptor
        .element(None, "validation")
        .or_else(|| descriptor.element(None, "hash"))
        .and_then(|e| e.attribute(None, "algorithm"))
        .map(str::to_owned);
    (encryption, validation)
}

fn classify(descriptor: &Element) -> Result<(Protection, Option<DecryptorType>)> {
    let secret = std::iter::once(descriptor)
        .chain(descriptor.descendants())
        .find(|e| e.is(Some(NS_DP), "encryptedSecret"));
    match secret {
        Some(es) => {
            let (t, _) = open_encrypted_secret(es)?;
            Ok((t.protection(), Some(t)))
        }
        None => {
            if std::iter::once(descriptor)
                .chain(descriptor.descendants())
                .any(|e| e.is(None, "masterKey"))
            {
                Ok((Protection::None, None))
            } else {
                Err(Error::format(
                    "the key's descriptor holds neither a masterKey nor an encryptedSecret",
                ))
            }
        }
    }
}

/// What a revocation applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationTarget {
    /// One key.
    Key(Uuid),
    /// Every key created strictly before the revocation date (`<key id="*" />`).
    AllCreatedBefore,
}

/// A `<revocation>` element, parsed.
#[derive(Clone, Debug)]
pub struct Revocation {
    date: Timestamp,
    target: RevocationTarget,
    reason: Option<String>,
}

impl Revocation {
    /// Parses a `<revocation>` element.
    pub fn from_element(element: &Element) -> Result<Revocation> {
        if !element.is(None, "revocation") {
            return Err(Error::format(format!(
                "expected a <revocation> element, found <{}>",
                element.name()
            )));
        }
        let date = Timestamp::parse(&single_child(element, "revocationDate")?.text())
            .map_err(|e| e.context("<revocationDate>"))?;
        let key = single_child(element, "key")?;
        let id = key
            .attribute(None, "id")
            .ok_or_else(|| Error::format("the revocation's <key> has no id"))?;
        let target = if id.trim() == "*" {
            RevocationTarget::AllCreatedBefore
        } else {
            RevocationTarget::Key(parse_guid(id)?)
        };
        let reason = element.element(None, "reason").map(|r| r.text());
        Ok(Revocation {
            date,
            target,
            reason,
        })
    }

    /// A revocation of one key, as `XmlKeyManager.RevokeSingleKey` writes it.
    pub fn for_key(id: Uuid, date: Timestamp, reason: Option<String>) -> Revocation {
        Revocation {
            date,
            target: RevocationTarget::Key(id),
            reason,
        }
    }

    /// A mass revocation, as `XmlKeyManager.RevokeAllKeys` writes it.
    pub fn all_created_before(date: Timestamp, reason: Option<String>) -> Revocation {
        Revocation {
            date,
            target: RevocationTarget::AllCreatedBefore,
            reason,
        }
    }

    /// The revocation date.
    pub fn date(&self) -> &Timestamp {
        &self.date
    }

    /// What is revoked.
    pub fn target(&self) -> RevocationTarget {
        self.target
    }

    /// The reason given, if any.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Whether this revocation revokes `key`.
    pub fn revokes(&self, key: &Key) -> bool {
        match self.target {
            RevocationTarget::Key(id) => id == key.id(),
            RevocationTarget::AllCreatedBefore => key.creation_date() < &self.date,
        }
    }

    /// The .NET friendly name: `revocation-{guid}` or `revocation-{yyyyMMddTHHmmssFFFFFFFZ}`.
    pub fn friendly_name(&self) -> String {
        match self.target {
            RevocationTarget::Key(id) => format!("revocation-{id}"),
            RevocationTarget::AllCreatedBefore => {
                let d = self.date.datetime().to_offset(time::UtcOffset::UTC);
                let ticks = d.nanosecond() / 100;
                let frac = if ticks == 0 {
                    String::new()
                } else {
                    format!("{ticks:07}").trim_end_matches('0').to_owned()
                };
                format!(
                    "revocation-{:04}{:02}{:02}T{:02}{:02}{:02}{frac}Z",
                    d.year(),
                    u8::from(d.month()),
                    d.day(),
                    d.hour(),
                    d.minute(),
                    d.second()
                )
            }
        }
    }

    /// The element, exactly as .NET writes it.
    pub fn to_element(&self) -> Element {
        use crate::xml::Name;
        let mut el = Element::new(Name::local("revocation"))
            .with_attribute(Name::local("version"), "1")
            .with_child(Element::new(Name::local("revocationDate")).with_text(self.date.as_str()));
        let id = match self.target {
            RevocationTarget::Key(id) => id.to_string(),
            RevocationTarget::AllCreatedBefore => {
                el = el.with_comment(" All keys created before the revocation date are revoked. ");
                "*".to_owned()
            }
        };
        el = el.with_child(Element::new(Name::local("key")).with_attribute(Name::local("id"), id));
        let reason = Element::new(Name::local("reason"));
        el.with_child(match &self.reason {
            Some(r) => reason.with_text(r.clone()),
            None => reason,
        })
    }
}

/// One element of a ring: a key or a revocation.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // keys dominate every ring; boxing them buys nothing
pub enum RingElement {
    /// A `<key>`.
    Key(Box<Key>),
    /// A `<revocation>`.
    Revocation(Revocation),
}

impl RingElement {
    /// Parses a top-level ring element.
    pub fn from_element(element: Element) -> Result<RingElement> {
        if element.is(None, "key") {
            Key::from_element(element).map(|k| RingElement::Key(Box::new(k)))
        } else if element.is(None, "revocation") {
            Revocation::from_element(&element).map(RingElement::Revocation)
        } else {
            Err(Error::format(format!(
                "<{}> is not a key ring element (expected <key> or <revocation>)",
                element.name()
            )))
        }
    }
}

/// A protected secret found on its own rather than inside a key file: an `encryptedSecret`, the
/// element inside one (`EncryptedData`, an Azure or DPAPI `encryptedKey`, `unencryptedKey`), or a
/// bare `masterKey`. Recognised so that tools can say what it is instead of failing to parse it.
#[derive(Clone, Debug)]
pub struct Fragment {
    /// The root element's local name.
    pub root: String,
    /// How its secret is protected.
    pub protection: Protection,
    /// The decryptor type, when the fragment is a whole `encryptedSecret`.
    pub decryptor_type: Option<DecryptorType>,
}

impl Fragment {
    /// Recognises `element` as a protected fragment, or `None`.
    pub fn recognise(element: &Element) -> Option<Fragment> {
        let root = element.name().local_name().to_owned();
        let (protection, decryptor_type) = if element.is(Some(NS_DP), "encryptedSecret") {
            let (t, _) = open_encrypted_secret(element).ok()?;
            (t.protection(), Some(t))
        } else if element.is(Some(xml::NS_XENC), "EncryptedData") {
            (Protection::Certificate, None)
        } else if element.is(None, "unencryptedKey") {
            (Protection::Null, None)
        } else if element.is(None, "masterKey") {
            (Protection::None, None)
        } else if element.is(None, "encryptedKey") {
            (encrypted_key_protection(element), None)
        } else {
            return None;
        };
        Some(Fragment {
            root,
            protection,
            decryptor_type,
        })
    }
}

/// Tells the `<encryptedKey>` elements apart: Azure Key Vault's has a `kid`; DPAPI and DPAPI-NG
/// ones hold only a `value` and say which they are in a comment.
fn encrypted_key_protection(element: &Element) -> Protection {
    if element.element(None, "kid").is_some() {
        return Protection::AzureKeyVault;
    }
    let comments: String = element
        .children()
        .iter()
        .filter_map(|n| match n {
            xml::Node::Comment(c) => Some(c.as_str()),
            _ => None,
        })
        .collect();
    if comments.contains("DPAPI-NG")
        || comments.contains("Rule:")
        || comments.contains("protection descriptor")
    {
        Protection::DpapiNg
    } else if comments.contains("DPAPI") {
        Protection::Dpapi
    } else {
        Protection::Unknown
    }
}

/// Reads and parses one file into an element tree (bounded), without interpreting it.
pub fn read_element(path: &Path) -> Result<Element> {
    let bytes = read_bounded(path, Limits::default().max_input_bytes)?;
    xml::parse(&bytes)
}

/// Reads and parses one file (`key-*.xml`, `revocation-*.xml`). A key whose id disagrees with a
/// `key-{guid}.xml` file name is refused: .NET always names key files after their id, so a
/// mismatch means a copied or planted file.
pub fn read_file(path: &Path) -> Result<RingElement> {
    let element = read_element(path)?;
    let parsed = RingElement::from_element(element)?;
    if let RingElement::Key(key) = &parsed {
        check_file_name(path, key.id())?;
    }
    Ok(parsed)
}

/// Refuses a `key-{guid}.xml` file whose key id is another guid.
pub fn check_file_name(path: &Path, id: Uuid) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name
        .strip_suffix(".xml")
        .and_then(|s| s.strip_prefix("key-"));
    if let Some(stem) = stem
        && let Ok(file_id) = Uuid::parse_str(stem)
        && file_id != id
    {
        return Err(Error::format(format!(
            "the key id {id} does not match its file name {name}; the file was copied or planted: check where it came from"
        )));
    }
    Ok(())
}

/// Reads a file, refusing one larger than `max` bytes before reading it.
pub fn read_bounded(path: &Path, max: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
    let mut buf = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path.display(), e))?;
    if buf.len() > max {
        return Err(Error::new(
            ErrorKind::Limit,
            format!(
                "limit max_input_bytes ({max}) exceeded: {} is larger",
                path.display()
            ),
        ));
    }
    Ok(buf)
}

/// One element of a ring as loaded, with where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// Where the element came from (a file name, or a store's element name).
    pub source: String,
    /// The parsed element, or why it could not be read.
    pub element: Result<RingElement>,
}

/// Reads every `*.xml` file directly in `dir` (no subdirectories), as `FileSystemXmlRepository`
/// does, in file-name order. Each file's failure is kept beside the others. The listing is the
/// directory store's ([`crate::store::DirectoryStore`]); unlike the store, a missing directory is
/// an error here.
pub fn read_directory(dir: &Path) -> Result<Vec<Loaded>> {
    let paths = crate::store::directory::list_xml_files(dir)?;
    Ok(paths
        .into_iter()
        .map(|p| {
            let source = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Loaded {
                element: read_file(&p),
                source,
            }
        })
        .collect())
}

/// A ring: its keys and revocations, each with its source.
#[derive(Debug, Default)]
pub struct Ring {
    /// The keys, in load order.
    pub keys: Vec<(String, Key)>,
    /// The revocations, in load order.
    pub revocations: Vec<(String, Revocation)>,
}

impl Ring {
    /// Builds a ring from loaded elements. Fails on the first element that could not be read,
    /// naming it: an unreadable element may be a revocation, and skipping it would bring revoked
    /// keys back (the rule every .NET repository follows).
    pub fn from_loaded(loaded: Vec<Loaded>) -> Result<Ring> {
        let mut ring = Ring::default();
        for l in loaded {
            match l.element {
                Ok(RingElement::Key(k)) => ring.keys.push((l.source, *k)),
                Ok(RingElement::Revocation(r)) => ring.revocations.push((l.source, r)),
                Err(e) => return Err(e.context(l.source)),
            }
        }
        Ok(ring)
    }

    /// Reads a directory of key files strictly (see [`Ring::from_loaded`]).
    pub fn read_directory(dir: &Path) -> Result<Ring> {
        Ring::from_loaded(read_directory(dir)?)
    }

    /// The revocation that revokes `key`, if any (a single-key revocation first).
    pub fn revocation_for(&self, key: &Key) -> Option<&Revocation> {
        let single = self
            .revocations
            .iter()
            .map(|(_, r)| r)
            .find(|r| matches!(r.target(), RevocationTarget::Key(_)) && r.revokes(key));
        single.or_else(|| {
            self.revocations
                .iter()
                .map(|(_, r)| r)
                .filter(|r| r.target() == RevocationTarget::AllCreatedBefore && r.revokes(key))
                .max_by(|a, b| a.date().cmp(b.date()))
        })
    }

    /// The key with `id`.
    pub fn key(&self, id: Uuid) -> Option<&Key> {
        self.keys.iter().map(|(_, k)| k).find(|k| k.id() == id)
    }
}

/// Checks a decryptor type named by a key against a registry without decrypting: `Ok` when a
/// decryptor is registered, else the error decrypting would give.
pub fn check_decryptable(key: &Key, decryptors: &Decryptors) -> Result<()> {
    match key.decryptor_type() {
        None => Ok(()),
        Some(t) if decryptors.contains(t) => Ok(()),
        Some(t) => Err(missing_decryptor(t)),
    }
}

fn single_child<'a>(element: &'a Element, name: &'a str) -> Result<&'a Element> {
    let mut it = element.elements_named(None, name);
    match (it.next(), it.next()) {
        (Some(e), None) => Ok(e),
        (None, _) => Err(Error::format(format!(
            "<{}> has no <{name}> element",
            element.name()
        ))),
        (Some(_), Some(_)) => Err(Error::format(format!(
            "<{}> has more than one <{name}> element",
            element.name()
        ))),
    }
}

fn parse_guid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s.trim()).map_err(|_| {
        Error::format(format!(
            "'{}' is not a key id (a GUID)",
            s.chars().take(60).collect::<String>()
        ))
    })
}
