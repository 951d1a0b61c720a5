//! The XML Encryption engine against wrong keys, tampering and hostile structure: every failure
//! has its exact kind, decryption failures are indistinguishable, and nothing ever leaves the
//! document or runs unbounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine as _;
use dpwrap::error::DECRYPT_MESSAGE;
use dpwrap::xml::{self, Element, NS_XENC, Name, Node};
use dpwrap::xmlenc::{self, EncryptedDataBuilder, Keys, Recipient};
use dpwrap::{
    ContentAlgorithm, ErrorKind, KeyWrapAlgorithm, RsaPadding, RsaPrivateKey, SecretBytes,
};

const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn master_key() -> Element {
    xml::parse(
        br#"<masterKey xmlns:d1p1="http://schemas.asp.net/2015/03/dataProtection" d1p1:requiresEncryption="true"><!-- Warning: the key below is in an unencrypted form. --><value>HfIK4QgxlajUlAj2se0A90ZAtJmkI4zOLQrCwEl86WM77WlKbDQlXhnd/DYDZKHUW6t0pg0J054XFJeFZ4U6hg==</value></masterKey>"#,
    )
    .unwrap()
}

/// An `EncryptedData` decrypted directly by a symmetric key named `name`.
fn direct(alg_uri: &str, name: &str, cipher: &[u8], data_type: &str) -> Element {
    xml::parse(
        format!(
            r#"<EncryptedData xmlns="{XENC}" Type="{data_type}"><EncryptionMethod Algorithm="{alg_uri}"/><KeyInfo xmlns="{DS}"><KeyName>{name}</KeyName></KeyInfo><CipherData><CipherValue>{}</CipherValue></CipherData></EncryptedData>"#,
            b64(cipher)
        )
        .as_bytes(),
    )
    .unwrap()
}

fn cipher_value_of(ed: &Element) -> Vec<u8> {
    let cd = ed.element(Some(NS_XENC), "CipherData").unwrap();
    let text = cd.element(Some(NS_XENC), "CipherValue").unwrap().text();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn set_cipher_value(ed: &mut Element, bytes: &[u8]) {
    let cd = ed
        .children_mut()
        .iter_mut()
        .find_map(|n| match n {
            Node::Element(e) if e.is(Some(NS_XENC), "CipherData") => Some(e),
            _ => None,
        })
        .unwrap();
    *cd = Element::new(Name::ns(XENC, "CipherData"))
        .with_child(Element::new(Name::ns(XENC, "CipherValue")).with_text(b64(bytes)));
}

fn assert_decrypt_error(r: dpwrap::Result<impl Sized>, what: &str) {
    match r {
        Ok(_) => panic!("{what}: decrypted"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Decrypt, "{what}: {e}");
            assert_eq!(e.message(), DECRYPT_MESSAGE, "{what}");
        }
    }
}

