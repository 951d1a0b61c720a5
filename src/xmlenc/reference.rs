//! Same-document references: `Id` lookup, `CipherReference` (with the one XPath form the W3C
//! interop vectors use) and the targets of `ds:RetrievalMethod`.
//!
//! Nothing here ever leaves the document: every URI other than `#id` (and `""` narrowed by an
//! XPath) is refused, so a hostile document cannot make dpwrap read files or the network.

use crate::error::{Error, ErrorKind, Result};
use crate::xml::{Element, Node, Path};

use super::algorithms::{TRANSFORM_BASE64, TRANSFORM_XPATH, shorten};
use super::model::{CipherReference, Transform, decode_base64, descendant_text, id_of};

/// Every element below and including `root` for which `pred` holds, with its path, in document
/// order (descending into matches too). Iterative: safe on deep trees.
pub(crate) fn find_all<'a>(
    root: &'a Element,
    pred: &mut dyn FnMut(&Element) -> bool,
) -> Vec<(Path, &'a Element)> {
    let mut out = Vec::new();
    if pred(root) {
        out.push((Vec::new(), root));
    }
    let mut stack: Vec<(&'a Element, usize)> = vec![(root, 0)];
    let mut path: Path = Vec::new();
    while let Some((el, i)) = stack.pop() {
        let Some(node) = el.children().get(i) else {
            path.pop();
            continue;
        };
        stack.push((el, i + 1));
        if let Node::Element(child) = node {
            path.push(i);
            if pred(child) {
                out.push((path.clone(), child));
            }
            stack.push((child, 0));
        }
    }
    out
}

/// The path of `target` (an element borrowed from `root`'s tree) below `root`.
pub(crate) fn path_of(root: &Element, target: &Element) -> Option<Path> {
    root.paths_where(&mut |e| std::ptr::eq(e, target))
        .into_iter()
        .next()
}

/// Every element of a document that has an `Id`, by that `Id`: built once per decryption, so that
/// each `RetrievalMethod` or `CipherReference` is a lookup rather than a scan of the whole
/// document (a document full of references would otherwise cost time quadratic in its size).
pub(crate) struct IdIndex<'a> {
    ids: std::collections::HashMap<&'a str, Vec<(Path, &'a Element)>>,
}

impl<'a> IdIndex<'a> {
    /// Indexes every `Id` below and including `root`.
    pub(crate) fn new(root: &'a Element) -> IdIndex<'a> {
        let mut ids: std::collections::HashMap<&'a str, Vec<(Path, &'a Element)>> =
            std::collections::HashMap::new();
        for (path, el) in find_all(root, &mut |e| id_of(e).is_some()) {
            if let Some(id) = id_of(el) {
                ids.entry(id).or_default().push((path, el));
            }
        }
        IdIndex { ids }
    }

    /// The one element whose `Id` is `id`. Several elements with the same `Id` are refused: which
    /// one is meant would be a guess, and a guess is what signature-wrapping attacks exploit.
    pub(crate) fn by_id(&self, id: &str) -> Result<(Path, &'a Element)> {
        match self.ids.get(id).map(Vec::as_slice) {
            Some([(path, el)]) => Ok((path.clone(), *el)),
            Some(found) if found.len() > 1 => Err(Error::format(format!(
                "the Id '{}' is used by {} elements; a reference to it is ambiguous",
                shorten(id),
                found.len()
            ))),
            _ => Err(Error::format(format!(
                "the reference '#{}' names no element of the document",
                shorten(id)
            ))),
        }
    }

    /// The element a same-document URI (`#id`) names. Every other URI is refused.
    pub(crate) fn same_document_target(
        &self,
        uri: &str,
        what: &str,
    ) -> Result<(Path, &'a Element)> {
        let uri = uri.trim();
        match uri.strip_prefix('#') {
            Some(id) if !id.is_empty() && !id.starts_with("xpointer(") => self.by_id(id),
            _ => Err(Error::unsupported(format!(
                "the {what} URI '{}' is not a same-document reference ('#id'); dpwrap never follows references outside the document (files, network, XPointer)",
                shorten(uri)
            ))),
        }
    }
}

