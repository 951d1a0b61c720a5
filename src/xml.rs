//! A small owned, namespace-aware XML element tree: safe parsing of untrusted bytes and a
//! serializer that writes what .NET writes.
//!
//! Parsing goes through [`roxmltree`], which refuses DTDs (so no entity expansion and no external
//! entities), does not recurse, and caps its node count. On top of that every document is checked
//! against [`Limits`]: input size, element depth, attributes per element, and the size of each
//! text node and attribute value. Each violation is an [`ErrorKind::Limit`] error naming the limit.
//!
//! Names are matched on (namespace, local name), never on prefixes: the same attribute appears as
//! `p4:`, `d1p1:` or `p1:` depending on which .NET serializer wrote it. Prefixes are kept only as
//! hints for writing.
//!
//! The serializer follows `XElement.Save`: attributes before the namespace declarations the writer
//! adds, `<empty />` with a space, two-space indentation except inside mixed content, a UTF-8 BOM
//! and declaration only when asked for (key files have them; an encrypted `masterKey` must not).
//! Namespaces are fixed up while writing, so an element in no namespace inside `encryptedSecret`
//! gets its `xmlns=""`, and a decrypted `masterKey` keeps the declaration of its `dp` prefix.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, Result};

/// The ASP.NET Core Data Protection namespace.
pub const NS_DP: &str = "http://schemas.asp.net/2015/03/dataProtection";
/// W3C XML Encryption (2002).
pub const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
/// W3C XML Encryption 1.1.
pub const NS_XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
/// W3C XML Signature (KeyInfo and friends).
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// The namespace bound to the `xml` prefix.
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// An expanded XML name: namespace URI and local name, plus the prefix it was written with.
///
/// Equality and matching ignore the prefix.
#[derive(Clone)]
pub struct Name {
    namespace: Option<Box<str>>,
    local: Box<str>,
    prefix: Option<Box<str>>,
}

impl Name {
    /// A name in no namespace.
    pub fn local(local: &str) -> Name {
        Name {
            namespace: None,
            local: local.into(),
            prefix: None,
        }
    }

    /// A name in `namespace` (written with the default namespace unless a prefix is given).
    pub fn ns(namespace: &str, local: &str) -> Name {
        Name {
            namespace: Some(namespace.into()),
            local: local.into(),
            prefix: None,
        }
    }

    /// A name in `namespace`, to be written with `prefix`.
    pub fn prefixed(prefix: &str, namespace: &str, local: &str) -> Name {
        Name {
            namespace: Some(namespace.into()),
            local: local.into(),
            prefix: Some(prefix.into()),
        }
    }

    /// The namespace URI, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The local name.
    pub fn local_name(&self) -> &str {
        &self.local
    }

    /// The prefix this name was read with or should be written with (a hint only).
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// Whether this is `local` in `namespace` (`None` for no namespace).
    pub fn is(&self, namespace: Option<&str>, local: &str) -> bool {
        self.namespace.as_deref() == namespace && &*self.local == local
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.namespace == other.namespace && self.local == other.local
    }
}

impl Eq for Name {}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{{{ns}}}{}", self.local),
            None => f.write_str(&self.local),
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.prefix {
            Some(p) => write!(f, "{p}:{}", self.local),
            None => f.write_str(&self.local),
        }
    }
}

/// An attribute: a name and its (unescaped) value.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute's name.
    pub name: Name,
    /// The attribute's value, unescaped.
    pub value: String,
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}={:?}", self.name, self.value)
    }
}

/// A namespace declaration written on an element: `xmlns="uri"` (no prefix) or `xmlns:p="uri"`.
/// An empty URI with no prefix is `xmlns=""`, the undeclaration of the default namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceDecl {
    /// The prefix, or `None` for the default namespace.
    pub prefix: Option<String>,
    /// The namespace URI (empty only for `xmlns=""`).
    pub uri: String,
}

/// A child of an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (CDATA sections are read as text).
    Text(String),
    /// A comment (without the `<!--` `-->` delimiters).
    Comment(String),
    /// A processing instruction.
    ProcessingInstruction {
        /// The target.
        target: String,
        /// The data, if any.
        data: Option<String>,
    },
}

/// An XML element with its attributes, the namespace declarations written on it, and its children.
///
/// Equality is semantic: names by (namespace, local name), attributes in order, children; prefixes
/// and namespace declarations are serialization details and are ignored.
#[derive(Clone)]
pub struct Element {
    name: Name,
    attributes: Vec<Attribute>,
    namespaces: Vec<NamespaceDecl>,
    children: Vec<Node>,
}

impl PartialEq for Element {
    fn eq(&self, other: &Element) -> bool {
        self.name == other.name
            && self.attributes == other.attributes
            && self.children == other.children
    }
}

impl Eq for Element {}

impl fmt::Debug for Element {
    /// Shows the structure only: names, attribute names and child counts. Values and text are
    /// never shown, because elements routinely hold master keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attrs: Vec<&Name> = self.attributes.iter().map(|a| &a.name).collect();
        f.debug_struct("Element")
            .field("name", &self.name)
            .field("attributes", &attrs)
            .field("children", &self.children.len())
            .finish()
    }
}

/// A position in a tree: the child indices from an element down to one of its descendants.
pub type Path = Vec<usize>;

impl Element {
    /// A new empty element.
    pub fn new(name: Name) -> Element {
        Element {
            name,
            attributes: Vec::new(),
            namespaces: Vec::new(),
            children: Vec::new(),
        }
    }

    /// The element's name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// Whether the element is `local` in `namespace`.
    pub fn is(&self, namespace: Option<&str>, local: &str) -> bool {
        self.name.is(namespace, local)
    }

    /// The attributes, in document order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The namespace declarations written on this element.
    pub fn namespace_decls(&self) -> &[NamespaceDecl] {
        &self.namespaces
    }

