//! The encoding cases of the hostile corpus where dpwrap refuses what it would otherwise have read
//! are refused by .NET's own XML reader too (the Mono peer): dpwrap and .NET never read such a key
//! file differently. A separate binary from tests/malformed.rs, whose allocation counting must
//! not see other tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use dpwrap::{ErrorKind, xml};

#[test]
fn dotnet_refuses_the_encoding_tricks_dpwrap_refuses() {
    let Some(peer) = common::interop::peer() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.xml");
    // The control: a well-formed key file both read.
    let control = std::fs::read(common::fixture("malformed/ok-key-null-protected.xml")).unwrap();
    std::fs::write(&path, &control).unwrap();
    let out = peer.ok(["info", "--in", path.to_str().unwrap()]);
    assert!(out.contains("root: key"), "{out}");
    for file in [
        "fail-utf8-bom-declared-utf16.xml",
        "fail-utf8-declared-utf16.xml",
        "fail-utf8-bom-twice.xml",
    ] {
        let bytes = std::fs::read(common::fixture(&format!("malformed/{file}"))).unwrap();
        assert_eq!(
            xml::parse(&bytes).unwrap_err().kind(),
            ErrorKind::Xml,
            "{file}"
        );
        std::fs::write(&path, &bytes).unwrap();
        let out = peer.run(["info", "--in", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("XmlException"),
            "{file}: .NET read it: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
