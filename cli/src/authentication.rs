//! Authenticated keys (key planting, FORMATS.md §5): writers sign the keys they write
//! (`--sign-with`), readers check the proofs before anything is decrypted (`--trust-cert`,
//! `--require-authenticated`).
//!
//! The default policy is .NET's: unauthenticated keys are accepted. A key whose proof does not
//! verify is refused under every policy: that is an altered key, not an old one. Warnings about
//! keys that are accepted without being verified are printed only where authentication is in use
//! (trusted certificates were named with `--trust-cert`, or the ring holds at least one signed
//! key), so that reading a plain .NET ring, where no key is signed, stays quiet.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use dpwrap::authentication::{
    AuthenticationPolicy, AuthenticationStatus, CertificateSigner, KeyProof, KeySigner,
    NS_AUTHENTICATION, TrustedSigners, authenticate,
};
use dpwrap::xml::{Element, Node};
use dpwrap::{Certificate, CertificateWithKey, Key, RsaPublicKey};

use crate::vault::Vaults;

use crate::fail::{Fail, Outcome};

/// The signing options of the commands that write keys.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Authentication (sign the keys written)")]
pub struct SignArgs {
    /// Sign every key written with this certificate's private key (PEM; the file may hold the
    /// key too), so that readers with --require-authenticated accept it. Independent of the
    /// target protection.
    #[arg(
        long = "sign-with",
        value_name = "C.pem",
        conflicts_with_all = ["sign_with_pfx", "sign_with_kid"]
    )]
    pub sign_with: Option<PathBuf>,
    /// The private key (PEM) of the --sign-with before it.
    #[arg(long = "sign-key", value_name = "K.pem", requires = "sign_with")]
    pub sign_key: Option<PathBuf>,
    /// Sign with the certificate and private key of a PFX file (its password from
    /// --password-env/--password-file after it).
    #[arg(
        long = "sign-with-pfx",
        value_name = "F.pfx",
        conflicts_with = "sign_with_kid"
    )]
    pub sign_with_pfx: Option<PathBuf>,
    /// Sign every key written with this Key Vault key (the vault signs: needs the `get` and
    /// `sign` permissions, role Key Vault Crypto User). Without a version, its latest version
    /// signs, and the proofs name that version.
    #[arg(long = "sign-with-kid", value_name = "KID")]
    pub sign_with_kid: Option<String>,
}

impl SignArgs {
    /// Whether a signing certificate was named (loaded with the key material).
    pub fn given(&self) -> bool {
        self.sign_with.is_some() || self.sign_with_pfx.is_some()
    }
}

/// The checking options of the commands that read keys.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Authentication (check the keys read)")]
pub struct TrustArgs {
    /// Trust keys signed by this certificate (PEM or DER; the public certificate is enough).
    /// Repeatable. `decrypt` also trusts the certificates of its key material.
    #[arg(long = "trust-cert", value_name = "C.pem")]
    pub trust_cert: Vec<PathBuf>,
    /// Trust keys signed with this Key Vault key (its public half is read with `get`; without a
    /// version, the latest version is trusted). Repeatable.
    #[arg(long = "trust-kid", value_name = "KID")]
    pub trust_kid: Vec<String>,
    /// Refuse every key without a valid proof from a trusted signer (a refused key is never
    /// decrypted). Default: accept them, as .NET does, with a warning where keys are signed.
    #[arg(long = "require-authenticated")]
    pub require_authenticated: bool,
}

/// Signs the keys a command writes, and checks each signature before the key is written.
pub struct Signer {
    signer: Arc<dyn KeySigner>,
    trusted: TrustedSigners,
    /// What signs, for messages (`certificate HEX`, `Key Vault key KID`).
    name: String,
}

impl Signer {
    /// A signer with `certificate`'s private key.
    pub fn new(certificate: Arc<CertificateWithKey>) -> Outcome<Signer> {
        let trusted = TrustedSigners::new().with_certificate(certificate.certificate())?;
        Ok(Signer {
            name: format!("certificate {}", certificate.thumbprint()),
            signer: Arc::new(CertificateSigner(certificate)),
            trusted,
        })
    }

    /// A signer with the Key Vault key `kid` (versioned) whose public half is `public`.
    pub fn key_vault(signer: Arc<dyn KeySigner>, kid: &str, public: RsaPublicKey) -> Signer {
        Signer {
            signer,
            trusted: TrustedSigners::new().with_key(kid, public),
            name: format!("Key Vault key {kid}"),
        }
    }

    /// Adds (or replaces) the proof of `key_element`, then checks that it verifies.
    pub async fn sign(&self, key_element: &mut Element) -> dpwrap::Result<()> {
        authenticate(key_element, self.signer.as_ref()).await?;
        let key = Key::from_element(key_element.clone())?;
        match self.trusted.verify(&key) {
            AuthenticationStatus::Verified(_) => Ok(()),
            other => Err(dpwrap::Error::new(
                dpwrap::ErrorKind::Unauthenticated,
                format!(
                    "the proof just written for key {} does not verify with {} ({other}); nothing was written",
                    key.id(),
                    self.name
                ),
            )),
        }
    }

    /// Whether `key` already carries a valid proof by this signer.
    pub fn signed(&self, key: &Key) -> bool {
        self.trusted.verify(key).is_verified()
    }

