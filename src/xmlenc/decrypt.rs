//! Decryption: find every key the `KeyInfo` leads to, try each, keep the first that yields a
//! plausible plaintext.
//!
//! A candidate fails when its RSA decryption or key unwrap fails, when the key it yields has the
//! wrong length for the algorithm, when the content does not decrypt or unpad, or when an
//! `Element`/`Content` plaintext is not XML. PKCS#1 v1.5 uses implicit rejection (a wrong RSA key
//! yields unrelated bytes, not an error), so these later checks are what reject a wrong key. All
//! candidates failing is one opaque [`Error::decrypt`]; no candidate at all is
//! [`ErrorKind::NoMatchingKey`], naming what the data asks for and what the resolver holds.

use zeroize::{Zeroize, Zeroizing};

use crate::crypto::ContentAlgorithm;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::{SecretBytes, SecretElement};
use crate::xml::{Element, Limits, NS_XENC, Node, parse_fragment};

use super::algorithms::{
    KeyAlgorithm, TYPE_ENCRYPTED_KEY, content_algorithm, key_algorithm, shorten,
};
use super::model::{
    CipherData, DataType, EncryptedData, EncryptedKey, KeyInfo, KeyInfoItem, Scope,
};
use super::reference::{IdIndex, cipher_reference_bytes, find_all, path_of};
use super::resolve::{KeyResolver, hex_upper, sha1_thumbprint};
use super::{
    MAX_CIPHER_VALUE_BYTES, MAX_DOCUMENT_PASSES, MAX_ENCRYPTED_DATA, MAX_ENCRYPTED_KEYS,
    MAX_KEY_DEPTH, MAX_RSA_ATTEMPTS, MAX_WRAPPED_KEY_BYTES,
};

/// Everything a successful decryption produced. The secrets are wiped on drop and never printed.
#[derive(Debug)]
pub struct DecryptedData {
    /// The plaintext octets (for `Element`/`Content`, UTF-8 XML checked to parse).
    pub plaintext: SecretBytes,
    /// The `EncryptedData`'s `Type`.
    pub data_type: DataType,
    /// The content algorithm.
    pub content_algorithm: ContentAlgorithm,
    /// The content key that decrypted it.
    pub content_key: SecretBytes,
    /// How the content key was found (`EncryptedKey (rsa-1_5) ← RSA key (2048 bits, certificate
    /// 3BFD…)`): names and thumbprints only.
    pub key_source: String,
}

/// Decrypts an `EncryptedData` element, returning the plaintext octets.
///
/// `document_root` is the document the element belongs to: `RetrievalMethod`s, `CarriedKeyName`s
/// and `CipherReference`s are looked up there, and an `Element`/`Content` plaintext must parse in
/// the namespace context of the element's parent there. Pass the element itself when it stands
/// alone.
pub fn decrypt_encrypted_data(
    encrypted_data: &Element,
    document_root: &Element,
    resolver: &dyn KeyResolver,
) -> Result<Zeroizing<Vec<u8>>> {
    let d = decrypt_encrypted_data_with_details(encrypted_data, document_root, resolver)?;
    Ok(Zeroizing::new(d.plaintext.expose().to_vec()))
}

/// Like [`decrypt_encrypted_data`], also reporting the algorithm, the content key and where it
/// came from.
pub fn decrypt_encrypted_data_with_details(
    encrypted_data: &Element,
    document_root: &Element,
    resolver: &dyn KeyResolver,
) -> Result<DecryptedData> {
    let scope = parent_scope(document_root, encrypted_data);
    let ed = EncryptedData::parse_in(encrypted_data, &scope)?;
    let data_type = ed.data_type.clone();
    let mut accept = |pt: Zeroizing<Vec<u8>>| -> Option<Zeroizing<Vec<u8>>> {
        if data_type.is_xml() {
            let mut nodes = parse_plaintext(&pt, &scope, &data_type, false)?;
            wipe(&mut nodes);
        }
        Some(pt)
    };
    let (plaintext, alg, key, source) = decrypt_parsed(&ed, document_root, resolver, &mut accept)?;
    Ok(DecryptedData {
        plaintext: SecretBytes::from(plaintext),
        data_type: ed.data_type,
        content_algorithm: alg,
        content_key: key,
        key_source: source,
    })
}

