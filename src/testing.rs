//! Test helpers (feature `test-util`): a throwaway certificate authority for loopback TLS, and
//! a faithful local Azure Key Vault.
//!
//! Nothing here is meant for production: keys are generated in memory, the CA's private key is
//! never written anywhere, and the servers listen on 127.0.0.1 only.

pub mod key_vault;
pub mod tls;

pub use key_vault::{Fault, LocalKeyVault, Stats};
pub use tls::TestCa;