#[test]
fn every_way_of_failing_to_decrypt_looks_the_same() {
    let right = RsaPrivateKey::generate(2048).unwrap();
    let wrong = RsaPrivateKey::generate(2048).unwrap();
    // An opaque certificate stand-in: matching is by thumbprint of these bytes.
    let cert = b"certificate of the recipient".to_vec();
    let mut wrong_keys = Keys::new();
    wrong_keys.add_rsa(None, wrong, Some(cert.clone()));
    let mut right_keys = Keys::new();
    right_keys.add_rsa(None, right.clone_for_test(), Some(cert.clone()));

    for padding in [RsaPadding::Pkcs1v15, RsaPadding::oaep_sha1()] {
        let ed = EncryptedDataBuilder::new()
            .recipient(
                Recipient::certificate(cert.clone(), right.public_key())
                    .rsa_padding(padding.clone()),
            )
            .encrypt_element(&master_key())
            .unwrap();
        // Sanity: the right key works.
        assert_eq!(
            xmlenc::decrypt_element_type(&ed, &right_keys)
                .unwrap()
                .expose(),
            &master_key()
        );
        // PKCS#1 v1.5 with the wrong key "succeeds" with unrelated bytes (implicit rejection);
        // OAEP fails outright. Both must end in the same error.
        for _ in 0..3 {
            assert_decrypt_error(
                xmlenc::decrypt_element_type(&ed, &wrong_keys),
                &format!("wrong key, {padding:?}"),
            );
        }
    }

    // Symmetric content: bad padding, truncation, short data, tampering.
    let key = [0x42u8; 16];
    let mut keys = Keys::new();
    keys.add_symmetric("k", SecretBytes::copy_from(&key));
    let plaintext = xml::to_compact_string(&master_key());
    let data = ContentAlgorithm::Aes128Cbc
        .encrypt(&key, plaintext.as_bytes())
        .unwrap();
    let element = xmlenc::algorithms::TYPE_ELEMENT;
    let aes128 = xmlenc::algorithms::AES128_CBC;
    let good = direct(aes128, "k", &data, element);
    assert!(xmlenc::decrypt_element_type(&good, &keys).is_ok());

    // PKCS#7 pad byte known: flip the second-to-last block so the pad byte becomes 0.
    let pad = (16 - plaintext.len() % 16) as u8;
    let mut bad_pad = data.clone();
    let n = bad_pad.len();
    bad_pad[n - 17] ^= pad;
    let mut truncated = data.clone();
    truncated.truncate(n - 5);
    let short = data[..10].to_vec();
    let mut tampered = data.clone();
    tampered[n - 1] ^= 0x01;
    let iv_only = data[..16].to_vec();
    for (what, bytes) in [
        ("bad padding", bad_pad),
        ("truncated", truncated),
        ("shorter than the IV", short),
        ("IV only", iv_only),
        ("tampered last block", tampered),
    ] {
        assert_decrypt_error(
            xmlenc::decrypt_element_type(&direct(aes128, "k", &bytes, element), &keys),
            what,
        );
    }
    // A key of the wrong length for the algorithm (a 3DES IV-sized payload under AES-256).
    let mut k32 = Keys::new();
    k32.add_symmetric("k", SecretBytes::copy_from(&[1u8; 24]));
    assert_decrypt_error(
        xmlenc::decrypt_element_type(&good, &k32),
        "key of the wrong length",
    );
    // Right key, plaintext that is not XML.
    let not_xml = ContentAlgorithm::Aes128Cbc
        .encrypt(&key, b"\xff\xfe garbage")
        .unwrap();
    assert_decrypt_error(
        xmlenc::decrypt_element_type(&direct(aes128, "k", &not_xml, element), &keys),
        "plaintext not XML",
    );
    // GCM tag tampering.
    let gcm = ContentAlgorithm::Aes128Gcm
        .encrypt(&key, plaintext.as_bytes())
        .unwrap();
    let mut gcm_bad = gcm.clone();
    gcm_bad[20] ^= 1;
    let gcm_uri = xmlenc::algorithms::AES128_GCM;
    assert!(xmlenc::decrypt_element_type(&direct(gcm_uri, "k", &gcm, element), &keys).is_ok());
    assert_decrypt_error(
        xmlenc::decrypt_element_type(&direct(gcm_uri, "k", &gcm_bad, element), &keys),
        "GCM tampered",
    );
}

/// Test-only copy of a key (the library type is deliberately not `Clone`).
trait CloneForTest {
    fn clone_for_test(&self) -> RsaPrivateKey;
}

impl CloneForTest for RsaPrivateKey {
    fn clone_for_test(&self) -> RsaPrivateKey {
        RsaPrivateKey::from_pkcs8_der(&self.to_pkcs8_der().unwrap()).unwrap()
    }
}

