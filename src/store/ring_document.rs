//! The one-document layout of a ring, shared by the stores that keep a whole ring in one document
//! (a local `.xml` file, an Azure blob): reading its elements, and the new bytes after an append or
//! an in-place replacement.
//!
//! Layout (STORES.md): UTF-8 BOM, `<?xml version="1.0" encoding="utf-8"?>`, root `<repository>`,
//! the elements unindented in insertion order. Reading accepts indented documents too (older
//! package versions wrote them) and a `<root>` document (the Key Vault secret layout). An absent or
//! zero-length document is an empty ring.
//!
//! Writing keeps every byte that is already there: a new element is inserted just before
//! `</repository>` and a re-wrapped element replaces exactly the bytes of the old one, so a
//! document written by .NET comes out as .NET would write it. (A document that is not UTF-8, has
//! an empty `<repository />`, or declares a default namespace on its root is written again from
//! its parsed form instead: semantically unchanged.)

use std::ops::Range;

use zeroize::Zeroizing;

use super::{Addition, Change, Entry, StoredElement, conflict};
use crate::error::{Error, ErrorKind, Result};
use crate::xml::{self, Element, Limits, Name, Node, RangedDocument, WriteOptions};

/// Every element of a ring document (`bytes`), each with the exact bytes it was read from.
/// `describe` names the document in errors.
pub(crate) fn entries(bytes: &[u8], describe: &str) -> Result<Vec<Entry>> {
    if is_empty_document(bytes) {
        return Ok(Vec::new());
    }
    let doc = parse(bytes).map_err(|e| e.context(describe))?;
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

/// The document `current` (`None`: absent) with `elements` added after the existing ones.
pub(crate) fn appended(
    current: Option<&[u8]>,
    elements: &[Addition],
    describe: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let doc = match current {
        Some(b) if !is_empty_document(b) => parse(b).map_err(|e| e.context(describe))?,
        _ => {
            let mut root = Element::new(Name::local("repository"));
            for a in elements {
                root.push(Node::Element(a.element.clone()));
            }
            let bytes = xml::to_secret_bytes(&root, WriteOptions::DOCUMENT);
            zeroize::Zeroize::zeroize(&mut root);
            return Ok(bytes);
        }
    };
    let insert_at = if can_splice(&doc) {
        closing_tag_start(&doc)
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
            Ok(splice(&doc, &[(at..at, new)]))
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

/// The document `current` with each changed element replaced, or a conflict error when an
/// element is no longer byte for byte what was read at its position.
pub(crate) fn replaced(
    current: Option<&[u8]>,
    changes: &[Change<'_>],
    describe: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let doc = match current {
        Some(b) if !is_empty_document(b) => parse(b).map_err(|e| e.context(describe))?,
        _ => return Err(conflict(describe, "the document (now absent or empty)")),
    };
    for c in changes {
        let now = doc
            .children
            .get(c.old.position())
            .and_then(|r| doc.text.as_bytes().get(r.clone()));
        if now != Some(c.old.raw()) {
            return Err(conflict(describe, c.old.name()));
        }
    }
    if can_splice(&doc) {
        let mut edits: Vec<(Range<usize>, Zeroizing<String>)> = Vec::new();
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
        Ok(splice(&doc, &edits))
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
pub(crate) fn is_empty_document(bytes: &[u8]) -> bool {
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
    edits: &[(Range<usize>, Zeroizing<String>)],
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
