//! Loading certificates and private keys from every container people have them in, checked
//! against what openssl and Mono's X509Certificate2 printed about the same files
//! (`fixtures/certs/*.expected`, made by `fixtures/certs/make.sh`) and against the third-party
//! vectors in `../shared/vectors`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use dpwrap::certificate::{private_key_from_der, private_key_from_pem};
use dpwrap::{Certificate, CertificateWithKey, ErrorKind, Password, RsaPrivateKey};

const PW: &str = "test-password";
const UNICODE_PW: &str = "pässwörd-ü";

fn cert_dir(name: &str) -> PathBuf {
    common::fixture("certs").join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(cert_dir(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn shared(rel: &str) -> Vec<u8> {
    std::fs::read(common::shared(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn expected(name: &str) -> HashMap<String, String> {
    String::from_utf8(read(&format!("{name}.expected")))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn pw(text: &str) -> Password {
    Password::from(text)
}

/// Parses openssl's `Nov 24 19:59:13 2026 GMT`.
fn openssl_date(text: &str) -> time::OffsetDateTime {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[0])
    .unwrap() as u8
        + 1;
    let day: u8 = parts[1].parse().unwrap();
    let hms: Vec<u8> = parts[2].split(':').map(|p| p.parse().unwrap()).collect();
    let year: i32 = parts[3].parse().unwrap();
    time::Date::from_calendar_date(year, time::Month::try_from(month).unwrap(), day)
        .unwrap()
        .with_hms(hms[0], hms[1], hms[2])
        .unwrap()
        .assume_utc()
}

/// Checks every field of `cert` against an expectation file.
fn check_certificate(cert: &Certificate, exp: &HashMap<String, String>) {
    assert_eq!(cert.thumbprint(), exp["thumbprint"]);
    assert_eq!(cert.thumbprint(), exp["dotnet_thumbprint"]);
    assert_eq!(cert.subject(), exp["subject"]);
    assert_eq!(cert.issuer(), exp["issuer"]);
    assert_eq!(hex(cert.serial_number()), exp["dotnet_serial_hex"]);
    let stripped: &[u8] = match cert.serial_number() {
        [0, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    assert_eq!(hex(stripped), exp["serial_hex"]);
    assert_eq!(cert.serial_number_decimal(), exp["serial_decimal"]);
    assert_eq!(cert.not_before(), openssl_date(&exp["not_before"]));
    assert_eq!(cert.not_after(), openssl_date(&exp["not_after"]));
    match exp["ski"].as_str() {
        "" => assert_eq!(cert.subject_key_identifier(), None),
        ski => {
            assert_eq!(hex(&cert.subject_key_identifier().unwrap()), ski);
            assert!(cert.matches_ski(&unhex(ski)));
        }
    }
    let public = cert.public_key().unwrap();
    assert_eq!(hex(&public.modulus()), exp["modulus"]);
    assert_eq!(cert.key_size_bits().unwrap().to_string(), exp["bits"]);
    // Every writer's form of the issuer and subject names the certificate.
    for issuer in [
        &exp["issuer"],
        &exp["issuer_oneline"],
        &exp["dotnet_issuer"],
    ] {
        assert!(
            cert.matches_issuer_serial(issuer, &exp["serial_decimal"]),
            "{issuer}"
        );
    }
    for subject in [
        &exp["subject"],
        &exp["subject_compat"],
        &exp["dotnet_subject"],
    ] {
        assert!(cert.matches_subject_name(subject), "{subject}");
    }
    assert!(cert.matches_thumbprint(&exp["thumbprint"].to_lowercase()));
    // And other serial numbers or names do not.
    let other_serial = format!("{}1", exp["serial_decimal"]);
    assert!(!cert.matches_issuer_serial(&exp["issuer"], &other_serial));
    assert!(!cert.matches_issuer_serial("CN=somebody else", &exp["serial_decimal"]));
    assert!(!cert.matches_subject_name("CN=somebody else"));
    assert!(!cert.matches_ski(&[0u8; 20]));
    assert!(!cert.matches_thumbprint("00"));
    let debug = format!("{cert:?}");
    assert!(debug.contains(&exp["thumbprint"]), "{debug}");
}

#[test]
fn certificate_fields_match_openssl_and_dotnet() {
    for name in ["rsa2048", "ca", "leaf", "peer2048"] {
        let exp = expected(name);
        let cert = Certificate::from_pem(&read(&format!("{name}.cert.pem"))).unwrap();
        check_certificate(&cert, &exp);
    }
    let der = Certificate::from_der(&read("rsa2048.cert.der")).unwrap();
    check_certificate(&der, &expected("rsa2048"));
    assert_eq!(
        Certificate::from_pem_or_der(&read("rsa2048.cert.der")).unwrap(),
        der
    );
    assert_eq!(
        Certificate::from_file(cert_dir("rsa2048.cert.pem")).unwrap(),
        der
    );
    // The peer's own thumbprint file.
    let peer = Certificate::from_pem(&read("peer2048.cert.pem")).unwrap();
    assert_eq!(
        peer.thumbprint(),
        String::from_utf8(read("peer2048.thumbprint"))
            .unwrap()
            .trim()
    );
}

#[test]
fn shared_vector_certificates_match_openssl_and_dotnet() {
    let cases = [
        (
            "aspnet",
            "vectors/aspnet/dotnet-aspnetcore-trimming/TestCert-user-example-com.pfx",
            "password",
        ),
        (
            "merlin",
            "vectors/xmlenc/merlin-xmlenc-five/rsapriv.p12",
            "secret",
        ),
        (
            "phaos",
            "vectors/xmlenc/01-phaos-xmlenc-3/rsa-priv-key.p12",
            "secret",
        ),
        (
            "xmlenc11-2048",
            "vectors/xmlenc/xmlenc11-interop-2012/RSA-2048_SHA256WithRSA.p12",
            "passwd",
        ),
        (
            "xmlenc11-3072",
            "vectors/xmlenc/xmlenc11-interop-2012/RSA-3072_SHA256WithRSA.p12",
            "passwd",
        ),
        (
            "xmlenc11-4096",
            "vectors/xmlenc/xmlenc11-interop-2012/RSA-4096_SHA256WithRSA.p12",
            "passwd",
        ),
    ];
    for (name, path, password) in cases {
        let loaded = CertificateWithKey::from_pkcs12(&shared(path), &pw(password))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        check_certificate(loaded.certificate(), &expected(&format!("shared-{name}")));
    }
    assert_eq!(
        CertificateWithKey::from_pkcs12(
            &shared("vectors/aspnet/dotnet-aspnetcore-trimming/TestCert-user-example-com.pfx"),
            &pw("password")
        )
        .unwrap()
        .thumbprint(),
        "3BFD1BAE91D198645590F1DAC2FE7C2250292A65"
    );
}

/// The X509Data of the XML Encryption 1.1 vectors (written by the W3C interop participants)
/// names each certificate by issuer and serial, SKI and subject name.
#[test]
fn xmlenc11_x509data_identifies_its_certificates() {
    let dir = common::shared("vectors/xmlenc/xmlenc11-interop-2012");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if !file.starts_with("cipherText__RSA-") || !file.ends_with(".xml") {
            continue;
        }
        let size = &file["cipherText__RSA-".len().."cipherText__RSA-".len() + 4];
        let p12 = dir.join(format!("RSA-{size}_SHA256WithRSA.p12"));
        let own =
            CertificateWithKey::from_pkcs12(&std::fs::read(&p12).unwrap(), &pw("passwd")).unwrap();
        let cert = own.certificate();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap();
        let find = |local: &str| {
            doc.descendants()
                .find(|n| n.tag_name().name() == local)
                .and_then(|n| n.text())
                .map(|t| t.trim().to_owned())
        };
        let issuer = find("X509IssuerName").unwrap();
        let serial = find("X509SerialNumber").unwrap();
        assert!(cert.matches_issuer_serial(&issuer, &serial), "{file}");
        if let Some(ski) = find("X509SKI") {
            let ski = base64::engine::general_purpose::STANDARD
                .decode(ski)
                .unwrap();
            assert!(cert.matches_ski(&ski), "{file}");
        }
        if let Some(subject) = find("X509SubjectName") {
            assert!(cert.matches_subject_name(&subject), "{file}");
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(find("X509Certificate").unwrap())
            .unwrap();
        assert_eq!(Certificate::from_der(&der).unwrap(), *cert, "{file}");
        // A certificate of another size is not named by this X509Data.
        let other = if size == "2048" { "4096" } else { "2048" };
        let other = CertificateWithKey::from_pkcs12(
            &std::fs::read(dir.join(format!("RSA-{other}_SHA256WithRSA.p12"))).unwrap(),
            &pw("passwd"),
        )
        .unwrap();
        assert!(!other.certificate().matches_issuer_serial(&issuer, &serial));
        checked += 1;
    }
    assert_eq!(checked, 4);
}

/// The PKCS#8 DER openssl wrote for rsa2048 (`openssl pkcs8 -topk8 -nocrypt -outform DER`).
fn rsa2048_pkcs8() -> Vec<u8> {
    read("rsa2048.key.der")
}

#[test]
fn every_private_key_flavour_gives_the_same_key() {
    let want = rsa2048_pkcs8();
    let cases: &[(&str, Option<&str>)] = &[
        ("rsa2048.key.pem", None),
        ("rsa2048.rsa.pem", None),
        ("rsa2048.pbes2-aes256-sha256.p8.pem", Some(PW)),
        ("rsa2048.pbes2-aes128-sha1.p8.pem", Some(PW)),
        ("rsa2048.pbes2-aes192-sha512.p8.pem", Some(PW)),
        ("rsa2048.pbes2-3des.p8.pem", Some(PW)),
        ("rsa2048.pbes2-des.p8.pem", Some(PW)),
        ("rsa2048.pbes2-scrypt.p8.pem", Some(PW)),
        ("rsa2048.pbe-sha1-3des.p8.pem", Some(PW)),
        ("rsa2048.pbe-sha1-rc2-40.p8.pem", Some(PW)),
        ("rsa2048.pbe-sha1-rc2-128.p8.pem", Some(PW)),
        ("rsa2048.pbes1-md5-des.p8.pem", Some(PW)),
        ("rsa2048.pbes1-sha1-des.p8.pem", Some(PW)),
        ("rsa2048.pbes2-unicode.p8.pem", Some(UNICODE_PW)),
        ("rsa2048.rsa-aes256.pem", Some(PW)),
        ("rsa2048.rsa-3des.pem", Some(PW)),
        // A password given for an unencrypted key is ignored.
        ("rsa2048.key.pem", Some(PW)),
    ];
    for (file, password) in cases {
        let password = password.map(pw);
        let key = private_key_from_pem(&read(file), password.as_ref())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(*key.to_pkcs8_der().unwrap(), want, "{file}");
        // The key fits the certificate, through every constructor.
        let pair =
            CertificateWithKey::from_pem(&read("rsa2048.cert.pem"), &read(file), password.as_ref())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(pair.thumbprint(), expected("rsa2048")["thumbprint"]);
    }
    for (file, password) in [
        ("rsa2048.key.der", None),
        ("rsa2048.rsa.der", None),
        ("rsa2048.pbes2-aes256.p8.der", Some(pw(PW))),
    ] {
        let key = private_key_from_der(&read(file), password.as_ref())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(*key.to_pkcs8_der().unwrap(), want, "{file}");
    }
    for file in ["rsa2048.key.der", "rsa2048.rsa.der"] {
        let pair = CertificateWithKey::from_der(&read("rsa2048.cert.der"), &read(file)).unwrap();
        assert_eq!(pair.thumbprint(), expected("rsa2048")["thumbprint"]);
    }
    let pair = CertificateWithKey::from_pem_files(
        cert_dir("rsa2048.cert.pem"),
        cert_dir("rsa2048.pbes2-aes256-sha256.p8.pem"),
        Some(&pw(PW)),
    )
    .unwrap();
    assert_eq!(*pair.private_key().to_pkcs8_der().unwrap(), want);
}

#[test]
fn bundles_hold_certificate_and_key_in_either_order() {
    let thumbprint = expected("rsa2048")["thumbprint"].clone();
    let a = CertificateWithKey::from_pem_bundle(&read("rsa2048.bundle.pem"), None).unwrap();
    assert_eq!(a.thumbprint(), thumbprint);
    let b =
        CertificateWithKey::from_pem_bundle(&read("rsa2048.bundle-encrypted.pem"), Some(&pw(PW)))
            .unwrap();
    assert_eq!(b.thumbprint(), thumbprint);
    let c = CertificateWithKey::from_pem_bundle_file(cert_dir("rsa2048.bundle.pem"), None).unwrap();
    assert_eq!(c.thumbprint(), thumbprint);
    // A chain file (leaf then CA) with the leaf's key picks the leaf.
    let chain = Certificate::from_pem_all(&read("chain.cert.pem")).unwrap();
    assert_eq!(chain.len(), 2);
    let leaf =
        CertificateWithKey::from_pem(&read("chain.cert.pem"), &read("leaf.key.pem"), None).unwrap();
    assert_eq!(leaf.thumbprint(), expected("leaf")["thumbprint"]);
    // The CA's key picks the CA, even though it comes second.
    let ca =
        CertificateWithKey::from_pem(&read("chain.cert.pem"), &read("ca.key.pem"), None).unwrap();
    assert_eq!(ca.thumbprint(), expected("ca")["thumbprint"]);
}

#[test]
fn every_pfx_flavour_loads() {
    let thumbprint = expected("rsa2048")["thumbprint"].clone();
    let want = rsa2048_pkcs8();
    let cases: &[(&str, &str)] = &[
        ("rsa2048.modern.pfx", PW),
        ("rsa2048.3des.pfx", PW),
        ("rsa2048.legacy.pfx", PW),
        ("rsa2048.empty-password.pfx", ""),
        ("rsa2048.unencrypted.pfx", PW),
        ("rsa2048.unencrypted-nomac.pfx", ""),
        ("rsa2048.unicode-password.pfx", UNICODE_PW),
    ];
    for (file, password) in cases {
        let pair = CertificateWithKey::from_pkcs12(&read(file), &pw(password))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(pair.thumbprint(), thumbprint, "{file}");
        assert_eq!(*pair.private_key().to_pkcs8_der().unwrap(), want, "{file}");
        let from_file =
            CertificateWithKey::from_pkcs12_file(cert_dir(file), &pw(password)).unwrap();
        assert_eq!(from_file.thumbprint(), thumbprint, "{file}");
    }
    // The Mono peer's gen-cert output (AES and 3DES).
    let peer = expected("peer2048")["thumbprint"].clone();
    for file in ["peer2048.pfx", "peer2048.3des.pfx"] {
        let pair = CertificateWithKey::from_pkcs12(&read(file), &pw(PW)).unwrap();
        assert_eq!(pair.thumbprint(), peer, "{file}");
    }
    // A chain: the leaf (whose key it is), not the CA.
    let chain = CertificateWithKey::from_pkcs12(&read("chain.pfx"), &pw(PW)).unwrap();
    assert_eq!(chain.thumbprint(), expected("leaf")["thumbprint"]);
    let leaf_key = private_key_from_pem(&read("leaf.key.pem"), None).unwrap();
    assert_eq!(
        *chain.private_key().to_pkcs8_der().unwrap(),
        *leaf_key.to_pkcs8_der().unwrap()
    );
}

#[test]
fn key_vault_style_base64_pfx_with_empty_password() {
    let thumbprint = expected("rsa2048")["thumbprint"].clone();
    let text = String::from_utf8(read("rsa2048.empty-password.pfx.b64")).unwrap();
    assert!(text.contains('\n'));
    let pair = CertificateWithKey::from_pkcs12_base64(&text, &pw("")).unwrap();
    assert_eq!(pair.thumbprint(), thumbprint);
    // Any whitespace, as when pasted from a portal or a JSON value.
    let spaced = format!("  {}\r\n\t", text.replace('\n', "\r\n "));
    let pair = CertificateWithKey::from_pkcs12_base64(&spaced, &pw("")).unwrap();
    assert_eq!(pair.thumbprint(), thumbprint);
    let pair = CertificateWithKey::from_pkcs12_base64_file(
        cert_dir("rsa2048.empty-password.pfx.b64"),
        &pw(""),
    )
    .unwrap();
    assert_eq!(pair.thumbprint(), thumbprint);
    let e = CertificateWithKey::from_pkcs12_base64("not base64 !!!", &pw("")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Certificate);
}

/// Keys from different containers of the same key agree.
#[test]
fn shared_vector_keys_agree_across_containers() {
    fn pkcs8(key: &RsaPrivateKey) -> Vec<u8> {
        key.to_pkcs8_der().unwrap().to_vec()
    }
    // ASP.NET: the PFX (3DES key bag, RC2-40 certificate bag) and the PEM pair derived from it.
    let dir = "vectors/aspnet/dotnet-aspnetcore-trimming/TestCert-user-example-com";
    let pfx =
        CertificateWithKey::from_pkcs12(&shared(&format!("{dir}.pfx")), &pw("password")).unwrap();
    let pem = CertificateWithKey::from_pem(
        &shared(&format!("{dir}.cert.pem")),
        &shared(&format!("{dir}.key.pem")),
        None,
    )
    .unwrap();
    assert_eq!(pem.thumbprint(), "3BFD1BAE91D198645590F1DAC2FE7C2250292A65");
    assert_eq!(pkcs8(pfx.private_key()), pkcs8(pem.private_key()));

    // Merlin: PFX (PBES2/AES-256), PKCS#8 with PBES1 pbeWithMD5AndDES-CBC (PEM and DER), PKCS#1
    // (PEM and DER).
    let m = "vectors/xmlenc/merlin-xmlenc-five/rsapriv";
    let p12 = CertificateWithKey::from_pkcs12(&shared(&format!("{m}.p12")), &pw("secret")).unwrap();
    let want = pkcs8(p12.private_key());
    for key in [
        private_key_from_pem(&shared(&format!("{m}.p8-pem")), Some(&pw("secret"))).unwrap(),
        private_key_from_der(&shared(&format!("{m}.p8-der")), Some(&pw("secret"))).unwrap(),
        private_key_from_pem(&shared(&format!("{m}.pem")), None).unwrap(),
        private_key_from_der(&shared(&format!("{m}.der")), None).unwrap(),
    ] {
        assert_eq!(pkcs8(&key), want);
    }
    let with_pbes1 = CertificateWithKey::new(
        p12.certificate().clone(),
        private_key_from_pem(&shared(&format!("{m}.p8-pem")), Some(&pw("secret"))).unwrap(),
    )
    .unwrap();
    assert_eq!(with_pbes1.thumbprint(), p12.thumbprint());

    // Phaos: PFX and unencrypted PKCS#8 DER.
    let p = "vectors/xmlenc/01-phaos-xmlenc-3/rsa-priv-key";
    let p12 = CertificateWithKey::from_pkcs12(&shared(&format!("{p}.p12")), &pw("secret")).unwrap();
    let der = private_key_from_der(&shared(&format!("{p}.der")), None).unwrap();
    assert_eq!(pkcs8(&der), pkcs8(p12.private_key()));

    // XML Encryption 1.1: PBES2 PFX, the original W3C 3DES PFX (whose key bag has no
    // localKeyId) and unencrypted PKCS#8 DER.
    for bits in [2048, 3072, 4096] {
        let x = format!("vectors/xmlenc/xmlenc11-interop-2012/RSA-{bits}_SHA256WithRSA");
        let modern =
            CertificateWithKey::from_pkcs12(&shared(&format!("{x}.p12")), &pw("passwd")).unwrap();
        let orig =
            CertificateWithKey::from_pkcs12(&shared(&format!("{x}-orig.p12")), &pw("passwd"))
                .unwrap();
        let der = private_key_from_der(&shared(&format!("{x}.der")), None).unwrap();
        assert_eq!(modern.thumbprint(), orig.thumbprint());
        assert_eq!(pkcs8(modern.private_key()), pkcs8(orig.private_key()));
        assert_eq!(pkcs8(&der), pkcs8(modern.private_key()));
        assert_eq!(modern.certificate().key_size_bits().unwrap(), bits);
        assert_eq!(modern.private_key().size_bits(), bits);
    }
}

/// Asserts an error of kind Certificate whose message contains `needle` and never a password.
fn assert_cert_error(result: dpwrap::Result<impl std::fmt::Debug>, needle: &str) -> String {
    let e = result.expect_err("expected an error");
    assert_eq!(e.kind(), ErrorKind::Certificate, "{e}");
    let text = format!("{e} {e:?}");
    assert!(text.contains(needle), "{needle:?} not in {text}");
    for secret in [PW, UNICODE_PW, "wrong-password-123"] {
        assert!(!text.contains(secret), "{secret} leaked in {text}");
    }
    text
}

#[test]
fn wrong_passwords_are_reported_as_such() {
    let wrong = pw("wrong-password-123");
    for file in [
        "rsa2048.modern.pfx",
        "rsa2048.3des.pfx",
        "rsa2048.legacy.pfx",
        "rsa2048.empty-password.pfx",
        "rsa2048.unencrypted.pfx",
        "rsa2048.unicode-password.pfx",
    ] {
        assert_cert_error(
            CertificateWithKey::from_pkcs12(&read(file), &wrong),
            "wrong password, or",
        );
    }
    // The empty password is a different password from "no password given".
    assert_cert_error(
        CertificateWithKey::from_pkcs12(&read("rsa2048.modern.pfx"), &pw("")),
        "wrong password, or",
    );
    for file in [
        "rsa2048.pbes2-aes256-sha256.p8.pem",
        "rsa2048.pbes2-aes128-sha1.p8.pem",
        "rsa2048.pbes2-3des.p8.pem",
        "rsa2048.pbes2-des.p8.pem",
        "rsa2048.pbes2-scrypt.p8.pem",
        "rsa2048.pbe-sha1-3des.p8.pem",
        "rsa2048.pbe-sha1-rc2-40.p8.pem",
        "rsa2048.pbes1-md5-des.p8.pem",
        "rsa2048.pbes1-sha1-des.p8.pem",
        "rsa2048.rsa-aes256.pem",
        "rsa2048.rsa-3des.pem",
        "rsa2048.bundle-encrypted.pem",
    ] {
        assert_cert_error(
            private_key_from_pem(&read(file), Some(&wrong)),
            "wrong password, or",
        );
        assert_cert_error(
            private_key_from_pem(&read(file), None),
            "encrypted; give its password",
        );
    }
    // The UTF-8 password must be exactly that (not its Latin-1 look-alike).
    assert_cert_error(
        private_key_from_pem(&read("rsa2048.pbes2-unicode.p8.pem"), Some(&pw("passwort"))),
        "wrong password, or",
    );
    assert_cert_error(
        private_key_from_der(&read("rsa2048.pbes2-aes256.p8.der"), None),
        "encrypted; give its password",
    );
    // from_der takes no password: an encrypted key is refused with the way out.
    assert_cert_error(
        CertificateWithKey::from_der(
            &read("rsa2048.cert.der"),
            &read("rsa2048.pbes2-aes256.p8.der"),
        ),
        "give its password",
    );
}

#[test]
fn missing_keys_non_rsa_keys_and_mismatches_are_clear_errors() {
    assert_cert_error(
        CertificateWithKey::from_pkcs12(&read("rsa2048.no-key.pfx"), &pw(PW)),
        "holds no private key",
    );
    // EC, in every container.
    assert_cert_error(
        CertificateWithKey::from_pkcs12(&read("ec.pfx"), &pw(PW)),
        "is EC (1.2.840.10045.2.1), not RSA",
    );
    assert_cert_error(
        CertificateWithKey::from_pem(&read("ec.cert.pem"), &read("ec.key.pem"), None),
        "not RSA",
    );
    assert_cert_error(private_key_from_pem(&read("ec.key.pem"), None), "is EC");
    assert_cert_error(private_key_from_pem(&read("ec.sec1.pem"), None), "is EC");
    let ec = Certificate::from_pem(&read("ec.cert.pem")).unwrap();
    assert_eq!(ec.thumbprint(), expected("ec")["thumbprint"]);
    assert_cert_error(ec.public_key(), "not RSA");
    assert_cert_error(ec.key_size_bits(), "not RSA");
    // An RSA key with an EC certificate.
    assert_cert_error(
        CertificateWithKey::from_pem(&read("ec.cert.pem"), &read("rsa2048.key.pem"), None),
        "not RSA",
    );
    // Certificate and key of different pairs.
    for (cert, key) in [
        ("rsa2048.cert.pem", "other.key.pem"),
        ("leaf.cert.pem", "ca.key.pem"),
    ] {
        assert_cert_error(
            CertificateWithKey::from_pem(&read(cert), &read(key), None),
            "does not belong to the certificate",
        );
    }
    let other = private_key_from_pem(&read("other.key.pem"), None).unwrap();
    assert_eq!(
        hex(&other.public_key().modulus()),
        expected("other")["modulus"]
    );
    assert_cert_error(
        CertificateWithKey::new(
            Certificate::from_pem(&read("rsa2048.cert.pem")).unwrap(),
            other,
        ),
        "does not belong",
    );
    // Nothing to find.
    assert_cert_error(
        CertificateWithKey::from_pem(&read("rsa2048.cert.pem"), &read("rsa2048.cert.pem"), None),
        "no private key found",
    );
    assert_cert_error(
        CertificateWithKey::from_pem(&read("rsa2048.key.pem"), &read("rsa2048.key.pem"), None),
        "were the certificate and key swapped?",
    );
    assert_cert_error(
        CertificateWithKey::from_pem_bundle(&read("rsa2048.key.pem"), None),
        "no CERTIFICATE block",
    );
    assert_cert_error(
        CertificateWithKey::from_pem_bundle(&read("rsa2048.cert.pem"), None),
        "no private key found",
    );
    // Two keys: which one?
    let mut two = read("rsa2048.bundle.pem");
    two.extend_from_slice(&read("other.key.pem"));
    assert_cert_error(
        CertificateWithKey::from_pem_bundle(&two, None),
        "more than one private key",
    );
}

#[test]
fn malformed_input_is_refused_without_panicking() {
    let pfx = read("rsa2048.modern.pfx");
    assert_cert_error(
        CertificateWithKey::from_pkcs12(&read("rsa2048.truncated.pfx"), &pw(PW)),
        "not a valid PFX",
    );
    for junk in [
        &b""[..],
        &b"\x30\x03\x02\x01\x03"[..],
        &b"-----BEGIN CERTIFICATE-----"[..],
        &[0xffu8; 64][..],
    ] {
        assert_cert_error(CertificateWithKey::from_pkcs12(junk, &pw(PW)), "PFX");
        assert!(Certificate::from_der(junk).is_err());
        assert!(Certificate::from_pem(junk).is_err());
        assert!(private_key_from_der(junk, None).is_err());
        assert!(private_key_from_pem(junk, Some(&pw(PW))).is_err());
    }
    // Every truncation and some bit flips of a PFX, a certificate and an encrypted key.
    let cert = read("rsa2048.cert.der");
    let key = read("rsa2048.pbes2-aes256.p8.der");
    for len in (0..pfx.len()).step_by(97) {
        assert!(CertificateWithKey::from_pkcs12(&pfx[..len], &pw(PW)).is_err());
    }
    for len in (0..cert.len()).step_by(31) {
        assert!(Certificate::from_der(&cert[..len]).is_err());
    }
    for len in (0..key.len()).step_by(37) {
        assert!(private_key_from_der(&key[..len], Some(&pw(PW))).is_err());
    }
    for i in (0..pfx.len()).step_by(53) {
        let mut bad = pfx.clone();
        bad[i] ^= 0x5a;
        let _ = CertificateWithKey::from_pkcs12(&bad, &pw(PW));
    }
    for i in (0..key.len()).step_by(29) {
        let mut bad = key.clone();
        bad[i] ^= 0x5a;
        let _ = private_key_from_der(&bad, Some(&pw(PW)));
    }
    // Bad base64 inside a PEM block; an unterminated block.
    assert_cert_error(
        Certificate::from_pem(b"-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n"),
        "malformed",
    );
    assert_cert_error(
        Certificate::from_pem(b"-----BEGIN CERTIFICATE-----\nMIIB\n"),
        "no END line",
    );
    assert_cert_error(
        Certificate::from_pem(&read("rsa2048.key.pem")),
        "no CERTIFICATE",
    );
    // Trailing bytes after the certificate's DER.
    let mut trailing = cert.clone();
    trailing.push(0);
    assert_cert_error(Certificate::from_der(&trailing), "not valid X.509");
}

/// Files that ask for more key derivation than the bound (made by OpenSSL with `-iter 2000000`;
/// fixtures/certs/make.sh) are refused before any derivation runs: with the right password they
/// would load, so only the bound gives these errors.
#[test]
fn costly_key_derivation_is_refused_before_it_runs() {
    assert_cert_error(
        private_key_from_pem(&read("rsa2048.pbes2-2m-iterations.p8.pem"), Some(&pw(PW))),
        "PBKDF2 iterations over 1000000",
    );
    assert_cert_error(
        CertificateWithKey::from_pkcs12(&read("rsa2048.2m-iterations.pfx"), &pw(PW)),
        "more key-derivation work than dpwrap allows",
    );
}

#[test]
fn oversized_inputs_hit_the_limit_before_reading() {
    let dir = std::env::temp_dir().join(format!("dpwrap-cert-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.pfx");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(dpwrap::certificate::MAX_FILE as u64 + 1).unwrap();
    drop(f);
    let e = CertificateWithKey::from_pkcs12_file(&big, &pw(PW)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");
    let e = Certificate::from_file(&big).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");
    let e = CertificateWithKey::from_pem_files(&big, &big, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");
    let e = CertificateWithKey::from_pkcs12(&vec![0u8; dpwrap::certificate::MAX_FILE + 1], &pw(PW))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");
    let e = CertificateWithKey::from_pkcs12_file(dir.join("missing.pfx"), &pw(PW)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Nothing that prints a key-holding type shows the key or the password.
#[test]
fn debug_and_errors_never_show_keys_or_passwords() {
    let pair = CertificateWithKey::from_pkcs12(&read("rsa2048.modern.pfx"), &pw(PW)).unwrap();
    let der = pair.private_key().to_pkcs8_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&*der);
    let hex_upper = hex(&der);
    let hex_lower = hex_upper.to_lowercase();
    let pem = pair.to_pem_private_key().unwrap();
    let printed = [
        format!("{pair:?}"),
        format!("{:?}", pair.certificate()),
        format!("{:?}", pair.private_key()),
        format!("{:?}", pw(PW)),
        format!(
            "{:?}",
            CertificateWithKey::from_pkcs12(&read("rsa2048.modern.pfx"), &pw("nope"))
        ),
        format!(
            "{:?}",
            private_key_from_pem(
                &read("rsa2048.pbes2-aes256-sha256.p8.pem"),
                Some(&pw("nope"))
            )
        ),
    ];
    for text in &printed {
        // Skip the fixed PKCS#8 header shared by every RSA-2048 key; look for any 24-character
        // window of the rest.
        for start in (48..b64.len() - 24).step_by(24) {
            assert!(!text.contains(&b64[start..start + 24]), "{text}");
        }
        for start in (72..hex_upper.len() - 32).step_by(32) {
            assert!(!text.contains(&hex_upper[start..start + 32]), "{text}");
            assert!(!text.contains(&hex_lower[start..start + 32]), "{text}");
        }
        assert!(!text.contains(PW), "{text}");
        assert!(!text.contains("nope"), "{text}");
    }
    assert!(printed[0].contains(&pair.thumbprint()));
    assert!(printed[0].contains("dpwrap test rsa2048"));
    // The exported PEM does hold the key (a sanity check of the search above).
    assert!(pem.replace('\n', "").contains(&b64[48..72]));
}

#[test]
fn generated_certificates_round_trip_through_pfx_and_pem() {
    let pair = CertificateWithKey::generate_self_signed("CN=dpwrap round trip,O=Example", 2048, 30)
        .unwrap();
    let cert = pair.certificate();
    assert_eq!(cert.subject(), "CN=dpwrap round trip,O=Example");
    assert_eq!(cert.issuer(), cert.subject());
    assert_eq!(cert.key_size_bits().unwrap(), 2048);
    let validity = cert.not_after() - cert.not_before();
    assert_eq!(validity, time::Duration::days(30));
    assert!(cert.subject_key_identifier().is_some());
    let password = pw("round-trip-pw");
    let pfx = pair.to_pkcs12(&password).unwrap();
    let back = CertificateWithKey::from_pkcs12(&pfx, &password).unwrap();
    assert_eq!(back.thumbprint(), pair.thumbprint());
    assert_eq!(
        *back.private_key().to_pkcs8_der().unwrap(),
        *pair.private_key().to_pkcs8_der().unwrap()
    );
    assert_cert_error(
        CertificateWithKey::from_pkcs12(&pfx, &pw("wrong-password-123")),
        "wrong password, or",
    );
    let pem_back = CertificateWithKey::from_pem(
        pair.to_pem_certificate().as_bytes(),
        pair.to_pem_private_key().unwrap().as_bytes(),
        None,
    )
    .unwrap();
    assert_eq!(pem_back.thumbprint(), pair.thumbprint());
    let encrypted = pair.to_pem_private_key_encrypted(&password).unwrap();
    let key = private_key_from_pem(encrypted.as_bytes(), Some(&password)).unwrap();
    assert_eq!(
        *key.to_pkcs8_der().unwrap(),
        *pair.private_key().to_pkcs8_der().unwrap()
    );
    // A bare name becomes the common name.
    let bare = CertificateWithKey::generate_self_signed("My App, Inc.", 2048, 1).unwrap();
    assert!(
        bare.certificate()
            .matches_subject_name("CN=\"My App, Inc.\"")
    );
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs")
}

/// openssl reads what dpwrap writes: the certificate (same SHA-1 fingerprint, the extensions of a
/// key-encipherment leaf, a valid self-signature), the PKCS#8 keys and the AES-256 PFX.
#[test]
fn openssl_reads_generated_certificates_keys_and_pfx() {
    if !common::interop::have("openssl") {
        common::interop::skip("openssl is not installed (apt-get install openssl)");
        return;
    }
    let pair =
        CertificateWithKey::generate_self_signed("CN=dpwrap openssl check", 3072, 365).unwrap();
    let dir = std::env::temp_dir().join(format!("dpwrap-cert-openssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    std::fs::write(path("c.pem"), pair.to_pem_certificate()).unwrap();
    std::fs::write(path("k.pem"), pair.to_pem_private_key().unwrap().as_bytes()).unwrap();
    let password = pw("openssl-pw");
    std::fs::write(
        path("ke.pem"),
        pair.to_pem_private_key_encrypted(&password)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    std::fs::write(path("p.pfx"), pair.to_pkcs12(&password).unwrap()).unwrap();

    let out = openssl(&[
        "x509",
        "-in",
        &path("c.pem"),
        "-noout",
        "-fingerprint",
        "-sha1",
        "-text",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let fingerprint = text
        .lines()
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .replace(':', "");
    assert_eq!(fingerprint, pair.thumbprint());
    assert!(
        text.contains("Key Encipherment, Data Encipherment"),
        "{text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    assert!(text.contains("Public-Key: (3072 bit)"), "{text}");
    // The self-signature verifies (the certificate as its own trust anchor, signature checked).
    let out = openssl(&[
        "verify",
        "-check_ss_sig",
        "-partial_chain",
        "-CAfile",
        &path("c.pem"),
        &path("c.pem"),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let out = openssl(&["pkey", "-in", &path("k.pem"), "-noout", "-text"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = openssl(&[
        "pkey",
        "-in",
        &path("ke.pem"),
        "-passin",
        "pass:openssl-pw",
        "-noout",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = openssl(&[
        "pkey",
        "-in",
        &path("ke.pem"),
        "-passin",
        "pass:wrong",
        "-noout",
    ]);
    assert!(!out.status.success());
    let out = openssl(&["asn1parse", "-in", &path("ke.pem")]);
    let asn1 = String::from_utf8(out.stdout).unwrap();
    assert!(
        asn1.contains("PBES2") && asn1.contains("aes-256-cbc") && asn1.contains("hmacWithSHA256"),
        "{asn1}"
    );

    let out = openssl(&[
        "pkcs12",
        "-in",
        &path("p.pfx"),
        "-passin",
        "pass:openssl-pw",
        "-info",
        "-nodes",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(info.contains("MAC: sha256"), "{info}");
    assert!(info.contains("PBES2, PBKDF2, AES-256-CBC"), "{info}");
    assert!(info.contains("PRF hmacWithSHA256"), "{info}");
    assert!(info.contains("-----BEGIN PRIVATE KEY-----"), "{info}");
    let out = openssl(&[
        "pkcs12",
        "-in",
        &path("p.pfx"),
        "-passin",
        "pass:wrong",
        "-info",
        "-noout",
    ]);
    assert!(!out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// .NET's EncryptedXml (the Mono peer) protects and unprotects a master key with a certificate and
/// key that dpwrap generated and exported as PEM, and names our certificate in the key file.
#[test]
fn mono_peer_uses_generated_certificate() {
    let Some(peer) = common::interop::peer() else {
        return;
    };
    let pair = CertificateWithKey::generate_self_signed("CN=dpwrap peer check", 2048, 30).unwrap();
    let dir = std::env::temp_dir().join(format!("dpwrap-cert-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    std::fs::write(path("c.pem"), pair.to_pem_certificate()).unwrap();
    std::fs::write(path("k.pem"), pair.to_pem_private_key().unwrap().as_bytes()).unwrap();
    let key_file = path("key-11111111-2222-3333-4444-555555555555.xml");
    let written = peer.ok([
        "encrypt-key",
        "--out",
        &key_file,
        "--format",
        "cert",
        "--cert",
        &path("c.pem"),
        "--key",
        &path("k.pem"),
    ]);
    let read_back = peer.ok([
        "decrypt-key",
        "--in",
        &key_file,
        "--cert",
        &path("c.pem"),
        "--key",
        &path("k.pem"),
    ]);
    assert_eq!(written.trim(), read_back.trim());
    assert!(!written.trim().is_empty());
    let xml = std::fs::read_to_string(&key_file).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let b64 = doc
        .descendants()
        .find(|n| n.tag_name().name() == "X509Certificate")
        .and_then(|n| n.text())
        .unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap();
    assert_eq!(
        Certificate::from_der(&der).unwrap().thumbprint(),
        pair.thumbprint()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