/// Decrypts every `EncryptedData` of type `Element` or `Content` in `document`, replacing each by
/// its plaintext (parsed in the namespace context of its parent), and returns how many were
/// replaced. Plaintext that itself holds `EncryptedData` is decrypted too, a few levels deep.
///
/// An `EncryptedData` without such a `Type` holds octets that have no place in a tree: that is a
/// [`ErrorKind::Format`] error (use [`decrypt_encrypted_data`]). On any error the document is left
/// as it was.
pub fn decrypt_document(document: &mut Element, resolver: &dyn KeyResolver) -> Result<usize> {
    let mut work = document.clone();
    match decrypt_in_place(&mut work, resolver) {
        Ok(count) => {
            *document = work;
            Ok(count)
        }
        Err(e) => {
            // Whatever was already decrypted into the copy goes.
            work.zeroize();
            Err(e)
        }
    }
}

fn decrypt_in_place(document: &mut Element, resolver: &dyn KeyResolver) -> Result<usize> {
    let mut count = 0;
    for _ in 0..MAX_DOCUMENT_PASSES {
        let paths = document.paths_where(&mut |e| e.is(Some(NS_XENC), "EncryptedData"));
        if paths.is_empty() {
            return Ok(count);
        }
        if paths.len() > MAX_ENCRYPTED_DATA {
            return Err(Error::new(
                ErrorKind::Limit,
                format!(
                    "limit EncryptedData per document ({MAX_ENCRYPTED_DATA}) exceeded: the document has {}",
                    paths.len()
                ),
            ));
        }
        // Wiped if a later EncryptedData of the pass fails and they are never used.
        let mut replacements = Replacements(Vec::with_capacity(paths.len()));
        let root: &Element = document;
        for path in paths {
            let Some(el) = root.at(&path) else {
                continue;
            };
            let scope = match path.split_last() {
                Some((_, parent)) => root.namespaces_in_scope(parent),
                None => Vec::new(),
            };
            let ed = EncryptedData::parse_in(el, &scope)?;
            if !ed.data_type.is_xml() {
                return Err(Error::format(
                    "an EncryptedData without Type Element or Content holds octets, which cannot replace it in the document; decrypt it with decrypt_encrypted_data",
                ));
            }
            let at_root = path.is_empty();
            let data_type = ed.data_type.clone();
            let mut accept = |pt: Zeroizing<Vec<u8>>| -> Option<Vec<Node>> {
                parse_plaintext(&pt, &scope, &data_type, at_root)
            };
            let (nodes, ..) = decrypt_parsed(&ed, root, resolver, &mut accept)?;
            replacements.0.push((path, nodes));
        }
        // Later elements first: splicing never shifts the paths of earlier ones.
        for (path, nodes) in std::mem::take(&mut replacements.0).into_iter().rev() {
            match path.split_last() {
                None => {
                    if let Some(Node::Element(el)) =
                        nodes.into_iter().find(|n| matches!(n, Node::Element(_)))
                    {
                        *document = el;
                    }
                }
                Some((_, parent)) => {
                    document.splice_at(&path, nodes);
                    if let Some(p) = document.at_mut(parent) {
                        merge_adjacent_text(p);
                    }
                }
            }
            count += 1;
        }
    }
    if document
        .paths_where(&mut |e| e.is(Some(NS_XENC), "EncryptedData"))
        .is_empty()
    {
        Ok(count)
    } else {
        Err(Error::new(
            ErrorKind::Limit,
            format!(
                "limit nested encryption ({MAX_DOCUMENT_PASSES} levels) exceeded: decrypted content keeps holding EncryptedData"
            ),
        ))
    }
}

/// Decrypts an `EncryptedData` whose plaintext is one element, parsed with an empty namespace
/// context: what ASP.NET Core's `EncryptedXmlDecryptor` does (it wraps the `EncryptedData` in a
/// fresh `<root>`, so references resolve within the `EncryptedData` only).
pub fn decrypt_element_type(
    encrypted_data: &Element,
    resolver: &dyn KeyResolver,
) -> Result<SecretElement> {
    let ed = EncryptedData::parse(encrypted_data)?;
    let empty: Scope = Vec::new();
    let mut accept = |pt: Zeroizing<Vec<u8>>| -> Option<Element> {
        let nodes = parse_plaintext(&pt, &empty, &DataType::Element, true)?;
        nodes.into_iter().find_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    };
    let (element, ..) = decrypt_parsed(&ed, encrypted_data, resolver, &mut accept)?;
    Ok(SecretElement::new(element))
}

