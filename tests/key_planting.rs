//! Key planting: a writer holding only the public certificate can plant a key every .NET node
//! accepts. Authenticated keys carry a signature by the protecting key; readers that require it
//! refuse planted keys, and by default accept them but can tell.

mod common;

use std::sync::Arc;

use dpwrap::authentication::{
    AuthenticationPolicy, AuthenticationStatus, CertificateSigner, KeyProof, TrustedSigners,
    authenticate,
};
use dpwrap::new_key::NewKey;
use dpwrap::xml::{self, Element, WriteOptions};
use dpwrap::{
    CertificateWithKey, CertificateXmlDecryptor, CertificateXmlEncryptor, Decryptors, ErrorKind,
    Key, MasterKey,
};

struct Farm {
    owner: Arc<CertificateWithKey>,
    encryptor: CertificateXmlEncryptor,
    trusted: TrustedSigners,
    decryptors: Decryptors,
}

fn farm() -> Farm {
    let owner = Arc::new(CertificateWithKey::generate_self_signed("CN=farm", 2048, 30).unwrap());
    let encryptor = CertificateXmlEncryptor::new(owner.certificate().clone()).unwrap();
    let trusted = TrustedSigners::new()
        .with_certificate(owner.certificate())
        .unwrap();
    let decryptors =
        Decryptors::new().with(Arc::new(CertificateXmlDecryptor::new([Arc::clone(&owner)])));
    Farm {
        owner,
        encryptor,
        trusted,
        decryptors,
    }
}

fn new_key(encryptor: &CertificateXmlEncryptor) -> (Element, MasterKey) {
    let spec = NewKey::new(None, time::Duration::days(90)).unwrap();
    let master = MasterKey::generate(64).unwrap();
    (
        common::block_on(spec.protect(&master, encryptor)).unwrap(),
        master,
    )
}

/// Reads a key as a reader with `policy` would: check the proof first, then decrypt.
fn read(
    farm: &Farm,
    element: &Element,
    policy: AuthenticationPolicy,
) -> dpwrap::Result<(AuthenticationStatus, MasterKey)> {
    // Through the bytes, as from a store.
    let key =
        Key::from_element(xml::parse(&xml::to_bytes(element, WriteOptions::KEY_FILE)).unwrap())
            .unwrap();
    let status = farm.trusted.verify(&key);
    status.check(policy, &key.id())?;
    let master = common::block_on(key.master_key(&farm.decryptors))?;
    Ok((status, master))
}

#[test]
fn an_authenticated_key_verifies_and_decrypts_under_the_strict_policy() {
    let farm = farm();
    let (mut element, master) = new_key(&farm.encryptor);
    common::block_on(authenticate(
        &mut element,
        &CertificateSigner(Arc::clone(&farm.owner)),
    ))
    .unwrap();
    let proof = KeyProof::of(&element).unwrap().unwrap();
    assert_eq!(
        proof.signer,
        format!("thumbprint:{}", farm.owner.thumbprint())
    );
    let (status, read_master) = read(&farm, &element, AuthenticationPolicy::Require).unwrap();
    assert!(status.is_verified(), "{status}");
    assert!(read_master.ct_eq(&master));
}

#[test]
fn a_key_planted_with_the_public_certificate_is_refused_when_required_and_flagged_by_default() {
    let farm = farm();
    // The planter has the public certificate (it is in every key file) and write access.
    let planter_encryptor = CertificateXmlEncryptor::new(farm.owner.certificate().clone()).unwrap();
    let (planted, planted_master) = new_key(&planter_encryptor);

    let err = read(&farm, &planted, AuthenticationPolicy::Require).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("planted"), "{err}");

    // The default (.NET's behaviour): accepted, but reported as unsigned so tools can warn.
    let (status, master) = read(&farm, &planted, AuthenticationPolicy::Accept).unwrap();
    assert_eq!(status, AuthenticationStatus::Unsigned);
    assert!(master.ct_eq(&planted_master));

    // Signing it with the planter's own key does not help: the signer is not trusted.
    let planter_key =
        Arc::new(CertificateWithKey::generate_self_signed("CN=farm", 2048, 30).unwrap());
    let mut signed_by_planter = planted.clone();
    common::block_on(authenticate(
        &mut signed_by_planter,
        &CertificateSigner(planter_key),
    ))
    .unwrap();
    let err = read(&farm, &signed_by_planter, AuthenticationPolicy::Require).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("not a trusted signer"), "{err}");

    // Copying a genuine proof onto the planted key does not help either: it is refused even by
    // the default policy, because a proof that does not verify means tampering.
    let (mut genuine, _) = new_key(&farm.encryptor);
    common::block_on(authenticate(
        &mut genuine,
        &CertificateSigner(Arc::clone(&farm.owner)),
    ))
    .unwrap();
    let proof = genuine.children().last().unwrap().clone();
    let mut forged = planted.clone();
    forged.push(proof);
    for policy in [AuthenticationPolicy::Accept, AuthenticationPolicy::Require] {
        let err = read(&farm, &forged, policy).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    }
}

#[test]
fn changing_an_authenticated_key_breaks_its_proof_but_re_layout_does_not() {
    let farm = farm();
    let (mut element, _) = new_key(&farm.encryptor);
    common::block_on(authenticate(
        &mut element,
        &CertificateSigner(Arc::clone(&farm.owner)),
    ))
    .unwrap();
    // Unindented (as in a Blob document or a Redis list item): still verified.
    let compact = xml::to_bytes(&element, WriteOptions::COMPACT);
    let key = Key::from_element(xml::parse(&compact).unwrap()).unwrap();
    assert!(farm.trusted.verify(&key).is_verified());
    // Move the expiration date: invalid.
    let text = String::from_utf8(xml::to_bytes(&element, WriteOptions::KEY_FILE)).unwrap();
    let start = text.find("<expirationDate>").unwrap() + "<expirationDate>".len();
    let changed = format!("{}2199{}", &text[..start], &text[start + 4..]);
    let key = Key::from_element(xml::parse(changed.as_bytes()).unwrap()).unwrap();
    assert_eq!(farm.trusted.verify(&key), AuthenticationStatus::Invalid);
}

/// Authenticated keys stay readable by .NET: the peer decrypts one.
#[test]
fn dotnet_reads_authenticated_keys() {
    let Some(peer) = common::interop::peer() else {
        return;
    };
    let farm = farm();
    let (mut element, master) = new_key(&farm.encryptor);
    common::block_on(authenticate(
        &mut element,
        &CertificateSigner(Arc::clone(&farm.owner)),
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key.xml");
    std::fs::write(&file, xml::to_bytes(&element, WriteOptions::KEY_FILE)).unwrap();
    std::fs::write(dir.path().join("c.pem"), farm.owner.certificate().to_pem()).unwrap();
    std::fs::write(
        dir.path().join("k.pem"),
        farm.owner.to_pem_private_key().unwrap().as_bytes(),
    )
    .unwrap();
    let out = peer.ok([
        "decrypt-key",
        "--in",
        file.to_str().unwrap(),
        "--cert",
        dir.path().join("c.pem").to_str().unwrap(),
        "--key",
        dir.path().join("k.pem").to_str().unwrap(),
    ]);
    assert_eq!(out.trim(), master.to_base64().as_str());
}