    /// The value of attribute `local` in `namespace`.
    pub fn attribute(&self, namespace: Option<&str>, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name.is(namespace, local))
            .map(|a| a.value.as_str())
    }

    /// Sets (or replaces) an attribute, keeping its position when it already exists.
    pub fn set_attribute(&mut self, name: Name, value: impl Into<String>) {
        let value = value.into();
        match self.attributes.iter_mut().find(|a| a.name == name) {
            Some(a) => a.value = value,
            None => self.attributes.push(Attribute { name, value }),
        }
    }

    /// Builder form of [`set_attribute`](Self::set_attribute).
    pub fn with_attribute(mut self, name: Name, value: impl Into<String>) -> Element {
        self.set_attribute(name, value);
        self
    }

    /// Removes an attribute, returning its value.
    pub fn remove_attribute(&mut self, namespace: Option<&str>, local: &str) -> Option<String> {
        let i = self
            .attributes
            .iter()
            .position(|a| a.name.is(namespace, local))?;
        Some(self.attributes.remove(i).value)
    }

    /// Declares a namespace on this element (`None` prefix for the default namespace).
    pub fn declare_namespace(&mut self, prefix: Option<&str>, uri: &str) {
        let prefix = prefix.map(str::to_owned);
        match self.namespaces.iter_mut().find(|d| d.prefix == prefix) {
            Some(d) => d.uri = uri.to_owned(),
            None => self.namespaces.push(NamespaceDecl {
                prefix,
                uri: uri.to_owned(),
            }),
        }
    }

    /// Builder form of [`declare_namespace`](Self::declare_namespace).
    pub fn with_namespace(mut self, prefix: Option<&str>, uri: &str) -> Element {
        self.declare_namespace(prefix, uri);
        self
    }

    /// The children, in document order.
    pub fn children(&self) -> &[Node] {
        &self.children
    }

    /// The children, mutable.
    pub fn children_mut(&mut self) -> &mut Vec<Node> {
        &mut self.children
    }

    /// Appends a child node.
    pub fn push(&mut self, node: Node) {
        self.children.push(node);
    }

    /// Builder: appends a child element.
    pub fn with_child(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: appends a text node.
    pub fn with_text(mut self, text: impl Into<String>) -> Element {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// Builder: appends a comment.
    pub fn with_comment(mut self, text: impl Into<String>) -> Element {
        self.children.push(Node::Comment(text.into()));
        self
    }

    /// The child elements, in document order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The child elements named `local` in `namespace`.
    pub fn elements_named<'a>(
        &'a self,
        namespace: Option<&'a str>,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(namespace, local))
    }

    /// The first child element named `local` in `namespace`.
    pub fn element(&self, namespace: Option<&str>, local: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(namespace, local))
    }

    /// The concatenated text of the direct text children.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// The concatenated text of the direct text children, in a buffer that is wiped on drop (for
    /// text that may be secret, such as a master key's base64).
    pub fn secret_text(&self) -> Zeroizing<String> {
        let len = self
            .children
            .iter()
            .map(|n| match n {
                Node::Text(t) => t.len(),
                _ => 0,
            })
            .sum();
        let mut s = Zeroizing::new(String::with_capacity(len));
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// All descendant elements (not this one), in document order. Iterative: safe on deep trees.
    pub fn descendants(&self) -> Descendants<'_> {
        let stack: Vec<std::slice::Iter<'_, Node>> = vec![self.children.iter()];
        Descendants { stack }
    }

    /// The first descendant element named `local` in `namespace`.
    pub fn find(&self, namespace: Option<&str>, local: &str) -> Option<&Element> {
        self.descendants().find(|e| e.is(namespace, local))
    }

    /// Paths to every element (this one included, as the empty path) for which `pred` holds, in
    /// document order, without descending into matched elements.
    pub fn paths_where(&self, pred: &mut dyn FnMut(&Element) -> bool) -> Vec<Path> {
        let mut out = Vec::new();
        if pred(self) {
            out.push(Vec::new());
            return out;
        }
        // (element, next child index, path to element)
        let mut stack: Vec<(&Element, usize)> = vec![(self, 0)];
        let mut path: Path = Vec::new();
        while let Some((el, i)) = stack.pop() {
            let Some(node) = el.children.get(i) else {
                path.pop();
                continue;
            };
            stack.push((el, i + 1));
            if let Node::Element(child) = node {
                path.push(i);
                if pred(child) {
                    out.push(path.clone());
                    path.pop();
                } else {
                    stack.push((child, 0));
                }
            }
        }
        out
    }

    /// The element at `path` below this one.
    pub fn at(&self, path: &[usize]) -> Option<&Element> {
        let mut el = self;
        for &i in path {
            match el.children.get(i) {
                Some(Node::Element(e)) => el = e,
                _ => return None,
            }
        }
        Some(el)
    }

    /// The element at `path` below this one, mutable.
    pub fn at_mut(&mut self, path: &[usize]) -> Option<&mut Element> {
        let mut el = self;
        for &i in path {
            match el.children.get_mut(i) {
                Some(Node::Element(e)) => el = e,
                _ => return None,
            }
        }
        Some(el)
    }

    /// Replaces the node at `path` (which must not be empty) with `node`, returning the old one.
    pub fn replace_at(&mut self, path: &[usize], node: Node) -> Option<Node> {
        let (last, parent) = path.split_last()?;
        let parent = self.at_mut(parent)?;
        let slot = parent.children.get_mut(*last)?;
        Some(std::mem::replace(slot, node))
    }

    /// Replaces the node at `path` (which must not be empty) with several nodes.
    pub fn splice_at(&mut self, path: &[usize], nodes: Vec<Node>) -> Option<Node> {
        let (last, parent) = path.split_last()?;
        let parent = self.at_mut(parent)?;
        if *last >= parent.children.len() {
            return None;
        }

        parent.children.splice(*last..=*last, nodes).next()
    }

    /// The namespaces in scope at the element at `path` (declarations of the ancestors and of the
    /// element itself, innermost last), as `(prefix, uri)`.
    pub fn namespaces_in_scope(&self, path: &[usize]) -> Vec<(Option<String>, String)> {
        let mut out: Vec<(Option<String>, String)> = Vec::new();
        let mut add = |el: &Element| {
            for d in &el.namespaces {
                out.retain(|(p, _)| *p != d.prefix);
                out.push((d.prefix.clone(), d.uri.clone()));
            }
        };
        let mut el = self;
        add(el);
        for &i in path {
            match el.children.get(i) {
                Some(Node::Element(e)) => {
                    el = e;
                    add(el);
                }
                _ => break,
            }
        }
        out
    }

    /// Removes whitespace-only text children everywhere in the tree (what .NET's `XElement.Load`
    /// does without `PreserveWhitespace`), so that indenting again does not double the whitespace.
    pub fn strip_whitespace(&mut self) {
        let mut stack: Vec<&mut Element> = vec![self];
        while let Some(el) = stack.pop() {
            el.children
                .retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
            for n in el.children.iter_mut() {
                if let Node::Element(e) = n {
                    stack.push(e);
                }
            }
        }
    }
}

impl Zeroize for Element {
    fn zeroize(&mut self) {
        let mut stack: Vec<&mut Element> = vec![self];
        while let Some(el) = stack.pop() {
            for a in el.attributes.iter_mut() {
                a.value.zeroize();
            }
            for n in el.children.iter_mut() {
                match n {
                    Node::Element(e) => stack.push(e),
                    Node::Text(t) | Node::Comment(t) => t.zeroize(),
                    Node::ProcessingInstruction { data, .. } => data.zeroize(),
                }
            }
        }
    }
}

/// Iterator over descendant elements in document order.
pub struct Descendants<'a> {
    stack: Vec<std::slice::Iter<'a, Node>>,
}

