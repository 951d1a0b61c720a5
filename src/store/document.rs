//! The one-document store: a whole ring in one file, in the layout of .NET's Azure Blob
//! repository (UTF-8 BOM, declaration, `<repository>`, elements unindented in insertion order).
//!
//! Reading accepts indented documents too (older package versions wrote them) and a `<root>`
//! document (the Key Vault secret layout). An absent or zero-length file is an empty ring.
//!
//! Writing keeps every byte that is already there: a new element is inserted just before
//! `</repository>` and a re-wrapped element replaces exactly the bytes of the old one, so a
//! document written by .NET comes out as .NET would write it. (A document that is not UTF-8, has
//! an empty `<repository />`, or declares a default namespace on its root is written again from
//! its parsed form instead: semantically unchanged.) The new document goes to a temporary file in
//! the same directory, is flushed, and is renamed over the old one; the directory is flushed after.
//!
//! Concurrency between dpwrap processes: every write holds an advisory lock on `{file}.lock` (an
//! OS file lock, released even when the process is killed) from the read to the rename. Against
//! writers that do not take the lock, the file is compared with the bytes that were read just
//! before the rename, and the write starts again (up to a few times) if it changed.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{Addition, Change, Entry, KeyStore, StoredElement, conflict};
use crate::error::{Error, ErrorKind, Result};
use crate::key_file::read_bounded;
use crate::xml::{self, Element, Limits, Name, Node, RangedDocument, WriteOptions};

/// How often a write starts again when another writer (not holding the lock) changed the file
/// between the read and the rename.
const MAX_ATTEMPTS: usize = 5;

/// A ring kept as one XML document in a local file.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    path: PathBuf,
}

impl DocumentStore {
    /// The store at `path` (nothing is read until it is used).
    pub fn new(path: impl Into<PathBuf>) -> DocumentStore {
        DocumentStore { path: path.into() }
    }