    /// Refuses a key whose proof by this signer does not verify (or is malformed): it was altered
    /// after it was signed, and re-protecting it would sign the alteration.
    pub fn refuse_altered(&self, key: &Key) -> dpwrap::Result<()> {
        match self.trusted.verify(key) {
            AuthenticationStatus::Invalid => Err(dpwrap::Error::new(
                dpwrap::ErrorKind::Unauthenticated,
                format!(
                    "the proof of key {} does not verify with {}: the key was altered after it was signed; refusing to re-protect and re-sign it",
                    key.id(),
                    self.name
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// Removes the proof of a key element (before it is re-protected: the proof covers the
/// ciphertext, so it would no longer verify). Whether there was one.
pub fn strip_proof(key_element: &mut Element) -> bool {
    let before = key_element.children().len();
    key_element.children_mut().retain(
        |n| !matches!(n, Node::Element(e) if e.is(Some(NS_AUTHENTICATION), "authentication")),
    );
    key_element.children().len() != before
}

/// Whether `key` carries a proof (valid or not).
pub fn carries_proof(key: &Key) -> bool {
    !matches!(KeyProof::of(key.element()), Ok(None))
}

/// What a reader trusts and requires.
pub struct Trust {
    signers: TrustedSigners,
    /// Whether `--trust-cert` or `--trust-kid` was given (then every key not verified is warned
    /// about).
    explicit: bool,
    policy: AuthenticationPolicy,
    warned: HashSet<uuid::Uuid>,
}

impl Trust {
    /// The signers of `args` (Key Vault keys read through `vaults`) and the `also` certificates
    /// (key material), and the policy.
    pub async fn new(
        args: &TrustArgs,
        also: &[Arc<CertificateWithKey>],
        vaults: &mut Vaults,
    ) -> Outcome<Trust> {
        let mut signers = TrustedSigners::new();
        for path in &args.trust_cert {
            let certificate =
                Certificate::from_file(path).map_err(|e| Fail::from(e).context("--trust-cert"))?;
            signers = signers.with_certificate(&certificate)?;
        }
        for kid in &args.trust_kid {
            let (versioned, public) = vaults.trusted_key(kid).await?;
            signers = signers.with_key(&versioned, public);
        }
        for c in also {
            signers = signers.with_certificate(c.certificate())?;
        }
        let policy = if args.require_authenticated {
            AuthenticationPolicy::Require
        } else {
            AuthenticationPolicy::Accept
        };
        if policy == AuthenticationPolicy::Require && signers.is_empty() {
            return Err(Fail::usage(
                "--require-authenticated needs the signers that are trusted: give --trust-cert C.pem (the public certificate is enough) or --trust-kid KID (a Key Vault key)",
            ));
        }
        Ok(Trust {
            signers,
            explicit: !args.trust_cert.is_empty() || !args.trust_kid.is_empty(),
            policy,
            warned: HashSet::new(),
        })
    }

    /// Whether any signer is trusted (else proofs can be seen but not verified).
    pub fn verifies(&self) -> bool {
        !self.signers.is_empty()
    }

    /// The proof's status for `key`.
    pub fn status(&self, key: &Key) -> AuthenticationStatus {
        self.signers.verify(key)
    }

    /// Applies the policy: `Err` (kind `Unauthenticated`) when the key must not be used.
    pub fn check(&self, status: &AuthenticationStatus, key: &Key) -> dpwrap::Result<()> {
        status.check(self.policy, &key.id())
    }

    /// The policy as a check the ring's workers run on each key before decrypting it, so that a
    /// refused key never reaches a private key or the vault.
    pub fn gate(&self) -> dpwrap::ring::KeyGate {
        let signers = self.signers.clone();
        let policy = self.policy;
        dpwrap::ring::KeyGate(Arc::new(move |key: &Key| {
            signers.verify(key).check(policy, &key.id())
        }))
    }

    /// Warns (once per key id) about a key accepted without being verified, where authentication
    /// is in use: trusted certificates were named, or the key's ring holds signed keys.
    pub fn warn(
        &mut self,
        status: &AuthenticationStatus,
        id: uuid::Uuid,
        ring_signed: bool,
        file: &str,
    ) {
        if !(self.explicit || ring_signed) || !self.warned.insert(id) {
            return;
        }
        match status {
            AuthenticationStatus::Unsigned => eprintln!(
                "dpwrap: warning: key {id} is not authenticated; anyone who can write to this store could have planted it ({file})"
            ),
            AuthenticationStatus::UntrustedSigner(s) => eprintln!(
                "dpwrap: warning: key {id} is signed by {s}, which is not trusted here (name its certificate with --trust-cert); anyone who can write to this store could have planted it ({file})"
            ),
            AuthenticationStatus::Verified(_) | AuthenticationStatus::Invalid => {}
        }
    }
}

/// The signer named by `args`: the certificate the key material holds (`--sign-with`,
/// `--sign-with-pfx`) or a Key Vault key (`--sign-with-kid`, its vault added to the material's).
pub async fn signer(
    args: &SignArgs,
    material: &mut crate::key_material::KeyMaterial,
) -> Outcome<Option<Signer>> {
    if let Some(kid) = &args.sign_with_kid {
        let (signer, versioned, public) = material.vaults.signer(kid).await?;
        return Ok(Some(Signer::key_vault(signer, &versioned, public)));
    }
    match (&material.signer, args.given()) {
        (Some(c), _) => Ok(Some(Signer::new(Arc::clone(c))?)),
        (None, false) => Ok(None),
        (None, true) => Err(Fail::run("the signing certificate could not be loaded")),
    }
}