impl<'a> Iterator for Descendants<'a> {
    type Item = &'a Element;

    fn next(&mut self) -> Option<&'a Element> {
        loop {
            let top = self.stack.last_mut()?;
            match top.next() {
                Some(Node::Element(e)) => {
                    self.stack.push(e.children.iter());
                    return Some(e);
                }
                Some(_) => continue,
                None => {
                    self.stack.pop();
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------ parsing

/// Bounds applied to every document read from disk or the network.
///
/// The defaults fit key files, `EncryptedData` documents and rings of a few thousand keys; stores
/// that keep a whole ring in one document use [`Limits::ring_document`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted, in bytes.
    pub max_input_bytes: usize,
    /// Deepest element nesting accepted (the root is depth 1).
    pub max_depth: usize,
    /// Most attributes (namespace declarations included) on one element.
    pub max_attributes: usize,
    /// Largest text node or attribute value, in bytes.
    pub max_text_bytes: usize,
    /// Most nodes in the document (elements, attributes, text, comments).
    pub max_nodes: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_input_bytes: 4 * 1024 * 1024,
            max_depth: 64,
            max_attributes: 64,
            max_text_bytes: 1024 * 1024,
            max_nodes: 200_000,
        }
    }
}

impl Limits {
    /// Limits for a whole ring held in one document (Blob, one-file store, Key Vault secret):
    /// up to 128 MiB and 2 million nodes (about 50,000 keys; the parser spends about 90 bytes per
    /// node before dpwrap's checks, so this bounds a hostile document to about 180 MiB), the same
    /// depth, attribute and text bounds.
    pub fn ring_document() -> Limits {
        Limits {
            max_input_bytes: 128 * 1024 * 1024,
            max_nodes: 2_000_000,
            ..Limits::default()
        }
    }
}

fn limit_error(limit: &str, max: usize, what: &str) -> Error {
    Error::new(
        ErrorKind::Limit,
        format!(
            "limit {limit} ({max}) exceeded: {what}; the input is too large or hostile (raise the limit only for trusted input)"
        ),
    )
}

/// Parses untrusted bytes with the default [`Limits`].
pub fn parse(bytes: &[u8]) -> Result<Element> {
    parse_with(bytes, &Limits::default())
}

/// Parses untrusted bytes into an element tree, enforcing `limits`.
///
/// Accepts UTF-8 (with or without BOM) and UTF-16 with a BOM, as .NET does; refuses DTDs and
/// therefore every entity declaration. Whitespace-only text is dropped, as `XElement.Load` does.
pub fn parse_with(bytes: &[u8], limits: &Limits) -> Result<Element> {
    if bytes.len() > limits.max_input_bytes {
        return Err(limit_error(
            "max_input_bytes",
            limits.max_input_bytes,
            &format!("the input has {} bytes", bytes.len()),
        ));
    }
    let text = decode_checked(bytes)?;
    parse_decoded(&text, limits)
}

/// Decodes bytes to text and checks what .NET checks before parsing: one byte order mark at
/// most, and a declared encoding that agrees with the bytes.
fn decode_checked(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>> {
    let (text, encoding) = decode(bytes)?;
    // A second byte order mark would otherwise be skipped by the XML parser; .NET refuses it.
    if text.starts_with('\u{FEFF}') {
        return Err(Error::xml(
            "the document starts with two byte order marks; save it as UTF-8 with at most one",
        ));
    }
    check_declaration_matches(&text, encoding)?;
    check_declared_encoding(&text)?;
    Ok(text)
}

/// Parses a document already decoded to text (no BOM), enforcing `limits`.
pub fn parse_str(text: &str, limits: &Limits) -> Result<Element> {
    check_declared_encoding(text)?;
    parse_decoded(text, limits)
}

/// [`parse_str`] for text whose declaration [`decode_checked`] already checked.
fn parse_decoded(text: &str, limits: &Limits) -> Result<Element> {
    if text.len() > limits.max_input_bytes {
        return Err(limit_error(
            "max_input_bytes",
            limits.max_input_bytes,
            &format!("the input has {} bytes", text.len()),
        ));
    }
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
        ..Default::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(text, options).map_err(|e| map_rox(e, limits))?;
    convert(doc.root_element(), text, limits, true)
}

/// A document parsed together with the byte ranges (in its decoded text) of the root element and
/// of each of the root's child elements, so that a store can rewrite one element of a whole-ring
/// document and keep every other byte as it was.
pub(crate) struct RangedDocument<'a> {
    /// The root element.
    pub root: Element,
    /// The decoded text the ranges refer to.
    pub text: std::borrow::Cow<'a, str>,
    /// Whether the input was UTF-8 (so that the input is the text, after an optional BOM).
    pub utf8: bool,
    /// Whether the input started with a UTF-8 byte order mark.
    pub bom: bool,
    /// The root element's range in `text`.
    pub root_range: std::ops::Range<usize>,
    /// The range in `text` of each child element of the root, in the order of `root.elements()`.
    pub children: Vec<std::ops::Range<usize>>,
}

/// Parses untrusted bytes as [`parse_with`] does, keeping the ranges of the top-level elements.
pub(crate) fn parse_ranged<'a>(bytes: &'a [u8], limits: &Limits) -> Result<RangedDocument<'a>> {
    if bytes.len() > limits.max_input_bytes {
        return Err(limit_error(
            "max_input_bytes",
            limits.max_input_bytes,
            &format!("the input has {} bytes", bytes.len()),
        ));
    }
    let bom = bytes.starts_with(UTF8_BOM);
    let text = decode_checked(bytes)?;
    let utf8 = matches!(text, std::borrow::Cow::Borrowed(_));
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
        ..Default::default()
    };
    let (root, root_range, children) = {
        let doc = roxmltree::Document::parse_with_options(&text, options)
            .map_err(|e| map_rox(e, limits))?;
        let node = doc.root_element();
        let root = convert(node, &text, limits, true)?;
        let children = node
            .children()
            .filter(roxmltree::Node::is_element)
            .map(|n| n.range())
            .collect();
        (root, node.range(), children)
    };
    Ok(RangedDocument {
        root,
        text,
        utf8,
        bom,
        root_range,
        children,
    })
}