    /// The document's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn describe_path(&self) -> String {
        super::redact(&self.path.display().to_string())
    }

    /// Reads every element (see [`KeyStore::read`]), synchronously.
    pub fn read_sync(&self) -> Result<Vec<Entry>> {
        let Some(bytes) = self.current()? else {
            return Ok(Vec::new());
        };
        if is_empty_document(&bytes) {
            return Ok(Vec::new());
        }
        let doc = parse(&bytes).map_err(|e| e.context(self.describe_path()))?;
        let RangedDocument {
            mut root,
            text,
            children,
            ..
        } = doc;
        let elements = std::mem::take(root.children_mut())
            .into_iter()
            .filter_map(|n| match n {
                Node::Element(e) => Some(e),
                _ => None,
            });
        Ok(elements
            .zip(children)
            .enumerate()
            .map(|(position, (element, range))| {
                let name = format!("element {position}");
                let raw = Zeroizing::new(
                    text.as_bytes()
                        .get(range)
                        .map(<[u8]>::to_vec)
                        .unwrap_or_default(),
                );
                Entry {
                    element: Ok(StoredElement::new(element, name.clone(), raw, position)),
                    name,
                }
            })
            .collect())
    }

    /// Adds elements (see [`KeyStore::append`]), synchronously.
    pub fn append_sync(&self, elements: &[Addition]) -> Result<()> {
        if elements.is_empty() {
            return Ok(());
        }
        self.modify(|doc| match doc {
            None => {
                let mut root = Element::new(Name::local("repository"));
                for a in elements {
                    root.push(Node::Element(a.element.clone()));
                }
                let bytes = xml::to_secret_bytes(&root, WriteOptions::DOCUMENT);
                zeroize::Zeroize::zeroize(&mut root);
                Ok(bytes)
            }
            Some(doc) => {
                let insert_at = if can_splice(doc) {
                    closing_tag_start(doc)
                } else {
                    None
                };
                match insert_at {
                    Some(at) => {
                        let mut new = Zeroizing::new(String::new());
                        for a in elements {
                            let s = Zeroizing::new(xml::to_compact_string(&a.element));
                            new.push_str(&s);
                        }
                        Ok(splice(doc, &[(at..at, new)]))
                    }
                    None => {
                        let mut root = doc.root.clone();
                        for a in elements {
                            root.push(Node::Element(a.element.clone()));
                        }
                        let bytes = xml::to_secret_bytes(&root, WriteOptions::DOCUMENT);
                        zeroize::Zeroize::zeroize(&mut root);
                        Ok(bytes)
                    }
                }
            }
        })
    }

    /// Replaces elements in place (see [`KeyStore::replace`]), synchronously.
    pub fn replace_sync(&self, changes: &[Change<'_>]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let describe = self.describe_path();
        self.modify(|doc| {
            let Some(doc) = doc else {
                return Err(conflict(&describe, "the document (now absent or empty)"));
            };
            for c in changes {
                let current = doc
                    .children
                    .get(c.old.position())
                    .and_then(|r| doc.text.as_bytes().get(r.clone()));
                if current != Some(c.old.raw()) {
                    return Err(conflict(&describe, c.old.name()));
                }
            }
            if can_splice(doc) {
                let mut edits: Vec<(std::ops::Range<usize>, Zeroizing<String>)> = Vec::new();
                for c in changes {
                    if let Some(r) = doc.children.get(c.old.position()) {
                        edits.push((r.clone(), Zeroizing::new(xml::to_compact_string(&c.new))));
                    }
                }
                edits.sort_by_key(|(r, _)| r.start);
                if edits.windows(2).any(|w| match w {
                    [a, b] => a.0 == b.0,
                    _ => false,
                }) {
                    return Err(Error::new(
                        ErrorKind::Store,
                        "the same element is replaced twice in one change set",
                    ));
                }
                Ok(splice(doc, &edits))
            } else {
                let mut root = doc.root.clone();
                let mut index = 0usize;
                for node in root.children_mut().iter_mut() {
                    if let Node::Element(e) = node {
                        if let Some(c) = changes.iter().find(|c| c.old.position() == index) {
                            zeroize::Zeroize::zeroize(e);
                            *e = c.new.clone();
                        }
                        index += 1;
                    }
                }
                let bytes = xml::to_secret_bytes(&root, WriteOptions::DOCUMENT);
                zeroize::Zeroize::zeroize(&mut root);
                Ok(bytes)
            }
        })
    }

    /// The document's bytes, or `None` when the file does not exist.
    fn current(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match read_bounded(&self.path, Limits::ring_document().max_input_bytes) {
            Ok(b) => Ok(Some(Zeroizing::new(b))),
            Err(e) if e.kind() == ErrorKind::Io && !self.path.exists() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Read-modify-write under the lock: `edit` gets the parsed document (`None` for an empty
    /// ring) and returns the new bytes.
    fn modify(
        &self,
        mut edit: impl FnMut(Option<&RangedDocument<'_>>) -> Result<Zeroizing<Vec<u8>>>,
    ) -> Result<()> {
        let describe = self.describe_path();
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display(), e))?;
        let _lock = self.lock()?;
        for _ in 0..MAX_ATTEMPTS {
            let before = self.current()?;
            let new_bytes = match before.as_deref() {
                Some(b) if !is_empty_document(b) => {
                    let doc = parse(b).map_err(|e| e.context(&describe))?;
                    edit(Some(&doc))?
                }
                _ => edit(None)?,
            };
            let temp = self.write_temp(&dir, &new_bytes)?;
            let after = self.current();
            let same = match (&before, &after) {
                (Some(a), Ok(Some(b))) => a.as_slice() == b.as_slice(),
                (None, Ok(None)) => true,
                _ => false,
            };
            if !same {
                remove_quietly(&temp);
                after?;
                // Someone who does not take the lock wrote in between: start again.
                continue;
            }
            if let Err(e) = fs::rename(&temp, &self.path) {
                remove_quietly(&temp);
                return Err(Error::io(self.path.display(), e));
            }
            return sync_dir(&dir);
        }
        Err(Error::new(
            ErrorKind::Store,
            format!(
                "{describe}: the document kept changing while it was written ({MAX_ATTEMPTS} attempts); another program writes it without dpwrap's lock: stop it and retry"
            ),
        ))
    }

    fn lock(&self) -> Result<File> {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let path = self.path.with_file_name(name);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(path.display(), e))?;
        f.lock().map_err(|e| {
            Error::new(
                ErrorKind::Store,
                format!("{}: could not lock: {e}", path.display()),
            )
        })?;
        Ok(f)
    }

    fn write_temp(&self, dir: &Path, bytes: &[u8]) -> Result<PathBuf> {
        let base = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{base}.{}.tmp", uuid::Uuid::new_v4()));
        let result = (|| -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        match result {
            Ok(()) => Ok(temp),
            Err(e) => {
                remove_quietly(&temp);
                Err(Error::io(temp.display(), e))
            }
        }
    }
}

/// Parses a ring document and checks its root.
fn parse(bytes: &[u8]) -> Result<RangedDocument<'_>> {
    let doc = xml::parse_ranged(bytes, &Limits::ring_document())?;
    let root = &doc.root;
    if root.is(None, "repository") || root.is(None, "root") {
        return Ok(doc);
    }
    if root.is(None, "key") || root.is(None, "revocation") {
        return Err(Error::format(format!(
            "this is a single <{}> element file, not a ring document; point dpwrap at the directory that holds it",
            root.name()
        )));
    }
    Err(Error::format(format!(
        "the document's root is <{}>; a ring document has the root <repository>",
        root.name()
    )))
}

/// An absent ring: no bytes, or only a BOM and whitespace.
fn is_empty_document(bytes: &[u8]) -> bool {
    bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(bytes)
        .iter()
        .all(u8::is_ascii_whitespace)
}

/// Whether new text can be spliced into the document's own bytes: UTF-8 input, and no default
/// namespace on the root that would capture the spliced elements.
fn can_splice(doc: &RangedDocument<'_>) -> bool {
    doc.utf8
        && !doc
            .root
            .namespace_decls()
            .iter()
            .any(|d| d.prefix.is_none() && !d.uri.is_empty())
}

/// Where the root's end tag starts (`None` for an empty `<repository />`).
fn closing_tag_start(doc: &RangedDocument<'_>) -> Option<usize> {
    let root_text = doc.text.get(doc.root_range.clone())?;
    root_text.rfind("</").map(|i| doc.root_range.start + i)
}

/// The document with `edits` (sorted, disjoint ranges of the text) applied, as UTF-8 bytes with
/// the BOM the input had.
fn splice(
    doc: &RangedDocument<'_>,
    edits: &[(std::ops::Range<usize>, Zeroizing<String>)],
) -> Zeroizing<Vec<u8>> {
    let text = doc.text.as_bytes();
    let extra: usize = edits.iter().map(|(_, s)| s.len()).sum();
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() + extra + 3));
    if doc.bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let mut at = 0usize;
    for (range, replacement) in edits {
        out.extend_from_slice(text.get(at..range.start).unwrap_or_default());
        out.extend_from_slice(replacement.as_bytes());
        at = range.end;
    }
    out.extend_from_slice(text.get(at..).unwrap_or_default());
    out
}

fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir.display(), e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[async_trait]
impl KeyStore for DocumentStore {
    fn describe(&self) -> String {
        self.describe_path()
    }

    async fn read(&self) -> Result<Vec<Entry>> {
        self.read_sync()
    }

    async fn append(&self, elements: &[Addition]) -> Result<()> {
        self.append_sync(elements)
    }

    async fn replace(&self, changes: &[Change<'_>]) -> Result<()> {
        self.replace_sync(changes)
    }
}
