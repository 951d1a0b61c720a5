//! Distinguished names: writing them as RFC 4514 strings, and comparing a name written by someone
//! else (an `X509IssuerName` or `X509SubjectName` in XML) with a certificate's name.
//!
//! Writers disagree on the text form of the same name: RFC 4514 (`CN=Foo,O=Bar`), .NET
//! (`CN=Foo, O=Bar`, `E=` for the e-mail address, `S=` for the state, `OID.1.2.3=`, quoted
//! values), OpenSSL's one-line forms (`C = US, O = Bar, CN = Foo` in issuer-first order, or
//! `/C=US/O=Bar/CN=Foo`) and xmlsec (`emailAddress=`). Comparison therefore parses the text into
//! attribute types (OIDs) and values and compares those, values with LDAP `caseIgnoreMatch`
//! rules: case-insensitive, leading and trailing space ignored, inner runs of space collapsed.

use der::asn1::{Any, AnyRef};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::name::Name;

/// Attribute types with a short name: the RFC 4514 table first (those names are used when
/// writing), then the names OpenSSL and .NET print for other common types.
const TYPES: &[(&str, &str)] = &[
    ("CN", "2.5.4.3"),
    ("L", "2.5.4.7"),
    ("ST", "2.5.4.8"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("C", "2.5.4.6"),
    ("STREET", "2.5.4.9"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("UID", "0.9.2342.19200300.100.1.1"),
    ("emailAddress", "1.2.840.113549.1.9.1"),
    ("serialNumber", "2.5.4.5"),
    ("SN", "2.5.4.4"),
    ("GN", "2.5.4.42"),
    ("title", "2.5.4.12"),
    ("initials", "2.5.4.43"),
    ("generationQualifier", "2.5.4.44"),
    ("dnQualifier", "2.5.4.46"),
    ("pseudonym", "2.5.4.65"),
    ("postalCode", "2.5.4.17"),
    ("name", "2.5.4.41"),
    ("description", "2.5.4.13"),
    ("organizationIdentifier", "2.5.4.97"),
    // Aliases, read but never written.
    ("commonName", "2.5.4.3"),
    ("localityName", "2.5.4.7"),
    ("S", "2.5.4.8"),
    ("stateOrProvinceName", "2.5.4.8"),
    ("organizationName", "2.5.4.10"),
    ("organizationalUnitName", "2.5.4.11"),
    ("countryName", "2.5.4.6"),
    ("streetAddress", "2.5.4.9"),
    ("domainComponent", "0.9.2342.19200300.100.1.25"),
    ("userId", "0.9.2342.19200300.100.1.1"),
    ("E", "1.2.840.113549.1.9.1"),
    ("EMAIL", "1.2.840.113549.1.9.1"),
    ("surname", "2.5.4.4"),
    ("G", "2.5.4.42"),
    ("givenName", "2.5.4.42"),
    ("T", "2.5.4.12"),
    ("I", "2.5.4.43"),
];

/// Longest name string parsed for comparison.
const MAX_NAME_TEXT: usize = 16 * 1024;

fn short_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    let dotted = oid.to_string();
    TYPES
        .iter()
        .find(|(_, o)| *o == dotted)
        .map(|(name, _)| *name)
}

fn oid_of(type_name: &str) -> Option<String> {
    let t = type_name.trim();
    let dotted = t
        .strip_prefix("OID.")
        .or_else(|| t.strip_prefix("oid."))
        .unwrap_or(t);
    if dotted.starts_with(|c: char| c.is_ascii_digit()) {
        return ObjectIdentifier::new(dotted).ok().map(|o| o.to_string());
    }
    TYPES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(t))
        .map(|(_, oid)| (*oid).to_owned())
}