/// Parses an XML fragment (the plaintext of an `EncryptedData` of type Element or Content) in the
/// namespace context `in_scope`, returning its top-level nodes.
///
/// The text is treated as secret: the working copy is wiped after parsing.
pub fn parse_fragment(
    fragment: &str,
    in_scope: &[(Option<String>, String)],
    limits: &Limits,
) -> Result<Vec<Node>> {
    const WRAPPER: &str = "dpwrap-fragment-context";
    let mut open = String::from("<");
    open.push_str(WRAPPER);
    for (prefix, uri) in in_scope {
        match prefix {
            Some(p) => {
                open.push_str(" xmlns:");
                open.push_str(p);
            }
            None => open.push_str(" xmlns"),
        }
        open.push_str("=\"");
        escape_attr(uri, &mut open);
        open.push('"');
    }
    open.push('>');
    let close = format!("</{WRAPPER}>");
    let mut doc = Zeroizing::new(String::with_capacity(
        open.len() + fragment.len() + close.len(),
    ));
    doc.push_str(&open);
    doc.push_str(fragment);
    doc.push_str(&close);
    let limits = Limits {
        max_input_bytes: limits
            .max_input_bytes
            .saturating_add(open.len() + close.len()),
        max_depth: limits.max_depth.saturating_add(1),
        ..limits.clone()
    };
    if fragment.trim_start().starts_with("<?xml") {
        return Err(Error::xml(
            "the decrypted fragment starts with an XML declaration, which is not allowed inside a document",
        ));
    }
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
        ..Default::default()
    };
    let parsed =
        roxmltree::Document::parse_with_options(&doc, options).map_err(|e| map_rox(e, &limits));
    let parsed = parsed?;
    let mut wrapper = convert(parsed.root_element(), &doc, &limits, false)?;
    // The wrapper's declarations were only context; the fragment's own declarations stay on the
    // fragment's elements.
    Ok(std::mem::take(&mut wrapper.children))
}

/// How the bytes of a document were decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detected {
    Utf8,
    Utf16,
}

/// Decodes bytes to text: UTF-8 (optional BOM), or UTF-16 LE/BE with a BOM or an unmistakable
/// `<?` start, as `XmlReader` does.
fn decode(bytes: &[u8]) -> Result<(std::borrow::Cow<'_, str>, Detected)> {
    use std::borrow::Cow;
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return utf8(rest).map(|t| (Cow::Borrowed(t), Detected::Utf8));
    }
    let utf16 = match bytes {
        [0xFF, 0xFE, rest @ ..] => Some((rest, true)),
        [0xFE, 0xFF, rest @ ..] => Some((rest, false)),
        [0x3C, 0x00, 0x3F, 0x00, ..] => Some((bytes, true)),
        [0x00, 0x3C, 0x00, 0x3F, ..] => Some((bytes, false)),
        _ => None,
    };
    match utf16 {
        Some((rest, little)) => {
            decode_utf16(rest, little).map(|t| (Cow::Owned(t), Detected::Utf16))
        }
        None => utf8(bytes).map(|t| (Cow::Borrowed(t), Detected::Utf8)),
    }
}

/// Refuses a declaration of UTF-16 on a document that is not UTF-16: `XmlReader` throws "there
/// is no Unicode byte order mark, cannot switch to Unicode" on it, so .NET never reads such a file
/// and dpwrap must not read it differently.
fn check_declaration_matches(text: &str, detected: Detected) -> Result<()> {
    let declared = declared_encoding(text).map(|e| e.to_ascii_lowercase());
    let utf16_names = [
        "utf-16",
        "utf-16le",
        "utf-16be",
        "unicode",
        "ucs-2",
        "iso-10646-ucs-2",
    ];
    match (detected, declared.as_deref()) {
        (Detected::Utf8, Some(d)) if utf16_names.contains(&d) => Err(Error::xml(format!(
            "the document declares encoding '{d}' but is not UTF-16 (no UTF-16 byte order mark); save it as UTF-8 and declare utf-8"
        ))),
        _ => Ok(()),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| {
        Error::xml(format!(
            "the document is not valid UTF-8 (invalid byte at offset {}); key files are UTF-8",
            e.valid_up_to()
        ))
    })
}