/// Decrypted nodes waiting to go into the document.
struct Replacements(Vec<(Vec<usize>, Vec<Node>)>);

impl Drop for Replacements {
    fn drop(&mut self) {
        for (_, nodes) in self.0.iter_mut() {
            wipe(nodes);
        }
    }
}

fn parent_scope(root: &Element, el: &Element) -> Scope {
    match path_of(root, el) {
        Some(path) => match path.split_last() {
            Some((_, parent)) => root.namespaces_in_scope(parent),
            None => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// Parses a decrypted `Element`/`Content` plaintext. `None` rejects the candidate: not UTF-8, not
/// well-formed, or (for `Element`, and anything replacing a document's root) not exactly one
/// element with nothing but comments and whitespace around it.
fn parse_plaintext(
    pt: &[u8],
    scope: &Scope,
    data_type: &DataType,
    at_root: bool,
) -> Option<Vec<Node>> {
    let text = std::str::from_utf8(pt).ok()?;
    let mut nodes = parse_fragment(text, scope, &Limits::default()).ok()?;
    if *data_type == DataType::Element || at_root {
        let elements = nodes
            .iter()
            .filter(|n| matches!(n, Node::Element(_)))
            .count();
        let text = nodes.iter().any(|n| matches!(n, Node::Text(_)));
        if elements != 1 || text {
            wipe(&mut nodes);
            return None;
        }
    }
    Some(nodes)
}

fn wipe(nodes: &mut [Node]) {
    for n in nodes.iter_mut() {
        match n {
            Node::Element(e) => e.zeroize(),
            Node::Text(t) | Node::Comment(t) => t.zeroize(),
            Node::ProcessingInstruction { data, .. } => data.zeroize(),
        }
    }
}

fn merge_adjacent_text(el: &mut Element) {
    let children = el.children_mut();
    let mut out: Vec<Node> = Vec::with_capacity(children.len());
    for node in children.drain(..) {
        match (out.last_mut(), node) {
            (Some(Node::Text(prev)), Node::Text(mut t)) => {
                // A fresh buffer, so that no reallocation leaves a copy of the text behind.
                let mut s = String::with_capacity(prev.len() + t.len());
                s.push_str(prev);
                s.push_str(&t);
                prev.zeroize();
                t.zeroize();
                *prev = s;
            }
            (_, node) => out.push(node),
        }
    }
    *children = out;
}

type Decrypted<T> = (T, ContentAlgorithm, SecretBytes, String);

/// Finds the content key of a parsed `EncryptedData` and decrypts, letting `accept` judge each
/// candidate plaintext.
fn decrypt_parsed<T>(
    ed: &EncryptedData,
    root: &Element,
    resolver: &dyn KeyResolver,
    accept: &mut dyn FnMut(Zeroizing<Vec<u8>>) -> Option<T>,
) -> Result<Decrypted<T>> {
    let method = ed.method.as_ref().ok_or_else(|| {
        Error::format(
            "the EncryptedData has no EncryptionMethod; dpwrap cannot guess the content algorithm",
        )
    })?;
    let alg = content_algorithm(&method.algorithm)?;
    let mut walk = Walk::new(root, resolver);
    let ciphertext = walk.cipher_bytes(&ed.cipher_data, MAX_CIPHER_VALUE_BYTES)?;
    let Some(key_info) = &ed.key_info else {
        return Err(Error::new(
            ErrorKind::NoMatchingKey,
            "the EncryptedData has no KeyInfo, so it names no key; dpwrap cannot tell which key to use",
        ));
    };
    let mut found: Option<Decrypted<T>> = None;
    walk.symmetric_keys(key_info, 0, &mut |key, source| {
        if key.len() != alg.key_len() {
            return false;
        }
        let Ok(pt) = alg.decrypt(key, &ciphertext) else {
            return false;
        };
        match accept(pt) {
            Some(t) => {
                found = Some((t, alg, SecretBytes::copy_from(key), source.to_owned()));
                true
            }
            None => false,
        }
    });
    match found {
        Some(f) => Ok(f),
        None => Err(walk.failure()),
    }
}

/// Receives each candidate key with a description of where it came from; `true` stops the search.
type Sink<'s> = dyn FnMut(&[u8], &str) -> bool + 's;

/// The search for keys through one `EncryptedData`'s `KeyInfo`.
struct Walk<'d> {
    root: &'d Element,
    resolver: &'d dyn KeyResolver,
    /// `EncryptedKey`s that may still be tried.
    budget: usize,
    /// RSA decryptions that may still be tried.
    rsa_budget: usize,
    /// The budget ran out.
    exhausted: bool,
    /// Some key was actually applied (so a failure is a decryption failure).
    tried: bool,
    /// Problems met on the way (unsupported algorithms, bad references), reported if nothing
    /// was tried.
    problems: Vec<Error>,
    /// What the data asks for that no key answered, for the "no matching key" message.
    wanted: Vec<String>,
    /// The document `EncryptedKey`s being resolved (loop detection).
    chain: Vec<*const Element>,
    /// Every `EncryptedKey` of the document that has a `CarriedKeyName`, with that name: found
    /// once, on the first `KeyName`. Scanning the document for each `KeyName` instead let a
    /// 650 KB document full of `KeyName`s cost seconds.
    carried: Option<Vec<(crate::xml::Path, &'d Element, String)>>,
    /// The document's elements by `Id`, built on the first `RetrievalMethod` or
    /// `CipherReference`, for the same reason.
    ids: Option<IdIndex<'d>>,
}

impl<'d> Walk<'d> {
    fn new(root: &'d Element, resolver: &'d dyn KeyResolver) -> Walk<'d> {
        Walk {
            root,
            resolver,
            budget: MAX_ENCRYPTED_KEYS,
            rsa_budget: MAX_RSA_ATTEMPTS,
            exhausted: false,
            tried: false,
            problems: Vec::new(),
            wanted: Vec::new(),
            chain: Vec::new(),
            carried: None,
            ids: None,
        }
    }

    fn ids(&mut self) -> &IdIndex<'d> {
        let root = self.root;
        self.ids.get_or_insert_with(|| IdIndex::new(root))
    }

    fn problem(&mut self, e: &Error) {
        if self.problems.len() < 8 {
            self.problems
                .push(Error::new(e.kind(), e.message().to_owned()));
        }
    }

    fn want(&mut self, what: String) {
        if self.wanted.len() < 16 && !self.wanted.contains(&what) {
            self.wanted.push(what);
        }
    }

    fn cipher_bytes(&mut self, cd: &CipherData, max: usize) -> Result<Vec<u8>> {
        match cd {
            CipherData::Value(v) => Ok(v.clone()),
            CipherData::Reference(r) => {
                let root = self.root;
                cipher_reference_bytes(root, self.ids(), r, max)
            }
        }
    }

    /// Feeds `sink` every symmetric key `key_info` leads to: named keys, inline, retrieved and
    /// carried `EncryptedKey`s. Returns whether the sink accepted one.
    fn symmetric_keys(&mut self, key_info: &KeyInfo, depth: usize, sink: &mut Sink<'_>) -> bool {
        let mut usable = false;
        for item in &key_info.items {
            if self.exhausted {
                return false;
            }
            match item {
                KeyInfoItem::KeyName(name) => {
                    usable = true;
                    let keys = self.resolver.symmetric_keys(name);
                    let mut any = !keys.is_empty();
                    for k in keys {
                        self.tried = true;
                        if sink(k.expose(), &format!("symmetric key '{}'", shorten(name))) {
                            return true;
                        }
                    }
                    let carried: Vec<(crate::xml::Path, &'d Element)> = self
                        .carried_keys()
                        .iter()
                        .filter(|(_, _, carried)| carried == name)
                        .map(|(path, el, _)| (path.clone(), *el))
                        .collect();
                    any |= !carried.is_empty();
                    for (path, el) in carried {
                        if self.document_key(&path, el, depth, sink) {
                            return true;
                        }
                    }
                    if !any {
                        self.want(format!(
                            "a key named '{}' (a symmetric key, or an EncryptedKey with that CarriedKeyName)",
                            shorten(name)
                        ));
                    }
                }
                KeyInfoItem::EncryptedKey(ek) => {
                    usable = true;
                    if self.encrypted_key(ek, depth, sink) {
                        return true;
                    }
                }
                KeyInfoItem::RetrievalMethod(rm) => {
                    usable = true;
                    if rm.has_transforms {
                        self.problem(&Error::unsupported(
                            "a RetrievalMethod with Transforms is not supported",
                        ));
                        continue;
                    }
                    if let Some(t) = rm.retrieval_type.as_deref()
                        && t != TYPE_ENCRYPTED_KEY
                    {
                        self.problem(&Error::unsupported(format!(
                            "a RetrievalMethod of Type '{}' cannot supply a symmetric key; only {TYPE_ENCRYPTED_KEY} is supported",
                            shorten(t)
                        )));
                        continue;
                    }
                    let target = self
                        .ids()
                        .same_document_target(&rm.uri, "RetrievalMethod")
                        .and_then(|(path, el)| {
                            if el.is(Some(NS_XENC), "EncryptedKey") {
                                Ok((path, el))
                            } else {
                                Err(Error::format(format!(
                                    "the RetrievalMethod '{}' points at a <{}>, not an EncryptedKey",
                                    shorten(&rm.uri),
                                    el.name()
                                )))
                            }
                        });
                    match target {
                        Ok((path, el)) => {
                            if self.document_key(&path, el, depth, sink) {
                                return true;
                            }
                        }
                        Err(e) => self.problem(&e),
                    }
                }
                KeyInfoItem::Unusable(e) => {
                    usable = true;
                    self.problem(e);
                }
                KeyInfoItem::X509Data(_)
                | KeyInfoItem::RsaKeyValue { .. }
                | KeyInfoItem::Other(_) => {}
            }
        }
        if !usable {
            let kinds: Vec<String> = key_info
                .items
                .iter()
                .map(|i| match i {
                    KeyInfoItem::X509Data(_) => "X509Data".to_owned(),
                    KeyInfoItem::RsaKeyValue { .. } => "KeyValue".to_owned(),
                    KeyInfoItem::Other(n) => shorten(n),
                    _ => String::new(),
                })
                .collect();
            self.want(if kinds.is_empty() {
                "a symmetric key, but the KeyInfo is empty".to_owned()
            } else {
                format!(
                    "a symmetric key, but the KeyInfo holds only {} (no KeyName, EncryptedKey or RetrievalMethod)",
                    kinds.join(", ")
                )
            });
        }
        false
    }

    fn carried_keys(&mut self) -> &[(crate::xml::Path, &'d Element, String)] {
        let root = self.root;
        self.carried.get_or_insert_with(|| {
            find_all(root, &mut |e| {
                e.is(Some(NS_XENC), "EncryptedKey")
                    && e.element(Some(NS_XENC), "CarriedKeyName").is_some()
            })
            .into_iter()
            .filter_map(|(path, el)| {
                let name = el.element(Some(NS_XENC), "CarriedKeyName")?.text();
                Some((path, el, name.trim().to_owned()))
            })
            .collect()
        })
    }

    /// An `EncryptedKey` found elsewhere in the document (by `RetrievalMethod` or
    /// `CarriedKeyName`): parsed here, guarded against reference loops.
    fn document_key(
        &mut self,
        path: &[usize],
        el: &'d Element,
        depth: usize,
        sink: &mut Sink<'_>,
    ) -> bool {
        let ptr: *const Element = el;
        if self.chain.contains(&ptr) {
            self.problem(&Error::format(
                "the EncryptedKey references form a loop (RetrievalMethod or CarriedKeyName leading back to an EncryptedKey being resolved)",
            ));
            return false;
        }
        let scope = match path.split_last() {
            Some((_, parent)) => self.root.namespaces_in_scope(parent),
            None => Vec::new(),
        };
        let ek = match EncryptedKey::parse_at(el, &scope, depth) {
            Ok(ek) => ek,
            Err(e) => {
                self.problem(&e);
                return false;
            }
        };
        self.chain.push(ptr);
        let done = self.encrypted_key(&ek, depth, sink);
        self.chain.pop();
        done
    }

    /// Unwraps one `EncryptedKey` with every key-encryption key its `KeyInfo` leads to, feeding
    /// each unwrapped key to `sink`.
    fn encrypted_key(&mut self, ek: &EncryptedKey, depth: usize, sink: &mut Sink<'_>) -> bool {
        if depth > MAX_KEY_DEPTH {
            self.problem(&Error::new(
                ErrorKind::Limit,
                format!(
                    "limit EncryptedKey nesting ({MAX_KEY_DEPTH}) exceeded: keys wrapped in keys, or a RetrievalMethod chain, go too deep"
                ),
            ));
            return false;
        }
        if self.budget == 0 {
            self.exhausted = true;
            return false;
        }
        self.budget -= 1;
        let algorithm = match key_algorithm(&ek.method) {
            Ok(a) => a,
            Err(e) => {
                self.problem(&e);
                return false;
            }
        };
        let wrapped = match self.cipher_bytes(&ek.cipher_data, MAX_WRAPPED_KEY_BYTES) {
            Ok(w) => w,
            Err(e) => {
                self.problem(&e);
                return false;
            }
        };
        let uri = short_uri(&ek.method.algorithm);
        match algorithm {
            KeyAlgorithm::Rsa(padding) => {
                let empty = KeyInfo::default();
                let hints = ek.key_info.as_ref().unwrap_or(&empty);
                let candidates = self.resolver.rsa_keys(hints);
                if candidates.is_empty() {
                    self.want_rsa(hints);
                    return false;
                }
                for c in candidates {
                    if self.rsa_budget == 0 {
                        self.exhausted = true;
                        return false;
                    }
                    self.rsa_budget -= 1;
                    self.tried = true;
                    if let Ok(key) = c.private_key().decrypt(&padding, &wrapped) {
                        let source = format!("EncryptedKey ({uri}) ← {}", c.description());
                        if sink(&key, &source) {
                            return true;
                        }
                    }
                }
                false
            }
            KeyAlgorithm::Wrap(kw) => {
                let Some(hints) = &ek.key_info else {
                    self.want(format!(
                        "a key-encryption key for an EncryptedKey ({uri}) that has no KeyInfo"
                    ));
                    return false;
                };
                self.symmetric_keys(hints, depth + 1, &mut |kek, kek_source| {
                    if kek.len() != kw.kek_len() {
                        return false;
                    }
                    match kw.unwrap(kek, &wrapped) {
                        Ok(key) => sink(&key, &format!("EncryptedKey ({uri}) ← {kek_source}")),
                        Err(_) => false,
                    }
                })
            }
        }
    }

    fn want_rsa(&mut self, hints: &KeyInfo) {
        let mut any = false;
        for name in hints.key_names() {
            any = true;
            self.want(format!("an RSA key named '{}'", shorten(name)));
        }
        for x in hints.x509_data() {
            for c in &x.certificates {
                any = true;
                self.want(format!(
                    "the certificate with thumbprint {}",
                    sha1_thumbprint(c)
                ));
            }
            for is in &x.issuer_serials {
                any = true;
                self.want(format!(
                    "the certificate issued by '{}' with serial number {}",
                    shorten(&is.issuer_name),
                    shorten(&is.serial_number)
                ));
            }
            for ski in &x.skis {
                any = true;
                self.want(format!(
                    "the certificate with subject key identifier {}",
                    hex_upper(ski)
                ));
            }
            for s in &x.subject_names {
                any = true;
                self.want(format!("the certificate with subject '{}'", shorten(s)));
            }
        }
        for m in hints.rsa_moduli() {
            any = true;
            let head: Vec<u8> = m.iter().copied().skip_while(|b| *b == 0).take(8).collect();
            self.want(format!(
                "the RSA key whose modulus starts {}",
                hex_upper(&head)
            ));
        }
        if !any {
            self.want(
                "an RSA key, but the EncryptedKey does not say which (enable trying every RSA key for such keys)"
                    .to_owned(),
            );
        }
    }

    /// The error when no candidate worked.
    fn failure(mut self) -> Error {
        if self.exhausted {
            return Error::new(
                ErrorKind::Limit,
                format!(
                    "limit key attempts ({MAX_ENCRYPTED_KEYS} EncryptedKey elements, {MAX_RSA_ATTEMPTS} RSA decryptions) exceeded: the data offers more keys than dpwrap tries, and none of those tried worked"
                ),
            );
        }
        if self.tried {
            return Error::decrypt();
        }
        if !self.problems.is_empty() {
            return self.problems.swap_remove(0);
        }
        let mut available = self.resolver.available();
        let more = available.len().saturating_sub(16);
        available.truncate(16);
        let mut have = if available.is_empty() {
            "no keys".to_owned()
        } else {
            available.join("; ")
        };
        if more > 0 {
            have.push_str(&format!("; and {more} more"));
        }
        let wanted = if self.wanted.is_empty() {
            "a key, but names none dpwrap can use".to_owned()
        } else {
            self.wanted.join("; ")
        };
        Error::new(
            ErrorKind::NoMatchingKey,
            format!(
                "no configured key matches the encrypted data: it asks for {wanted}; available: {have}; configure the matching certificate or key"
            ),
        )
    }
}

/// The fragment of an algorithm URI after `#`, for descriptions.
fn short_uri(uri: &str) -> String {
    shorten(uri.rsplit('#').next().unwrap_or(uri))
}