/// The octets a `CipherReference` names: `#id` or `""` (the whole document) narrowed by the XPath
/// form `self::text()[parent::p:Name[@Attr="value"]]`, then base64-decoded.
pub(crate) fn cipher_reference_bytes(
    root: &Element,
    ids: &IdIndex<'_>,
    reference: &CipherReference,
    max: usize,
) -> Result<Vec<u8>> {
    let uri = reference.uri.trim();
    let base: &Element = if uri.is_empty() {
        root
    } else {
        ids.same_document_target(uri, "CipherReference")?.1
    };
    let mut transforms = reference.transforms.iter().peekable();
    let mut text: Option<String> = None;
    if let Some(t) = transforms.next_if(|t| t.algorithm == TRANSFORM_XPATH) {
        let target = xpath_parent_target(t)?;
        let mut matches = find_all(base, &mut |e| target.matches(e));
        let el = match (matches.pop(), matches.is_empty()) {
            (Some((_, el)), true) => el,
            (None, _) => {
                return Err(Error::format(
                    "the CipherReference XPath selects nothing in the document",
                ));
            }
            (Some(_), false) => {
                return Err(Error::format(
                    "the CipherReference XPath selects several elements; it is ambiguous",
                ));
            }
        };
        text = Some(direct_text(el, max)?);
    } else if uri.is_empty() {
        return Err(Error::unsupported(
            "a CipherReference to the whole document (URI=\"\") is only supported with an XPath transform selecting the text of one element",
        ));
    }
    match transforms.next() {
        Some(t) if t.algorithm == TRANSFORM_BASE64 => {}
        Some(t) => {
            return Err(Error::unsupported(format!(
                "unsupported CipherReference transform '{}': dpwrap supports only the XPath form self::text()[parent::p:Name[@Attr=\"value\"]] followed by base64",
                shorten(&t.algorithm)
            )));
        }
        None => {
            return Err(Error::unsupported(
                "a CipherReference without a base64 transform would need canonicalization, which dpwrap does not do",
            ));
        }
    }
    if let Some(t) = transforms.next() {
        return Err(Error::unsupported(format!(
            "unsupported CipherReference transform '{}' after base64",
            shorten(&t.algorithm)
        )));
    }
    let max_text = max.div_ceil(3).saturating_mul(4).saturating_mul(2) + 4096;
    let text = match text {
        Some(t) => t,
        // The base64 transform reads the string value of the referenced node-set.
        None => descendant_text(base, max_text)?,
    };
    decode_base64(&text, max, "the referenced cipher value")
}

/// The text children of `el`, concatenated (what `self::text()` selects below it).
fn direct_text(el: &Element, max: usize) -> Result<String> {
    let len: usize = el
        .children()
        .iter()
        .map(|n| match n {
            Node::Text(t) => t.len(),
            _ => 0,
        })
        .sum();
    if len > max.saturating_mul(2) + 4096 {
        return Err(Error::new(
            ErrorKind::Limit,
            format!("limit referenced cipher text ({max} bytes) exceeded"),
        ));
    }
    Ok(el.text())
}

/// The element test of `self::text()[parent::p:Name[@Attr="value"]]`.
#[derive(Debug)]
struct ParentTest {
    namespace: Option<String>,
    local: String,
    attribute: String,
    value: String,
}

impl ParentTest {
    fn matches(&self, el: &Element) -> bool {
        el.is(self.namespace.as_deref(), &self.local)
            && el.attribute(None, &self.attribute) == Some(self.value.as_str())
    }
}