/// The text of a directory string value, when it is one of the string types.
fn value_text(value: AnyRef<'_>) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::VisibleString
        | Tag::NumericString => std::str::from_utf8(bytes).ok().map(str::to_owned),
        // T.61 in theory; Latin-1 in practice.
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .filter_map(|c| <[u8; 2]>::try_from(c).ok().map(u16::from_be_bytes))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// The first common name (CN) of `name`, when it is a string.
pub(crate) fn common_name(name: &Name) -> Option<String> {
    name.iter()
        .find(|atv| atv.oid.to_string() == "2.5.4.3")
        .and_then(|atv| value_text(AnyRef::from(&atv.value)))
}

/// Writes `name` as an RFC 4514 string (most specific attribute first, `,` between RDNs, `+`
/// inside one), as `openssl x509 -nameopt RFC2253` prints it for ASCII names. Values that are not
/// strings are written as `#` and the hex of their DER.
pub(crate) fn to_rfc4514(name: &Name) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.into_iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let ty = short_name(&atv.oid);
            match (ty, value_text(AnyRef::from(&atv.value))) {
                (Some(ty), Some(text)) => {
                    out.push_str(ty);
                    out.push('=');
                    escape_into(&text, &mut out);
                }
                (ty, _) => {
                    match ty {
                        Some(ty) => out.push_str(ty),
                        None => out.push_str(&atv.oid.to_string()),
                    }
                    out.push_str("=#");
                    for b in atv.value.to_der().unwrap_or_default() {
                        out.push_str(&format!("{b:02X}"));
                    }
                }
            }
        }
    }
    out
}

fn escape_into(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0'..='\x1f' | '\x7f' => out.push_str(&format!("\\{:02X}", c as u32)),
            _ => out.push(c),
        }
    }
}

/// An attribute value reduced for comparison.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    /// A string value, case-folded and with its spaces normalised.
    Text(String),
    /// A value that is not a string: its DER.
    Der(Vec<u8>),
}

type Atv = (String, Value);
/// RDNs in the order of the text, each a sorted set of attributes.
type Dn = Vec<Vec<Atv>>;

fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn value_of_any(value: AnyRef<'_>) -> Value {
    match value_text(value) {
        Some(text) => Value::Text(normalise(&text)),
        None => Value::Der(value.to_der().unwrap_or_default()),
    }
}

/// The certificate's name, RDNs in DER order (least specific first).
fn from_name(name: &Name) -> Dn {
    name.iter_rdn()
        .map(|rdn| {
            let mut atvs: Vec<Atv> = rdn
                .iter()
                .map(|atv| (atv.oid.to_string(), value_of_any(AnyRef::from(&atv.value))))
                .collect();
            atvs.sort();
            atvs
        })
        .collect()
}

/// Splits `text` at unescaped, unquoted occurrences of any of `seps`.
fn split_unquoted<'a>(text: &'a str, seps: &[char]) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            c if !quoted && seps.contains(&c) => {
                parts.push(text.get(start..i).unwrap_or_default());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or_default());
    parts
}

/// Undoes RFC 4514 escapes (`\,` and `\XX` hex pairs) and .NET-style quoting.
fn unescape(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return unescape_chars(inner);
    }
    unescape_chars(raw)
}

fn unescape_chars(raw: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some(h)
                if h.is_ascii_hexdigit() && chars.peek().is_some_and(char::is_ascii_hexdigit) =>
            {
                let l = chars.next()?;
                let pair = [h as u8, l as u8];
                let s = std::str::from_utf8(&pair).ok()?;
                bytes.push(u8::from_str_radix(s, 16).ok()?);
            }
            Some(other) => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
            // A trailing lone backslash (left when an escaped final space was trimmed).
            None => {}
        }
    }
    String::from_utf8(bytes).ok()
}

fn parse_value(raw: &str) -> Option<Value> {
    let raw = raw.trim();
    if let Some(hex) = raw.strip_prefix('#') {
        if !hex.len().is_multiple_of(2) {
            return None;
        }
        let der: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect();
        let der = der?;
        let any = Any::from_der(&der).ok()?;
        return Some(match value_text(AnyRef::from(&any)) {
            Some(text) => Value::Text(normalise(&text)),
            None => Value::Der(der),
        });
    }
    Some(Value::Text(normalise(&unescape(raw)?)))
}

