//! Hostile key files: each is refused with its own error kind, never a panic, and memory stays
//! within the parser's limits.

mod common;

use dpwrap::key_file::{self, Key, RingElement};
use dpwrap::{Decryptors, ErrorKind, NullXmlDecryptor, xml};
use std::sync::Arc;

const PLAIN_KEY: &str =
    "vectors/aspnet/recognition/plain-key-d17a439d-8228-4216-9ea5-16a5424a0788.xml";

fn plain_key_text() -> String {
    std::fs::read_to_string(common::shared(PLAIN_KEY)).unwrap()
}

fn parse_kind(bytes: &[u8]) -> ErrorKind {
    xml::parse(bytes).map(|_| ()).unwrap_err().kind()
}

fn master_key_error(text: &str) -> ErrorKind {
    let element = xml::parse(text.as_bytes()).unwrap();
    let key = Key::from_element(element).unwrap();
    let decryptors = Decryptors::new().with(Arc::new(NullXmlDecryptor));
    common::block_on(key.master_key(&decryptors))
        .unwrap_err()
        .kind()
}

#[test]
fn billion_laughs_is_refused() {
    let mut doc = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        doc.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    doc.push_str("]><key>&lol9;</key>");
    assert_eq!(parse_kind(doc.as_bytes()), ErrorKind::Xml);
}

#[test]
fn external_entities_are_refused() {
    let doc = "<?xml version=\"1.0\"?><!DOCTYPE key [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><key>&xxe;</key>";
    assert_eq!(parse_kind(doc.as_bytes()), ErrorKind::Xml);
    // Without a DTD, an undeclared entity is an error too (never resolved).
    assert_eq!(parse_kind(b"<key>&xxe;</key>"), ErrorKind::Xml);
}

#[test]
fn deep_nesting_hits_the_depth_limit() {
    let doc = "<a>".repeat(100_000) + &"</a>".repeat(100_000);
    let err = xml::parse(doc.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit);
    assert!(err.to_string().contains("max_depth"), "{err}");
}

#[test]
fn a_100_mb_attribute_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key-huge.xml");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all(b"<key id=\"").unwrap();
        let chunk = vec![b'A'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\" />").unwrap();
    }
    let err = key_file::read_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit);
    assert!(err.to_string().contains("max_input_bytes"), "{err}");
    // In memory, the same document is refused by the input limit too.
    let doc = format!("<key id=\"{}\" />", "A".repeat(100 << 20));
    assert_eq!(parse_kind(doc.as_bytes()), ErrorKind::Limit);
}

#[test]
fn invalid_utf8_is_refused() {
    let mut bytes = plain_key_text().into_bytes();
    let pos = bytes.iter().position(|&b| b == b'>').unwrap();
    bytes.insert(pos + 1, 0xC3);
    bytes.insert(pos + 2, 0x28);
    let err = xml::parse(&bytes).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Xml);
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn a_truncated_file_is_refused() {
    let text = plain_key_text();
    for cut in [text.len() / 3, text.len() / 2, text.len() - 10] {
        let err = xml::parse(&text.as_bytes()[..cut]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Xml, "cut at {cut}: {err}");
    }
}

#[test]
fn two_master_keys_are_refused() {
    let text = plain_key_text();
    let start = text.find("<masterKey").unwrap();
    let end = text.find("</masterKey>").unwrap() + "</masterKey>".len();
    let doubled = format!("{}{}{}", &text[..end], &text[start..end], &text[end..]);
    assert_eq!(master_key_error(&doubled), ErrorKind::Format);
}

#[test]
fn an_unknown_deserializer_is_named() {
    let text = plain_key_text().replace(
        "ConfigurationModel.AuthenticatedEncryptorDescriptorDeserializer",
        "ConfigurationModel.EvilDescriptorDeserializer",
    );
    assert_eq!(master_key_error(&text), ErrorKind::UnknownDeserializer);
}

#[test]
fn an_unknown_decryptor_is_named() {
    let text = plain_key_text();
    let start = text.find("<masterKey").unwrap();
    let end = text.find("</masterKey>").unwrap() + "</masterKey>".len();
    let wrapped = format!(
        "{}<encryptedSecret decryptorType=\"Contoso.EvilDecryptor, Contoso\" xmlns=\"http://schemas.asp.net/2015/03/dataProtection\"><x xmlns=\"\" /></encryptedSecret>{}",
        &text[..start],
        &text[end..]
    );
    let element = xml::parse(wrapped.as_bytes()).unwrap();
    let key = Key::from_element(element).unwrap();
    assert_eq!(key.protection(), dpwrap::Protection::Unknown);
    let err = common::block_on(key.master_key(&Decryptors::new())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownDecryptor);
    assert!(err.to_string().contains("Contoso.EvilDecryptor"), "{err}");
}

#[test]
fn a_key_id_that_disagrees_with_its_file_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("key-00000000-0000-0000-0000-000000000001.xml");
    std::fs::write(&path, plain_key_text()).unwrap();
    assert_eq!(
        key_file::read_file(&path).unwrap_err().kind(),
        ErrorKind::Format
    );
    let ok = dir
        .path()
        .join("key-d17a439d-8228-4216-9ea5-16a5424a0788.xml");
    std::fs::write(&ok, plain_key_text()).unwrap();
    assert!(matches!(
        key_file::read_file(&ok).unwrap(),
        RingElement::Key(_)
    ));
}