fn decode_utf16(bytes: &[u8], little_endian: bool) -> Result<String> {
    if !bytes.len().is_multiple_of(2) {
        return Err(Error::xml(
            "the UTF-16 document has an odd number of bytes; it is truncated",
        ));
    }
    let units = bytes.chunks_exact(2).map(|c| match c {
        [a, b] if little_endian => u16::from_le_bytes([*a, *b]),
        [a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    });
    let mut out = String::with_capacity(bytes.len() / 2);
    for c in char::decode_utf16(units) {
        match c {
            Ok(c) => out.push(c),
            Err(_) => {
                return Err(Error::xml(
                    "the UTF-16 document contains an unpaired surrogate",
                ));
            }
        }
    }
    Ok(out)
}

/// The value of the `encoding` pseudo-attribute of the XML declaration, if there is one.
fn declared_encoding(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("<?xml")?;
    let end = rest.find("?>")?;
    let decl = rest.get(..end)?;
    let pos = decl.find("encoding")?;
    let after = decl.get(pos + "encoding".len()..)?.trim_start();
    let after = after.strip_prefix('=')?.trim_start();
    let quote = match after.chars().next() {
        Some(q @ ('"' | '\'')) => q,
        _ => return None,
    };
    after.get(1..)?.split(quote).next()
}

/// Refuses a declared encoding other than UTF-8 or UTF-16: the text was decoded as one of those,
/// and a document claiming another encoding would be read differently by .NET.
fn check_declared_encoding(text: &str) -> Result<()> {
    let Some(value) = declared_encoding(text) else {
        return Ok(());
    };
    let lower = value.to_ascii_lowercase();
    let ascii_only = text.is_ascii();
    match lower.as_str() {
        "utf-8" | "utf8" | "utf-16" | "utf-16le" | "utf-16be" | "unicode" => Ok(()),
        "us-ascii" | "ascii" | "iso-8859-1" | "windows-1252" if ascii_only => Ok(()),
        _ => Err(Error::xml(format!(
            "the document declares encoding '{}', which dpwrap does not read; save it as UTF-8",
            value.chars().take(40).collect::<String>()
        ))),
    }
}

fn map_rox(e: roxmltree::Error, limits: &Limits) -> Error {
    use roxmltree::Error as E;
    match e {
        E::DtdDetected => Error::xml(
            "the document has a DTD (<!DOCTYPE ...>); DTDs and entity declarations are refused on untrusted input",
        ),
        E::NodesLimitReached => limit_error(
            "max_nodes",
            limits.max_nodes as usize,
            "the document has too many nodes",
        ),
        E::EntityReferenceLoop(_) => Error::xml("the document has an entity reference loop"),
        E::UnknownEntityReference(..) => {
            Error::xml(format!("{e}; only the predefined XML entities are allowed"))
        }
        E::UnexpectedEndOfStream => {
            Error::xml("the document ends early (unexpected end of input); the file is truncated")
        }
        other => Error::xml(format!("the document is not well-formed XML: {other}")),
    }
}

/// Converts a roxmltree element into an owned tree, iteratively, enforcing the limits.
fn convert(
    root: roxmltree::Node<'_, '_>,
    src: &str,
    limits: &Limits,
    top: bool,
) -> Result<Element> {
    let root_el = make_element(root, src, limits, top)?;
    let mut stack: Vec<(Element, roxmltree::Children<'_, '_>)> = vec![(root_el, root.children())];
    loop {
        let depth = stack.len();
        let Some((_, iter)) = stack.last_mut() else {
            return Err(Error::xml("internal error: empty conversion stack"));
        };
        match iter.next() {
            Some(child) => match child.node_type() {
                roxmltree::NodeType::Element => {
                    if depth + 1 > limits.max_depth {
                        return Err(limit_error(
                            "max_depth",
                            limits.max_depth,
                            "elements are nested too deeply",
                        ));
                    }
                    let el = make_element(child, src, limits, false)?;
                    stack.push((el, child.children()));
                }
                roxmltree::NodeType::Text => {
                    let t = child.text().unwrap_or("");
                    if t.len() > limits.max_text_bytes {
                        return Err(limit_error(
                            "max_text_bytes",
                            limits.max_text_bytes,
                            &format!("a text node has {} bytes", t.len()),
                        ));
                    }
                    if !t.trim().is_empty()
                        && let Some((el, _)) = stack.last_mut()
                    {
                        el.children.push(Node::Text(t.to_owned()));
                    }
                }
                roxmltree::NodeType::Comment => {
                    let t = child.text().unwrap_or("");
                    if t.len() > limits.max_text_bytes {
                        return Err(limit_error(
                            "max_text_bytes",
                            limits.max_text_bytes,
                            &format!("a comment has {} bytes", t.len()),
                        ));
                    }
                    if let Some((el, _)) = stack.last_mut() {
                        el.children.push(Node::Comment(t.to_owned()));
                    }
                }
                roxmltree::NodeType::PI => {
                    // `<?xml<x?>` or `<?xml"…?>` parse as a processing instruction with the
                    // reserved target "xml" (XML 1.0 §2.6 forbids it; .NET refuses it), and would
                    // be written back as an XML declaration in the middle of the document.
                    if child
                        .pi()
                        .is_some_and(|pi| pi.target.eq_ignore_ascii_case("xml"))
                    {
                        return Err(Error::xml(
                            "a processing instruction uses the reserved target 'xml'; the document is not well-formed",
                        ));
                    }
                    if let (Some(pi), Some((el, _))) = (child.pi(), stack.last_mut()) {
                        el.children.push(Node::ProcessingInstruction {
                            target: pi.target.to_owned(),
                            data: pi.value.map(str::to_owned),
                        });
                    }
                }
                roxmltree::NodeType::Root => {}
            },
            None => {
                let Some((el, _)) = stack.pop() else {
                    return Err(Error::xml("internal error: empty conversion stack"));
                };
                match stack.last_mut() {
                    Some((parent, _)) => parent.children.push(Node::Element(el)),
                    None => return Ok(el),
                }
            }
        }
    }
}

fn make_element(
    node: roxmltree::Node<'_, '_>,
    src: &str,
    limits: &Limits,
    top: bool,
) -> Result<Element> {
    let tag = node.tag_name();
    let qname = element_qname(node, src);
    let prefix = qname.split_once(':').map(|(p, _)| p);
    // roxmltree reads `<:name>` as an unprefixed name; XML with namespaces (and .NET) refuses a
    // name that starts with ':', and the tree could not be written back.
    if prefix == Some("") {
        return Err(Error::xml(
            "an element name begins with ':'; the document is not well-formed",
        ));
    }
    let name = Name {
        // roxmltree reports an element under `xmlns=""` as in namespace "": that is no namespace.
        namespace: tag.namespace().filter(|n| !n.is_empty()).map(Into::into),
        local: tag.name().into(),
        prefix: prefix.map(Into::into),
    };

    // Namespace declarations on this element = in-scope namespaces that differ from the parent's.
    let parent_scope: Vec<(Option<&str>, &str)> = match node.parent_element() {
        Some(p) if !top => p.namespaces().map(|n| (n.name(), n.uri())).collect(),
        _ => Vec::new(),
    };
    let mut namespaces = Vec::new();
    let mut has_default = false;
    for ns in node.namespaces() {
        if ns.name() == Some("xml") {
            continue;
        }
        if ns.name().is_none() {
            has_default = true;
        }
        if !parent_scope.contains(&(ns.name(), ns.uri())) {
            namespaces.push(NamespaceDecl {
                prefix: ns.name().map(str::to_owned),
                uri: ns.uri().to_owned(),
            });
        }
    }
    if !has_default && parent_scope.iter().any(|(p, _)| p.is_none()) {
        namespaces.push(NamespaceDecl {
            prefix: None,
            uri: String::new(),
        });
    }

    let count = node.attributes().len() + namespaces.len();
    if count > limits.max_attributes {
        return Err(limit_error(
            "max_attributes",
            limits.max_attributes,
            &format!("an element has {count} attributes"),
        ));
    }
    let mut attributes = Vec::with_capacity(node.attributes().len());
    for a in node.attributes() {
        if a.value().len() > limits.max_text_bytes {
            return Err(limit_error(
                "max_text_bytes",
                limits.max_text_bytes,
                &format!("an attribute value has {} bytes", a.value().len()),
            ));
        }
        let raw = src.get(a.range_qname()).unwrap_or("");
        let prefix = raw.split_once(':').map(|(p, _)| p);
        if prefix == Some("") {
            return Err(Error::xml(
                "an attribute name begins with ':'; the document is not well-formed",
            ));
        }
        attributes.push(Attribute {
            name: Name {
                namespace: a.namespace().map(Into::into),
                local: a.name().into(),
                prefix: prefix.map(Into::into),
            },
            value: a.value().to_owned(),
        });
    }
    Ok(Element {
        name,
        attributes,
        namespaces,
        children: Vec::new(),
    })
}

fn element_qname<'a>(node: roxmltree::Node<'_, '_>, src: &'a str) -> &'a str {
    let start = node.range().start;
    let tail = src.get(start + 1..).unwrap_or("");
    let end = tail
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap_or(tail.len());
    tail.get(..end).unwrap_or("")
}

// ------------------------------------------------------------------------------------ writing

/// How to write a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// Start with a UTF-8 byte order mark.
    pub bom: bool,
    /// Start with `<?xml version="1.0" encoding="utf-8"?>`.
    pub declaration: bool,
    /// Indent child elements by this many spaces (`None`: no formatting at all).
    pub indent: Option<usize>,
}