/// Parses a distinguished name in any of the common text forms, RDNs in text order. `None` when
/// it cannot be read (an unknown attribute name, bad hex, ...).
fn parse_dn(text: &str) -> Option<Dn> {
    let text = text.trim();
    if text.len() > MAX_NAME_TEXT {
        return None;
    }
    if text.is_empty() {
        return Some(Vec::new());
    }
    let rdn_texts = match text.strip_prefix('/') {
        // OpenSSL's one-line form lists the least specific RDN first.
        Some(rest) => {
            let mut v = split_unquoted(rest, &['/']);
            v.reverse();
            v
        }
        None => split_unquoted(text, &[',', ';']),
    };
    rdn_texts
        .into_iter()
        .map(|rdn| {
            let mut atvs = split_unquoted(rdn, &['+'])
                .into_iter()
                .map(|atv| {
                    let (ty, value) = atv.split_once('=')?;
                    Some((oid_of(ty)?, parse_value(value)?))
                })
                .collect::<Option<Vec<Atv>>>()?;
            atvs.sort();
            Some(atvs)
        })
        .collect()
}

/// Whether `text` names the same distinguished name as `name`, in either RDN order (RFC 4514 and
/// .NET list the most specific first; OpenSSL's default output lists it last).
pub(crate) fn matches(name: &Name, text: &str) -> bool {
    let Some(wanted) = parse_dn(text) else {
        return false;
    };
    let have = from_name(name);
    if wanted.len() != have.len() {
        return false;
    }
    wanted.iter().eq(have.iter().rev()) || wanted.iter().eq(have.iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    #[test]
    fn writes_rfc4514_with_escapes() {
        let n = name(r"CN=Foo \+ Bar,OU=Testing\, Inc.,O=Example,C=US");
        assert_eq!(
            to_rfc4514(&n),
            r"CN=Foo \+ Bar,OU=Testing\, Inc.,O=Example,C=US"
        );
    }

    #[test]
    fn matches_the_usual_writers_forms() {
        let n = name(
            "emailAddress=test@example.com,CN=dpwrap test,OU=Testing\\, Inc.,O=Example Org,C=US",
        );
        for text in [
            "emailAddress=test@example.com,CN=dpwrap test,OU=Testing\\, Inc.,O=Example Org,C=US",
            "E=test@example.com, CN=dpwrap test, OU=\"Testing, Inc.\", O=Example Org, C=US",
            "C = US, O = Example Org, OU = \"Testing, Inc.\", CN = dpwrap test, emailAddress = test@example.com",
            "/C=US/O=Example Org/OU=Testing, Inc./CN=dpwrap test/emailAddress=test@example.com",
            "e=TEST@example.com;  cn=DPWRAP   test ; ou=testing\\2C inc.;o=example org;c=us",
            "OID.1.2.840.113549.1.9.1=test@example.com,CN=dpwrap test,OU=Testing\\, Inc.,O=Example Org,2.5.4.6=#130255 53",
        ] {
            // The last entry has a broken hex value on purpose: it must not match.
            let expect = !text.contains("#130255 53");
            assert_eq!(matches(&n, text), expect, "{text}");
        }
        assert!(matches(
            &n,
            "1.2.840.113549.1.9.1=#161074657374406578616D706C652E636F6D,CN=dpwrap test,OU=Testing\\, Inc.,O=Example Org,C=US"
        ));
        assert!(!matches(&n, "CN=dpwrap test,O=Example Org,C=US"));
        assert!(!matches(
            &n,
            "CN=other,OU=Testing\\, Inc.,O=Example Org,C=US,E=test@example.com"
        ));
        assert!(!matches(&n, "XX=1"));
        assert!(!matches(&n, ""));
    }

    #[test]
    fn multi_valued_rdns_compare_as_sets() {
        let n = name("OU=Sales+CN=J. Smith,DC=example,DC=net");
        assert!(matches(&n, "CN=J. Smith+OU=Sales,DC=example,DC=net"));
        assert!(!matches(&n, "CN=J. Smith,OU=Sales,DC=example,DC=net"));
    }
}