fn xpath_parent_target(t: &Transform) -> Result<ParentTest> {
    let expr = t.xpath.as_deref().unwrap_or("").trim();
    let refuse = || {
        Error::unsupported(format!(
            "unsupported CipherReference XPath '{}': dpwrap supports only self::text()[parent::p:Name[@Attr=\"value\"]]",
            shorten(expr)
        ))
    };
    let rest = expr
        .strip_prefix("self::text()")
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('['))
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix("parent::"))
        .and_then(|r| r.strip_suffix(']'))
        .map(str::trim_end)
        .ok_or_else(refuse)?;
    let (qname, predicate) = rest.split_once('[').ok_or_else(refuse)?;
    let predicate = predicate
        .trim()
        .strip_suffix(']')
        .and_then(|p| p.trim().strip_prefix('@'))
        .ok_or_else(refuse)?;
    let (attribute, value) = predicate.split_once('=').ok_or_else(refuse)?;
    let attribute = attribute.trim();
    let value = value.trim();
    let value = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .filter(|v| !v.contains(['"', '\'']))
        .ok_or_else(refuse)?;
    let (prefix, local) = match qname.trim().split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, qname.trim()),
    };
    if !is_ncname(local) || !is_ncname(attribute) || prefix.is_some_and(|p| !is_ncname(p)) {
        return Err(refuse());
    }
    // XPath 1.0: an unprefixed name test is in no namespace, whatever the default namespace is.
    let namespace = match prefix {
        None => None,
        Some(p) => Some(
            t.namespaces
                .iter()
                .rev()
                .find(|(q, _)| q.as_deref() == Some(p))
                .map(|(_, uri)| uri.clone())
                .ok_or_else(|| {
                    Error::format(format!(
                        "the CipherReference XPath uses the undeclared prefix '{}'",
                        shorten(p)
                    ))
                })?,
        ),
    };
    Ok(ParentTest {
        namespace,
        local: local.to_owned(),
        attribute: attribute.to_owned(),
        value: value.to_owned(),
    })
}

fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn transform(xpath: &str, ns: &[(&str, &str)]) -> Transform {
        Transform {
            algorithm: TRANSFORM_XPATH.to_owned(),
            xpath: Some(xpath.to_owned()),
            namespaces: ns
                .iter()
                .map(|(p, u)| (Some((*p).to_owned()), (*u).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_narrow_xpath_form_is_parsed_and_others_refused() {
        let t = transform(
            r#"self::text()[parent::rep:CipherValue[@Id="example1"]]"#,
            &[("rep", "urn:r")],
        );
        let p = xpath_parent_target(&t).unwrap();
        assert_eq!(p.namespace.as_deref(), Some("urn:r"));
        assert_eq!(
            (p.local.as_str(), p.attribute.as_str(), p.value.as_str()),
            ("CipherValue", "Id", "example1")
        );
        let t = transform(" self::text() [ parent::V[ @id = 'x' ] ] ", &[]);
        assert!(xpath_parent_target(&t).unwrap().namespace.is_none());
        for bad in [
            "//text()",
            "self::text()[parent::rep:CipherValue[@Id=\"a\"]] | document('file:///etc/passwd')",
            "self::text()[parent::rep:CipherValue[@Id=\"a\" or 1=1]]",
            "self::node()[parent::a[@b='c']]",
        ] {
            let t = transform(bad, &[("rep", "urn:r")]);
            assert_eq!(
                xpath_parent_target(&t).unwrap_err().kind(),
                ErrorKind::UnsupportedAlgorithm,
                "{bad}"
            );
        }
        let t = transform("self::text()[parent::zz:V[@Id='a']]", &[]);
        assert_eq!(
            xpath_parent_target(&t).unwrap_err().kind(),
            ErrorKind::Format
        );
    }

    #[test]
    fn ids_must_be_unique_and_references_stay_in_the_document() {
        let doc = parse(br#"<a><b Id="x"/><c><d ID="y"/><e Id="x"/></c></a>"#).unwrap();
        assert_eq!(IdIndex::new(&doc).by_id("y").unwrap().0, vec![1, 0]);
        assert_eq!(
            IdIndex::new(&doc).by_id("x").unwrap_err().kind(),
            ErrorKind::Format
        );
        assert_eq!(
            IdIndex::new(&doc).by_id("z").unwrap_err().kind(),
            ErrorKind::Format
        );
        for uri in [
            "",
            "#",
            "file:///etc/passwd",
            "http://example.org/k",
            "k.xml#x",
            "#xpointer(id('y'))",
        ] {
            assert_eq!(
                IdIndex::new(&doc)
                    .same_document_target(uri, "RetrievalMethod")
                    .unwrap_err()
                    .kind(),
                ErrorKind::UnsupportedAlgorithm,
                "{uri}"
            );
        }
    }

    #[test]
    fn find_all_descends_into_matches() {
        let doc = parse(b"<a><a><a/></a><b/></a>").unwrap();
        let found = find_all(&doc, &mut |e| e.is(None, "a"));
        let paths: Vec<Path> = found.into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, vec![vec![], vec![0], vec![0, 0]]);
        let b = doc.at(&[1]).unwrap();
        assert_eq!(path_of(&doc, b), Some(vec![1]));
    }
}