impl WriteOptions {
    /// A key file as `FileSystemXmlRepository` writes it: BOM, declaration, two-space indentation.
    pub const KEY_FILE: WriteOptions = WriteOptions {
        bom: true,
        declaration: true,
        indent: Some(2),
    };
    /// No BOM, no declaration, no formatting: an encrypted `masterKey`, a Redis list item.
    pub const COMPACT: WriteOptions = WriteOptions {
        bom: false,
        declaration: false,
        indent: None,
    };
    /// BOM and declaration, no formatting: the Blob document, the Key Vault format's plaintext.
    pub const DOCUMENT: WriteOptions = WriteOptions {
        bom: true,
        declaration: true,
        indent: None,
    };
    /// Indented, without BOM or declaration: the Key Vault secret store's `<root>` document.
    pub const INDENTED: WriteOptions = WriteOptions {
        bom: false,
        declaration: false,
        indent: Some(2),
    };
}

const DECLARATION: &str = r#"<?xml version="1.0" encoding="utf-8"?>"#;

/// Serializes `element` as bytes.
pub fn to_bytes(element: &Element, options: WriteOptions) -> Vec<u8> {
    let mut counter = Counter(0);
    write_document(element, options, &mut counter);
    let mut out = Buf(String::with_capacity(counter.0));
    write_document(element, options, &mut out);
    out.0.into_bytes()
}

/// Serializes `element` into a buffer that is wiped on drop, sized exactly so that no partial
/// copy is left behind by reallocation. Use this for anything holding a master key.
pub fn to_secret_bytes(element: &Element, options: WriteOptions) -> Zeroizing<Vec<u8>> {
    let mut counter = Counter(0);
    write_document(element, options, &mut counter);
    let mut out = Buf(String::with_capacity(counter.0));
    write_document(element, options, &mut out);
    Zeroizing::new(out.0.into_bytes())
}

/// Serializes `element` as a string without BOM, declaration or formatting.
pub fn to_compact_string(element: &Element) -> String {
    let mut out = Buf(String::new());
    write_document(element, WriteOptions::COMPACT, &mut out);
    out.0
}

trait Sink {
    fn put(&mut self, s: &str);
}

struct Counter(usize);
impl Sink for Counter {
    fn put(&mut self, s: &str) {
        self.0 += s.len();
    }
}

struct Buf(String);
impl Sink for Buf {
    fn put(&mut self, s: &str) {
        self.0.push_str(s);
    }
}

fn write_document(element: &Element, options: WriteOptions, out: &mut dyn Sink) {
    if options.bom {
        out.put("\u{FEFF}");
    }
    if options.declaration {
        out.put(DECLARATION);
        if options.indent.is_some() {
            out.put("\n");
        }
    }
    let mut writer = Writer {
        out,
        indent: options.indent,
        scopes: Vec::new(),
        open_prefixes: Vec::new(),
        generated: 0,
    };
    writer.element(element, 0, options.indent.is_some());
}

struct Writer<'o> {
    out: &'o mut dyn Sink,
    indent: Option<usize>,
    /// One frame per open element: the declarations in effect on it.
    scopes: Vec<Vec<(Option<String>, String)>>,
    /// The prefix each open element's start tag used, for its end tag.
    open_prefixes: Vec<Option<String>>,
    generated: usize,
}