#[test]
fn unknown_algorithms_are_named() {
    let mut keys = Keys::new();
    keys.add_symmetric("k", SecretBytes::copy_from(&[0; 16]));
    let ed = direct(
        "urn:example:rot13",
        "k",
        &[0; 32],
        xmlenc::algorithms::TYPE_ELEMENT,
    );
    let e = xmlenc::decrypt_element_type(&ed, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedAlgorithm);
    assert!(e.message().contains("urn:example:rot13"), "{e}");

    let ek = format!(
        r#"<EncryptedData xmlns="{XENC}"><EncryptionMethod Algorithm="{}"/><KeyInfo xmlns="{DS}"><EncryptedKey xmlns="{XENC}"><EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#kw-camellia256"/><KeyInfo xmlns="{DS}"><KeyName>k</KeyName></KeyInfo><CipherData><CipherValue>AAAA</CipherValue></CipherData></EncryptedKey></KeyInfo><CipherData><CipherValue>AAAA</CipherValue></CipherData></EncryptedData>"#,
        xmlenc::algorithms::AES128_CBC
    );
    let ed = xml::parse(ek.as_bytes()).unwrap();
    let e = xmlenc::decrypt_encrypted_data(&ed, &ed, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedAlgorithm);
    assert!(e.message().contains("kw-camellia256"), "{e}");

    let oaep = format!(
        r#"<EncryptedData xmlns="{XENC}"><EncryptionMethod Algorithm="{}"/><KeyInfo xmlns="{DS}"><EncryptedKey xmlns="{XENC}"><EncryptionMethod Algorithm="{}"><DigestMethod xmlns="{DS}" Algorithm="http://www.w3.org/2001/04/xmldsig-more#md5"/></EncryptionMethod><CipherData><CipherValue>AAAA</CipherValue></CipherData></EncryptedKey></KeyInfo><CipherData><CipherValue>AAAA</CipherValue></CipherData></EncryptedData>"#,
        xmlenc::algorithms::AES128_CBC,
        xmlenc::algorithms::RSA_OAEP_MGF1P
    );
    let ed = xml::parse(oaep.as_bytes()).unwrap();
    let e = xmlenc::decrypt_encrypted_data(&ed, &ed, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedAlgorithm);
    assert!(e.message().contains("xmldsig-more#md5"), "{e}");
}

fn with_cipher_reference(uri: &str, transforms: &str) -> Element {
    let doc = format!(
        r#"<doc xmlns:rep="urn:repo"><EncryptedData xmlns="{XENC}" Type="{}"><EncryptionMethod Algorithm="{}"/><KeyInfo xmlns="{DS}"><KeyName>k</KeyName></KeyInfo><CipherData><CipherReference URI="{uri}">{transforms}</CipherReference></CipherData></EncryptedData><rep:V Id="v">AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</rep:V></doc>"#,
        xmlenc::algorithms::TYPE_ELEMENT,
        xmlenc::algorithms::AES128_CBC
    );
    xml::parse(doc.as_bytes()).unwrap()
}

#[test]
fn cipher_references_never_leave_the_document() {
    let mut keys = Keys::new();
    keys.add_symmetric("k", SecretBytes::copy_from(&[0; 16]));
    let base64 = format!(
        r#"<Transforms><Transform xmlns="{DS}" Algorithm="http://www.w3.org/2000/09/xmldsig#base64"/></Transforms>"#
    );
    for uri in [
        "file:///etc/passwd",
        "http://127.0.0.1:1/cipher",
        "cipher.bin",
        "../shared/vectors/manifest.json",
        "#xpointer(id('v'))",
        "",
    ] {
        let doc = with_cipher_reference(uri, &base64);
        let ed = doc.find(Some(NS_XENC), "EncryptedData").unwrap();
        let e = xmlenc::decrypt_encrypted_data(ed, &doc, &keys).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnsupportedAlgorithm, "{uri}: {e}");
    }
    // Same-document references are read: here the cipher text is junk, so decryption fails.
    let doc = with_cipher_reference("#v", &base64);
    let ed = doc.find(Some(NS_XENC), "EncryptedData").unwrap();
    assert_decrypt_error(
        xmlenc::decrypt_encrypted_data(ed, &doc, &keys),
        "same-document reference",
    );
    // Transforms other than the narrow XPath and base64 are refused by name.
    let xslt = format!(
        r#"<Transforms><Transform xmlns="{DS}" Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/></Transforms>"#
    );
    let doc = with_cipher_reference("#v", &xslt);
    let ed = doc.find(Some(NS_XENC), "EncryptedData").unwrap();
    let e = xmlenc::decrypt_encrypted_data(ed, &doc, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedAlgorithm);
    assert!(e.message().contains("REC-xslt"), "{e}");
}

/// A document whose `EncryptedData` finds its key through `RetrievalMethod`s.
fn retrieval_doc(data_ref: &str, keys: &str) -> Element {
    let doc = format!(
        r#"<doc><EncryptedData xmlns="{XENC}" Type="{}"><EncryptionMethod Algorithm="{}"/><KeyInfo xmlns="{DS}"><RetrievalMethod Type="{}" URI="{data_ref}"/></KeyInfo><CipherData><CipherValue>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</CipherValue></CipherData></EncryptedData>{keys}</doc>"#,
        xmlenc::algorithms::TYPE_ELEMENT,
        xmlenc::algorithms::AES128_CBC,
        xmlenc::algorithms::TYPE_ENCRYPTED_KEY
    );
    xml::parse(doc.as_bytes()).unwrap()
}

