//! The HTTP transport every Azure client of dpwrap uses: reqwest over rustls with the `ring`
//! provider (no C build of aws-lc-sys), no redirects, no transparent decompression, bounded
//! connect time.
//!
//! reqwest built without a default provider panics when none is installed, and so would the
//! Azure SDK's default transport inside any credential we did not hand a transport to. So
//! [`ensure_crypto_provider`] installs `ring` as the process default when nothing else is, and
//! every constructor in this module tree calls it first. An application that installs its own
//! provider earlier (aws-lc-rs, say) keeps it.

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::Transport;

use crate::error::{Error, ErrorKind, Result};

/// Installs rustls' `ring` provider as the process default, unless a default is already set.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// How to reach Azure over HTTPS.
#[derive(Clone, Default)]
pub struct TransportOptions {
    /// Trust only these CA certificates (PEM), instead of the platform's roots. For a local or
    /// private endpoint (the test Key Vault), never for Azure itself.
    pub trusted_roots_pem: Option<Vec<u8>>,
    /// How long to wait for a TCP and TLS connection (default 10 s).
    pub connect_timeout: Option<Duration>,
    /// Open a new connection for every request instead of keeping idle ones for reuse. A pooled
    /// connection belongs to the tokio runtime that opened it; a client used from several runtimes
    /// (a store shared between `block_on` calls) must not reuse them.
    pub fresh_connections: bool,
}

impl std::fmt::Debug for TransportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportOptions")
            .field("custom_roots", &self.trusted_roots_pem.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("fresh_connections", &self.fresh_connections)
            .finish()
    }
}

/// Builds the transport described by `options`.
pub fn build_transport(options: &TransportOptions) -> Result<Transport> {
    ensure_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout.unwrap_or(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        // Bodies are passed on as they came: the Blob client's ranged downloads need the stored
        // bytes, whatever features another crate turns on in reqwest.
        .no_gzip()
        .no_deflate()
        .no_brotli()
        .no_zstd();
    if options.fresh_connections {
        builder = builder.pool_max_idle_per_host(0);
    }
    if let Some(pem) = &options.trusted_roots_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("the trusted root certificates are not valid PEM: {e}"),
            )
        })?;
        if certs.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "the trusted root certificate file holds no certificate",
            ));
        }
        builder = builder.tls_certs_only(certs);
    }
    let client = builder.build().map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("the HTTPS client could not be built: {e}"),
        )
    })?;
    Ok(Transport::new(Arc::new(client)))
}
