//! The one error type of dpwrap.
//!
//! Every failure is an [`Error`] with a [`kind`](Error::kind) that callers and tests match on, and
//! a lower-case message that says what went wrong and what to do about it. Messages never carry
//! secret material: no key bytes, no plaintext, no passwords.
//!
//! Decryption failures are deliberately uniform: a wrong key, bad padding, a wrong length and
//! tampered data all produce the same [`ErrorKind::Decrypt`] with the same message, so that the
//! error cannot be used as an oracle.

use std::borrow::Cow;
use std::fmt;

/// A `Result` with dpwrap's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is.
///
/// The kinds are stable: tests and callers match on them. New kinds may be added.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is not well-formed XML, or uses XML features refused on untrusted input (DTDs,
    /// entity declarations, unsupported encodings).
    Xml,
    /// The input exceeds one of the configured [`Limits`](crate::xml::Limits); the message names it.
    Limit,
    /// The XML is well-formed but is not the structure expected here (a key file without an id, an
    /// `EncryptedData` without `CipherData`, bad base64, two master keys, ...).
    Format,
    /// An algorithm URI or name that dpwrap does not implement, or refuses (external references).
    UnsupportedAlgorithm,
    /// No decryptor is registered for a `decryptorType`.
    UnknownDecryptor,
    /// A key's descriptor `deserializerType` is not one of ASP.NET's descriptor deserializers.
    UnknownDeserializer,
    /// The key is protected with Windows DPAPI or DPAPI-NG, which only Windows can decrypt.
    WindowsOnly,
    /// None of the available keys matches what the protected data asks for (thumbprints, kid, key
    /// names). The message lists what was wanted and what was available.
    NoMatchingKey,
    /// Decryption failed. Deliberately opaque: wrong key, bad padding, bad length and tampering all
    /// look the same.
    Decrypt,
    /// A certificate or private key could not be loaded or used (wrong password, no private key,
    /// non-RSA key, certificate and key that do not match, ...).
    Certificate,
    /// A key is not authenticated, and the reader's policy requires authenticated keys.
    Unauthenticated,
    /// A key store failed (a file could not be written, a conditional write kept conflicting, a
    /// Redis key holds the wrong type, ...).
    Store,
    /// A remote service (Key Vault, Blob storage, Redis) refused or failed a request.
    Backend,
    /// A configuration value is invalid (a malformed URL, kid or option).
    Config,
    /// An I/O error while reading or writing local files.
    Io,
    /// The operation was cancelled or timed out.
    Cancelled,
}

impl ErrorKind {
    /// A short lower-case name for the kind, as used in JSON output and fixture manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Xml => "xml",
            ErrorKind::Limit => "limit",
            ErrorKind::Format => "format",
            ErrorKind::UnsupportedAlgorithm => "unsupported-algorithm",
            ErrorKind::UnknownDecryptor => "unknown-decryptor",
            ErrorKind::UnknownDeserializer => "unknown-deserializer",
            ErrorKind::WindowsOnly => "windows-only",
            ErrorKind::NoMatchingKey => "no-matching-key",
            ErrorKind::Decrypt => "decrypt",
            ErrorKind::Certificate => "certificate",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Store => "store",
            ErrorKind::Backend => "backend",
            ErrorKind::Config => "config",
            ErrorKind::Io => "io",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    /// Every kind, in declaration order (for manifests and exhaustive tests).
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::Xml,
        ErrorKind::Limit,
        ErrorKind::Format,
        ErrorKind::UnsupportedAlgorithm,
        ErrorKind::UnknownDecryptor,
        ErrorKind::UnknownDeserializer,
        ErrorKind::WindowsOnly,
        ErrorKind::NoMatchingKey,
        ErrorKind::Decrypt,
        ErrorKind::Certificate,
        ErrorKind::Unauthenticated,
        ErrorKind::Store,
        ErrorKind::Backend,
        ErrorKind::Config,
        ErrorKind::Io,
        ErrorKind::Cancelled,
    ];

    /// The kind named `name` (the inverse of [`as_str`](Self::as_str)).
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message of every [`ErrorKind::Decrypt`] error. One constant, so that no failure mode can be
/// told apart from another by its text.
pub const DECRYPT_MESSAGE: &str = "decryption failed: the key does not match the data, or the data was altered; check that the right certificate or key is configured";

/// A dpwrap error: a [`kind`](Error::kind), a message, and optionally the underlying cause.
///
/// The message and the source never contain secret material.
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with `message` (lower case, no secrets, saying what to do).
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause. Only attach causes whose text holds no secrets.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind and without the source chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with context (for example the file or element it concerns), keeping
    /// the kind. Decryption errors keep their one uniform message after the context.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.message = Cow::Owned(format!("{context}: {}", self.message));
        self
    }

    /// The uniform decryption failure.
    pub fn decrypt() -> Error {
        Error::new(ErrorKind::Decrypt, DECRYPT_MESSAGE)
    }

    pub(crate) fn xml(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Xml, message)
    }

    pub(crate) fn format(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Format, message)
    }

    pub(crate) fn unsupported(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::UnsupportedAlgorithm, message)
    }

    pub(crate) fn certificate(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Certificate, message)
    }

    pub(crate) fn config(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Config, message)
    }

    pub(crate) fn io(what: impl fmt::Display, source: std::io::Error) -> Error {
        let message = format!("{what}: {}", describe_io(&source));
        Error::new(ErrorKind::Io, message).with_source(source)
    }
}

fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "not found; check the path".to_owned(),
        K::PermissionDenied => "permission denied; check the file's owner and mode".to_owned(),
        _ => e.to_string().to_lowercase(),
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.as_str()), Some(*kind));
        }
        assert_eq!(ErrorKind::from_name("nonsense"), None);
    }

    #[test]
    fn decrypt_errors_are_uniform() {
        let a = Error::decrypt();
        let b = Error::decrypt();
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(a.kind(), ErrorKind::Decrypt);
    }

    #[test]
    fn context_keeps_the_kind() {
        let e = Error::format("missing id").context("key-1.xml");
        assert_eq!(e.kind(), ErrorKind::Format);
        assert_eq!(e.to_string(), "key-1.xml: missing id");
    }
}