fn ek_retrieving(id: &str, target: &str) -> String {
    format!(
        r#"<EncryptedKey xmlns="{XENC}" Id="{id}"><EncryptionMethod Algorithm="{}"/><KeyInfo xmlns="{DS}"><RetrievalMethod Type="{}" URI="{target}"/></KeyInfo><CipherData><CipherValue>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA</CipherValue></CipherData></EncryptedKey>"#,
        xmlenc::algorithms::KW_AES128,
        xmlenc::algorithms::TYPE_ENCRYPTED_KEY
    )
}

#[test]
fn retrieval_method_loops_chains_and_external_uris_are_refused() {
    let keys = Keys::new();
    let decrypt = |doc: &Element| {
        let ed = doc.find(Some(NS_XENC), "EncryptedData").unwrap();
        xmlenc::decrypt_encrypted_data(ed, doc, &keys).unwrap_err()
    };
    // a → b → a
    let doc = retrieval_doc(
        "#a",
        &(ek_retrieving("a", "#b") + &ek_retrieving("b", "#a")),
    );
    let e = decrypt(&doc);
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
    assert!(e.message().contains("loop"), "{e}");
    // a → a
    let e = decrypt(&retrieval_doc("#a", &ek_retrieving("a", "#a")));
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
    // A long chain without a loop: bounded by depth.
    let chain: String = (0..12)
        .map(|i| ek_retrieving(&format!("k{i}"), &format!("#k{}", i + 1)))
        .collect();
    let e = decrypt(&retrieval_doc("#k0", &chain));
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");
    // External and XPointer URIs.
    for uri in [
        "http://example.org/keys.xml#a",
        "keys.xml",
        "file:///etc/passwd",
        "",
    ] {
        let e = decrypt(&retrieval_doc(uri, &ek_retrieving("a", "#b")));
        assert_eq!(e.kind(), ErrorKind::UnsupportedAlgorithm, "{uri}: {e}");
    }
    // Two elements with the referenced Id: ambiguous.
    let e = decrypt(&retrieval_doc(
        "#a",
        &(ek_retrieving("a", "#x") + &ek_retrieving("a", "#y")),
    ));
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
    assert!(e.message().contains("ambiguous"), "{e}");
    // Pointing at something that is not an EncryptedKey.
    let e = decrypt(&retrieval_doc("#n", r#"<note Id="n">hello</note>"#));
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
}

/// An `EncryptedKey` wrapping `key` under a symmetric KEK named `kek_name`.
fn kw_key(kek_name: &str, kek: &[u8], alg: KeyWrapAlgorithm, key: &[u8]) -> String {
    format!(
        r#"<EncryptedKey xmlns="{XENC}"><EncryptionMethod Algorithm="{}"/><KeyInfo xmlns="{DS}"><KeyName>{kek_name}</KeyName></KeyInfo><CipherData><CipherValue>{}</CipherValue></CipherData></EncryptedKey>"#,
        xmlenc::algorithms::key_wrap_uri(alg),
        b64(&alg.wrap(kek, key).unwrap())
    )
}

fn data_with_keys(key_info: &str, content_key: &[u8]) -> Element {
    let ct = ContentAlgorithm::Aes256Cbc
        .encrypt(
            content_key,
            xml::to_compact_string(&master_key()).as_bytes(),
        )
        .unwrap();
    xml::parse(
        format!(
            r#"<EncryptedData xmlns="{XENC}" Type="{}"><EncryptionMethod Algorithm="{}"/><KeyInfo xmlns="{DS}">{key_info}</KeyInfo><CipherData><CipherValue>{}</CipherValue></CipherData></EncryptedData>"#,
            xmlenc::algorithms::TYPE_ELEMENT,
            xmlenc::algorithms::AES256_CBC,
            b64(&ct)
        )
        .as_bytes(),
    )
    .unwrap()
}

#[test]
fn every_encrypted_key_is_tried_within_a_budget() {
    let cek = [5u8; 32];
    let mine = [6u8; 16];
    let theirs = [7u8; 16];
    let mut keys = Keys::new();
    keys.add_symmetric("mine", SecretBytes::copy_from(&mine));
    // "theirs" is also a name we know, but with another key: the unwrap integrity check fails.
    keys.add_symmetric("theirs", SecretBytes::copy_from(&[8u8; 16]));

    // Duplicates of a key for someone else, then ours last: .NET would give up after the first.
    let theirs_ek = kw_key("theirs", &theirs, KeyWrapAlgorithm::Aes128, &cek);
    let mine_ek = kw_key("mine", &mine, KeyWrapAlgorithm::Aes128, &cek);
    let ed = data_with_keys(&(theirs_ek.repeat(30) + &mine_ek), &cek);
    let d = xmlenc::decrypt_encrypted_data_with_details(&ed, &ed, &keys).unwrap();
    assert_eq!(d.content_key.expose(), &cek);
    assert!(d.key_source.contains("'mine'"), "{}", d.key_source);

    // Too many: the budget runs out before ours is reached.
    let ed = data_with_keys(&(theirs_ek.repeat(40) + &mine_ek), &cek);
    let e = xmlenc::decrypt_encrypted_data(&ed, &ed, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");

    // Only keys for someone else: a plain decryption failure.
    let ed = data_with_keys(&theirs_ek.repeat(3), &cek);
    assert_decrypt_error(xmlenc::decrypt_encrypted_data(&ed, &ed, &keys), "theirs");

    // RSA decryptions are bounded too: every RSA key for every EncryptedKey adds up.
    let rsa = RsaPrivateKey::generate(2048).unwrap();
    let mut rsa_keys = Keys::new();
    for _ in 0..3 {
        rsa_keys.add_rsa(None, rsa.clone_for_test(), None);
    }
    rsa_keys.try_all_rsa_keys(true);
    let rsa_ek = format!(
        r#"<EncryptedKey xmlns="{XENC}"><EncryptionMethod Algorithm="{}"/><CipherData><CipherValue>AAAA</CipherValue></CipherData></EncryptedKey>"#,
        xmlenc::algorithms::RSA_1_5
    );
    let ed = data_with_keys(&rsa_ek.repeat(20), &cek);
    assert_decrypt_error(
        xmlenc::decrypt_encrypted_data(&ed, &ed, &rsa_keys),
        "60 RSA attempts",
    );
    let ed = data_with_keys(&rsa_ek.repeat(30), &cek);
    let e = xmlenc::decrypt_encrypted_data(&ed, &ed, &rsa_keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");
    assert!(e.message().contains("RSA"), "{e}");

    // A KeyInfo with more children than allowed is refused outright.
    let ed = data_with_keys(&"<KeyName>mine</KeyName>".repeat(100), &cek);
    let e = xmlenc::decrypt_encrypted_data(&ed, &ed, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");
}

#[test]
fn keys_wrapped_in_wrapped_keys_are_followed_to_a_bounded_depth() {
    let cek = [1u8; 32];
    let kek_inner = [2u8; 32];
    let kek_outer = [3u8; 16];
    let mut keys = Keys::new();
    keys.add_symmetric("outer", SecretBytes::copy_from(&kek_outer));

    // cek ← kw-aes256(kek_inner) ← kw-aes128(kek_outer, named "outer")
    let inner = kw_key("outer", &kek_outer, KeyWrapAlgorithm::Aes128, &kek_inner);
    let wrapped_cek = KeyWrapAlgorithm::Aes256.wrap(&kek_inner, &cek).unwrap();
    let ek = format!(
        r#"<EncryptedKey xmlns="{XENC}"><EncryptionMethod Algorithm="{}"/><KeyInfo xmlns="{DS}">{inner}</KeyInfo><CipherData><CipherValue>{}</CipherValue></CipherData></EncryptedKey>"#,
        xmlenc::algorithms::KW_AES256,
        b64(&wrapped_cek)
    );
    let ed = data_with_keys(&ek, &cek);
    let d = xmlenc::decrypt_encrypted_data_with_details(&ed, &ed, &keys).unwrap();
    assert_eq!(d.content_key.expose(), &cek);
    assert_eq!(
        d.key_source.matches("EncryptedKey").count(),
        2,
        "{}",
        d.key_source
    );

    // Nest far deeper than allowed: refused as a limit, not a stack overflow.
    let mut ek = kw_key("outer", &kek_outer, KeyWrapAlgorithm::Aes128, &cek);
    for _ in 0..10 {
        ek = format!(
            r#"<EncryptedKey xmlns="{XENC}"><EncryptionMethod Algorithm="{}"/><KeyInfo xmlns="{DS}">{ek}</KeyInfo><CipherData><CipherValue>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA</CipherValue></CipherData></EncryptedKey>"#,
            xmlenc::algorithms::KW_AES128
        );
    }
    let ed = data_with_keys(&ek, &cek);
    let e = xmlenc::decrypt_encrypted_data(&ed, &ed, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");
}

#[test]
fn huge_base64_is_refused_before_decoding() {
    let mut keys = Keys::new();
    keys.add_symmetric("k", SecretBytes::copy_from(&[0; 16]));
    // Built in memory: the XML parser's own text limit would stop a parsed document earlier.
    let mut ed = direct(
        xmlenc::algorithms::AES128_CBC,
        "k",
        &[0; 32],
        xmlenc::algorithms::TYPE_ELEMENT,
    );
    let huge = "QUFB".repeat(xmlenc::MAX_CIPHER_VALUE_BYTES / 3 + 10);
    set_cipher_value(&mut ed, &[]);
    let cd = ed
        .children_mut()
        .iter_mut()
        .find_map(|n| match n {
            Node::Element(e) if e.is(Some(NS_XENC), "CipherData") => Some(e),
            _ => None,
        })
        .unwrap();
    *cd = Element::new(Name::ns(XENC, "CipherData"))
        .with_child(Element::new(Name::ns(XENC, "CipherValue")).with_text(huge));
    let e = xmlenc::decrypt_encrypted_data(&ed, &ed, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");

    // A wrapped key larger than any RSA-8192 ciphertext is refused too.
    let big_ek = format!(
        r#"<EncryptedKey xmlns="{XENC}"><EncryptionMethod Algorithm="{}"/><CipherData><CipherValue>{}</CipherValue></CipherData></EncryptedKey>"#,
        xmlenc::algorithms::RSA_1_5,
        b64(&[1u8; 2000])
    );
    let ed = data_with_keys(&big_ek, &[0; 32]);
    let e = xmlenc::decrypt_encrypted_data(&ed, &ed, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");
}

#[test]
fn no_key_is_reported_with_what_was_wanted() {
    let keys = Keys::new();
    let ed = direct(
        xmlenc::algorithms::AES128_CBC,
        "nobody",
        &[0; 32],
        xmlenc::algorithms::TYPE_ELEMENT,
    );
    let e = xmlenc::decrypt_element_type(&ed, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoMatchingKey);
    assert!(e.message().contains("'nobody'"), "{e}");
    assert!(e.message().contains("no keys"), "{e}");

    let no_key_info = xml::parse(
        format!(
            r#"<EncryptedData xmlns="{XENC}"><EncryptionMethod Algorithm="{}"/><CipherData><CipherValue>AAAA</CipherValue></CipherData></EncryptedData>"#,
            xmlenc::algorithms::AES128_CBC
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        xmlenc::decrypt_element_type(&no_key_info, &keys)
            .unwrap_err()
            .kind(),
        ErrorKind::NoMatchingKey
    );
}

#[test]
fn documents_are_decrypted_in_place_including_nested_encryption() {
    let kek = [4u8; 32];
    let mut keys = Keys::new();
    keys.add_symmetric("kek", SecretBytes::copy_from(&kek));
    let builder = EncryptedDataBuilder::new()
        .content_algorithm(ContentAlgorithm::Aes128Gcm)
        .recipient(Recipient::symmetric(
            "kek",
            SecretBytes::copy_from(&kek),
            KeyWrapAlgorithm::Aes256,
        ));
    let original = xml::parse(
        br#"<order xmlns="urn:po" xmlns:x="urn:x"><item>spade</item><pay x:card="1"><number>4019</number></pay><pay><number>5</number></pay></order>"#,
    )
    .unwrap();
    // Encrypt both <pay> elements, then the whole order again (super-encryption).
    let mut doc = original.clone();
    for i in [1usize, 2] {
        let pay = doc.at(&[i]).unwrap().clone();
        let ed = builder.encrypt_element(&pay).unwrap();
        doc.replace_at(&[i], Node::Element(ed));
    }
    let outer = builder.encrypt_element(&doc).unwrap();
    let mut wrapper = Element::new(Name::local("envelope")).with_child(outer);
    assert_eq!(xmlenc::decrypt_document(&mut wrapper, &keys).unwrap(), 3);
    assert_eq!(wrapper.elements().next().unwrap(), &original);

    // Content type: the text goes back between its neighbours as one text node.
    let secret_text = EncryptedDataBuilder::new()
        .recipient(Recipient::symmetric(
            "kek",
            SecretBytes::copy_from(&kek),
            KeyWrapAlgorithm::Aes256,
        ))
        .encrypt_octets(b"middle ")
        .unwrap();
    let mut ed = secret_text;
    ed.set_attribute(Name::local("Type"), xmlenc::algorithms::TYPE_CONTENT);
    let mut doc = Element::new(Name::local("p"))
        .with_text("start ")
        .with_child(ed)
        .with_text("end");
    assert_eq!(xmlenc::decrypt_document(&mut doc, &keys).unwrap(), 1);
    assert_eq!(doc.children(), &[Node::Text("start middle end".to_owned())]);

    // A document that is an EncryptedData of Type Element becomes its plaintext element.
    let mut doc = builder.encrypt_element(&original).unwrap();
    assert_eq!(xmlenc::decrypt_document(&mut doc, &keys).unwrap(), 1);
    assert_eq!(doc, original);

    // One EncryptedData that cannot be decrypted: the document is left exactly as it was, the
    // one that could be decrypted included.
    let other = EncryptedDataBuilder::new()
        .recipient(Recipient::symmetric(
            "someone else",
            SecretBytes::copy_from(&[1; 32]),
            KeyWrapAlgorithm::Aes256,
        ))
        .encrypt_element(&original)
        .unwrap();
    let mut doc = Element::new(Name::local("two"))
        .with_child(builder.encrypt_element(&original).unwrap())
        .with_child(other);
    let before = doc.clone();
    let e = xmlenc::decrypt_document(&mut doc, &keys).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoMatchingKey);
    assert!(e.message().contains("'someone else'"), "{e}");
    assert_eq!(doc, before);
}

#[test]
fn the_builder_round_trips_every_algorithm_and_recipient_kind() {
    let rsa = RsaPrivateKey::generate(2048).unwrap();
    let kek = [9u8; 24];
    let mut keys = Keys::new();
    keys.add_rsa(Some("rsa".to_owned()), rsa.clone_for_test(), None);
    keys.add_symmetric("3des", SecretBytes::copy_from(&kek));
    for alg in [
        ContentAlgorithm::Aes128Cbc,
        ContentAlgorithm::Aes192Cbc,
        ContentAlgorithm::Aes256Cbc,
        ContentAlgorithm::TripleDesCbc,
        ContentAlgorithm::Aes128Gcm,
        ContentAlgorithm::Aes192Gcm,
        ContentAlgorithm::Aes256Gcm,
    ] {
        for recipient in [
            Recipient::rsa_key("rsa", rsa.public_key()).rsa_padding(RsaPadding::Oaep {
                digest: dpwrap::Digest::Sha256,
                mgf: dpwrap::Digest::Sha512,
                label: Some(b"label".to_vec()),
            }),
            Recipient::symmetric(
                "3des",
                SecretBytes::copy_from(&kek),
                KeyWrapAlgorithm::TripleDes,
            ),
        ] {
            let ed = EncryptedDataBuilder::new()
                .content_algorithm(alg)
                .recipient(recipient)
                .encrypt_element(&master_key())
                .unwrap();
            // Through text, as it would travel.
            let ed = xml::parse(xml::to_compact_string(&ed).as_bytes()).unwrap();
            let d = xmlenc::decrypt_encrypted_data_with_details(&ed, &ed, &keys).unwrap();
            assert_eq!(d.content_algorithm, alg);
            assert_eq!(
                d.plaintext.expose(),
                xml::to_compact_string(&master_key()).as_bytes()
            );
        }
    }
    assert_eq!(
        EncryptedDataBuilder::new()
            .encrypt_element(&master_key())
            .unwrap_err()
            .kind(),
        ErrorKind::Config
    );
    // Fresh key and IV every time.
    let b = EncryptedDataBuilder::new().recipient(Recipient::symmetric(
        "3des",
        SecretBytes::copy_from(&kek),
        KeyWrapAlgorithm::TripleDes,
    ));
    let a1 = b.encrypt_element(&master_key()).unwrap();
    let a2 = b.encrypt_element(&master_key()).unwrap();
    assert_ne!(cipher_value_of(&a1), cipher_value_of(&a2));
}