enum Step<'a> {
    Open(&'a Element, usize, bool),
    Close(&'a Element, usize, bool),
    Node(&'a Node, usize, bool),
}

impl Writer<'_> {
    fn lookup(&self, own: &[(Option<String>, String)], prefix: Option<&str>) -> Option<String> {
        if prefix == Some("xml") {
            return Some(NS_XML.to_owned());
        }
        own.iter()
            .rev()
            .chain(self.scopes.iter().rev().flat_map(|s| s.iter().rev()))
            .find(|(p, _)| p.as_deref() == prefix)
            .map(|(_, u)| u.clone())
    }

    fn prefix_for(&self, own: &[(Option<String>, String)], uri: &str) -> Option<String> {
        if uri == NS_XML {
            return Some("xml".to_owned());
        }
        let candidates = own
            .iter()
            .rev()
            .chain(self.scopes.iter().rev().flat_map(|s| s.iter().rev()));
        for (p, u) in candidates {
            if let Some(p) = p
                && u == uri
                && self.lookup(own, Some(p)).as_deref() == Some(uri)
            {
                return Some(p.clone());
            }
        }
        None
    }

    fn fresh_prefix(&mut self, own: &[(Option<String>, String)]) -> String {
        loop {
            self.generated += 1;
            let p = format!("p{}", self.generated);
            if self.lookup(own, Some(&p)).is_none() {
                return p;
            }
        }
    }

    /// Writes the start tag (declaring what is missing); returns the element's scope frame and the
    /// prefix its name was written with.
    fn start_tag(&mut self, el: &Element) -> (Vec<(Option<String>, String)>, Option<String>) {
        let mut own: Vec<(Option<String>, String)> = el
            .namespaces
            .iter()
            .map(|d| (d.prefix.clone(), d.uri.clone()))
            .collect();
        let mut added: Vec<(Option<String>, String)> = Vec::new();

        // The element's own name.
        let elem_prefix: Option<String> = match el.name.namespace() {
            None => {
                let default = self.lookup(&own, None);
                if default.as_deref().is_some_and(|d| !d.is_empty()) {
                    own.push((None, String::new()));
                    added.push((None, String::new()));
                }
                None
            }
            Some(ns) => {
                let hint = el.name.prefix().map(str::to_owned);
                if self.lookup(&own, hint.as_deref()).as_deref() == Some(ns) {
                    hint
                } else if !own.iter().any(|(p, _)| *p == hint) {
                    own.push((hint.clone(), ns.to_owned()));
                    added.push((hint.clone(), ns.to_owned()));
                    hint
                } else if let Some(p) = self.prefix_for(&own, ns) {
                    Some(p)
                } else {
                    let p = self.fresh_prefix(&own);
                    own.push((Some(p.clone()), ns.to_owned()));
                    added.push((Some(p.clone()), ns.to_owned()));
                    Some(p)
                }
            }
        };

        self.out.put("<");
        if let Some(p) = &elem_prefix {
            self.out.put(p);
            self.out.put(":");
        }
        self.out.put(el.name.local_name());

        // Attributes: a namespaced attribute needs a prefix (never the default namespace).
        let mut attr_prefixes: Vec<Option<String>> = Vec::with_capacity(el.attributes.len());
        for a in &el.attributes {
            let p = match a.name.namespace() {
                None => None,
                Some(ns) => {
                    let hint = a.name.prefix().filter(|p| !p.is_empty()).map(str::to_owned);
                    if hint.is_some() && self.lookup(&own, hint.as_deref()).as_deref() == Some(ns) {
                        hint
                    } else if let Some(p) = self.prefix_for(&own, ns) {
                        Some(p)
                    } else {
                        let p = match hint {
                            Some(h) if !own.iter().any(|(p, _)| p.as_deref() == Some(&h)) => h,
                            _ => self.fresh_prefix(&own),
                        };
                        own.push((Some(p.clone()), ns.to_owned()));
                        added.push((Some(p.clone()), ns.to_owned()));
                        Some(p)
                    }
                }
            };
            attr_prefixes.push(p);
        }
        for (a, p) in el.attributes.iter().zip(&attr_prefixes) {
            self.out.put(" ");
            if let Some(p) = p {
                self.out.put(p);
                self.out.put(":");
            }
            self.out.put(a.name.local_name());
            self.out.put("=\"");
            let mut s = String::with_capacity(a.value.len());
            escape_attr(&a.value, &mut s);
            self.out.put(&s);
            s.zeroize();
            self.out.put("\"");
        }
        // Declarations: explicit ones first (as read), then the ones this writer had to add.
        for d in &el.namespaces {
            self.decl(d.prefix.as_deref(), &d.uri);
        }
        for (p, u) in &added {
            if !el.namespaces.iter().any(|d| d.prefix == *p) {
                self.decl(p.as_deref(), u);
            }
        }
        (own, elem_prefix)
    }

    fn decl(&mut self, prefix: Option<&str>, uri: &str) {
        match prefix {
            Some(p) => {
                self.out.put(" xmlns:");
                self.out.put(p);
            }
            None => self.out.put(" xmlns"),
        }
        self.out.put("=\"");
        let mut s = String::new();
        escape_attr(uri, &mut s);
        self.out.put(&s);
        self.out.put("\"");
    }

    fn newline(&mut self, depth: usize) {
        if let Some(n) = self.indent {
            self.out.put("\n");
            for _ in 0..depth * n {
                self.out.put(" ");
            }
        }
    }

    /// Writes an element iteratively (no recursion, so any depth is safe).
    fn element(&mut self, root: &Element, depth: usize, pretty: bool) {
        let mut steps: Vec<Step<'_>> = vec![Step::Open(root, depth, pretty)];
        while let Some(step) = steps.pop() {
            match step {
                Step::Open(el, depth, pretty) => {
                    let (frame, prefix) = self.start_tag(el);
                    if el.children.is_empty() {
                        self.out.put(" />");
                        continue;
                    }
                    self.out.put(">");
                    self.scopes.push(frame);
                    self.open_prefixes.push(prefix);
                    let mixed = el.children.iter().any(|n| matches!(n, Node::Text(_)));
                    let child_pretty = pretty && !mixed;
                    steps.push(Step::Close(el, depth, child_pretty));
                    for child in el.children.iter().rev() {
                        steps.push(Step::Node(child, depth + 1, child_pretty));
                    }
                }
                Step::Node(node, depth, pretty) => match node {
                    Node::Element(e) => {
                        if pretty {
                            self.newline(depth);
                        }
                        steps.push(Step::Open(e, depth, pretty));
                    }
                    Node::Text(t) => {
                        let mut s = String::with_capacity(t.len());
                        escape_text(t, &mut s);
                        self.out.put(&s);
                        s.zeroize();
                    }
                    Node::Comment(c) => {
                        if pretty {
                            self.newline(depth);
                        }
                        self.out.put("<!--");
                        self.out.put(c);
                        self.out.put("-->");
                    }
                    Node::ProcessingInstruction { target, data } => {
                        if pretty {
                            self.newline(depth);
                        }
                        self.out.put("<?");
                        self.out.put(target);
                        if let Some(d) = data {
                            self.out.put(" ");
                            self.out.put(d);
                        }
                        self.out.put("?>");
                    }
                },
                Step::Close(el, depth, child_pretty) => {
                    if child_pretty {
                        self.newline(depth);
                    }
                    self.scopes.pop();
                    self.out.put("</");
                    if let Some(Some(p)) = self.open_prefixes.pop() {
                        self.out.put(&p);
                        self.out.put(":");
                    }
                    self.out.put(el.name.local_name());
                    self.out.put(">");
                }
            }
        }
    }
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn s(e: &Element, o: WriteOptions) -> String {
        String::from_utf8(to_bytes(e, o)).unwrap()
    }

    #[test]
    fn names_match_on_namespace_not_prefix() {
        let a = parse(br#"<a xmlns:p4="http://schemas.asp.net/2015/03/dataProtection" p4:requiresEncryption="true"/>"#)
            .unwrap();
        let b = parse(br#"<a xmlns:d1p1="http://schemas.asp.net/2015/03/dataProtection" d1p1:requiresEncryption="true"/>"#)
            .unwrap();
        assert_eq!(a.attribute(Some(NS_DP), "requiresEncryption"), Some("true"));
        assert_eq!(b.attribute(Some(NS_DP), "requiresEncryption"), Some("true"));
        assert_eq!(a, b);
    }

    #[test]
    fn key_file_layout_matches_xelement_save() {
        let doc = "<key id=\"1\" version=\"1\"><creationDate>2023</creationDate><descriptor><encryption algorithm=\"AES_256_CBC\" /><masterKey p4:requiresEncryption=\"true\" xmlns:p4=\"http://schemas.asp.net/2015/03/dataProtection\"><!-- Warning --><value>AAAA</value></masterKey></descriptor></key>";
        let el = parse(doc.as_bytes()).unwrap();
        let out = s(&el, WriteOptions::KEY_FILE);
        assert_eq!(
            out,
            "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<key id=\"1\" version=\"1\">\n  <creationDate>2023</creationDate>\n  <descriptor>\n    <encryption algorithm=\"AES_256_CBC\" />\n    <masterKey p4:requiresEncryption=\"true\" xmlns:p4=\"http://schemas.asp.net/2015/03/dataProtection\">\n      <!-- Warning -->\n      <value>AAAA</value>\n    </masterKey>\n  </descriptor>\n</key>"
        );
        assert_eq!(s(&el, WriteOptions::COMPACT), doc);
    }

    #[test]
    fn element_without_namespace_inside_default_namespace_gets_xmlns_empty() {
        let inner = Element::new(Name::local("unencryptedKey")).with_text("x");
        let outer = Element::new(Name::ns(NS_DP, "encryptedSecret"))
            .with_attribute(Name::local("decryptorType"), "T")
            .with_child(inner);
        assert_eq!(
            to_compact_string(&outer),
            "<encryptedSecret decryptorType=\"T\" xmlns=\"http://schemas.asp.net/2015/03/dataProtection\"><unencryptedKey xmlns=\"\">x</unencryptedKey></encryptedSecret>"
        );
        let back = parse(to_compact_string(&outer).as_bytes()).unwrap();
        assert_eq!(back, outer);
        assert_eq!(back.elements().next().unwrap().name().namespace(), None);
    }

    #[test]
    fn attribute_namespace_gets_a_generated_prefix_when_none_is_given() {
        let el = Element::new(Name::local("masterKey"))
            .with_attribute(Name::ns(NS_DP, "requiresEncryption"), "true");
        assert_eq!(
            to_compact_string(&el),
            "<masterKey p1:requiresEncryption=\"true\" xmlns:p1=\"http://schemas.asp.net/2015/03/dataProtection\" />"
        );
    }

    #[test]
    fn escaping_round_trips() {
        let el = Element::new(Name::local("r"))
            .with_attribute(Name::local("a"), "<&\"\n>")
            .with_text("a<b&c>");
        let text = to_compact_string(&el);
        assert_eq!(
            text,
            "<r a=\"&lt;&amp;&quot;&#xA;&gt;\">a&lt;b&amp;c&gt;</r>"
        );
        assert_eq!(parse(text.as_bytes()).unwrap(), el);
    }

    #[test]
    fn bom_utf8_and_utf16_are_read() {
        let mut v = UTF8_BOM.to_vec();
        v.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"utf-8\"?><a>x</a>");
        assert_eq!(parse(&v).unwrap().text(), "x");
        let mut w = vec![0xFF, 0xFE];
        for u in "<?xml version=\"1.0\" encoding=\"utf-16\"?><a>\u{e9}</a>".encode_utf16() {
            w.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(parse(&w).unwrap().text(), "\u{e9}");
    }

    #[test]
    fn hostile_inputs_are_refused_with_their_kind() {
        let laughs = br#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>"#;
        assert_eq!(parse(laughs).unwrap_err().kind(), ErrorKind::Xml);
        let deep = "<a>".repeat(100_000) + &"</a>".repeat(100_000);
        assert_eq!(parse(deep.as_bytes()).unwrap_err().kind(), ErrorKind::Limit);
        assert_eq!(parse(b"<a>\xFF</a>").unwrap_err().kind(), ErrorKind::Xml);
        assert_eq!(parse(b"<a><b>").unwrap_err().kind(), ErrorKind::Xml);
        let big = format!("<a v=\"{}\"/>", "x".repeat(2 * 1024 * 1024));
        assert_eq!(parse(big.as_bytes()).unwrap_err().kind(), ErrorKind::Limit);
        let many = format!(
            "<a {}/>",
            (0..100)
                .map(|i| format!("a{i}=\"1\""))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let e = parse(many.as_bytes()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Limit);
        assert!(e.to_string().contains("max_attributes"));
        let latin = b"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><a>\xE9</a>";
        assert_eq!(parse(latin).unwrap_err().kind(), ErrorKind::Xml);
    }

    /// Whole-ring documents (ranged parsing) refuse what `parse` refuses: here a declared
    /// single-byte encoding over non-ASCII UTF-8, which .NET would decode differently.
    #[test]
    fn ranged_parsing_checks_the_declared_encoding_as_parse_does() {
        let doc = "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><r><a>\u{e9}</a></r>";
        assert_eq!(parse(doc.as_bytes()).unwrap_err().kind(), ErrorKind::Xml);
        let e = parse_ranged(doc.as_bytes(), &Limits::ring_document()).err();
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::Xml));
        let ascii = "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><r><a>e</a></r>";
        assert!(parse_ranged(ascii.as_bytes(), &Limits::ring_document()).is_ok());
    }

    #[test]
    fn fragments_parse_in_context() {
        let scope = vec![(Some("e".to_owned()), NS_XENC.to_owned())];
        let nodes = parse_fragment("<e:x>1</e:x>text", &scope, &Limits::default()).unwrap();
        assert_eq!(nodes.len(), 2);
        match &nodes[0] {
            Node::Element(e) => {
                assert!(e.is(Some(NS_XENC), "x"));
                assert!(e.namespace_decls().is_empty());
            }
            _ => panic!("expected an element"),
        }
    }

    #[test]
    fn paths_and_replacement() {
        let mut el = parse(b"<a><b><c/></b><c/><d><c/></d></a>").unwrap();
        let paths = el.paths_where(&mut |e| e.is(None, "c"));
        assert_eq!(paths, vec![vec![0, 0], vec![1], vec![2, 0]]);
        el.replace_at(&[1], Node::Text("t".into())).unwrap();
        assert_eq!(to_compact_string(&el), "<a><b><c /></b>t<d><c /></d></a>");
        let deep = "<a>".repeat(60) + &"</a>".repeat(60);
        let d = parse(deep.as_bytes()).unwrap();
        assert_eq!(d.descendants().count(), 59);
    }

    #[test]
    fn debug_never_shows_text() {
        let el = parse(b"<masterKey><value>SECRETSECRET</value></masterKey>").unwrap();
        assert!(!format!("{el:?}").contains("SECRET"));
    }

    #[test]
    fn utf16_declared_on_utf8_and_a_second_bom_are_refused_as_dotnet_refuses_them() {
        // .NET: "There is no Unicode byte order mark. Cannot switch to Unicode."
        for doc in [
            &b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-16\"?><key/>"[..],
            b"<?xml version=\"1.0\" encoding=\"UTF-16\"?><key/>",
            b"\xEF\xBB\xBF\xEF\xBB\xBF<key/>",
        ] {
            assert_eq!(parse(doc).unwrap_err().kind(), ErrorKind::Xml);
        }
        // UTF-16 that says so, and UTF-8 that says so, are read.
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "<?xml version=\"1.0\" encoding=\"utf-16\"?><key/>".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        assert!(parse(&utf16).is_ok());
        assert!(parse(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?><key/>").is_ok());
    }

    /// Regressions (fuzz/regressions/xml_parse/pi-target-xml-without-space,
    /// fuzz/regressions/key_file/pi-target-xml-in-master-key): a processing instruction named
    /// `xml` directly followed by `<` or `"` was accepted, then written back as a misplaced XML
    /// declaration that no parser reads.
    #[test]
    fn processing_instructions_with_the_reserved_target_are_refused() {
        for doc in [
            &b"<a>x<?xml<encry.?>y</a>"[..],
            b"<a><?xml\" encoding=\"\"?></a>",
            b"<a><?XML data?></a>",
            b"<a><?xMl?></a>",
        ] {
            assert_eq!(parse(doc).unwrap_err().kind(), ErrorKind::Xml, "{doc:?}");
        }
        let ok = parse(b"<a><?xml-stylesheet href=\"a\"?><?pi data?></a>").unwrap();
        let again = parse(&to_bytes(&ok, WriteOptions::COMPACT)).unwrap();
        assert_eq!(ok, again);
    }

    /// Regression (fuzz/regressions/xml_parse/element-name-begins-with-colon): `<:KeyInfo>` was
    /// read as `KeyInfo` and written back as something no parser reads; .NET refuses it.
    #[test]
    fn names_beginning_with_a_colon_are_refused() {
        for doc in [
            &b"<a><:b/></a>"[..],
            b"<:a/>",
            b"<a :b=\"1\"/>",
            b"<a xmlns=\"urn:x\"><:b></b></a>",
        ] {
            assert_eq!(parse(doc).unwrap_err().kind(), ErrorKind::Xml, "{doc:?}");
        }
    }
}
