//! `dpwrap inspect` on the shared ASP.NET vectors: every file recognised, nothing secret printed,
//! exit codes as documented.

use std::path::PathBuf;
use std::process::Command;

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(rel)
}

fn dpwrap(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dpwrap"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn inspect_json_classifies_every_aspnet_vector() {
    let dirs: Vec<String> = [
        "dotnet-aspnetcore-trimming",
        "recognition",
        "azure-sdk-akv-mock",
    ]
    .iter()
    .map(|d| shared(&format!("vectors/aspnet/{d}")).display().to_string())
    .collect();
    let mut args = vec!["inspect", "--json"];
    args.extend(dirs.iter().map(String::as_str));
    let (code, stdout, _) = dpwrap(&args);
    assert_eq!(code, 0, "{stdout}");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let protection_of = |suffix: &str| -> String {
        let row = rows
            .iter()
            .find(|r| r["file"].as_str().unwrap().ends_with(suffix))
            .unwrap();
        row["protection"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        protection_of("key-9c15d488-4417-49ab-ae39-ed2f36a9ebe3.xml"),
        "certificate"
    );
    assert_eq!(
        protection_of("dpapi-key-7b636973-76e8-49e3-961a-3c4b763a009d.xml"),
        "dpapi"
    );
    assert_eq!(
        protection_of("dpapi-ng-encryptedKey-docs-sample-truncated.xml"),
        "dpapi-ng"
    );
    assert_eq!(
        protection_of("plain-key-d17a439d-8228-4216-9ea5-16a5424a0788.xml"),
        "none"
    );
    assert_eq!(
        protection_of("plain-key-de1dd770-8b81-4ff8-b8ff-d559b1c9eeef.xml"),
        "none"
    );
    assert_eq!(
        protection_of("azure-sdk-akv-mock/encryptedKey.xml"),
        "azure-key-vault"
    );
    let key = rows
        .iter()
        .find(|r| r["key_id"] == "9c15d488-4417-49ab-ae39-ed2f36a9ebe3")
        .unwrap();
    assert_eq!(key["created"], "2023-05-04T19:16:30.3590154Z");
    assert_eq!(key["encryption_algorithm"], "AES_256_CBC");
    assert_eq!(key["validation_algorithm"], "HMACSHA256");
    assert_eq!(key["revoked"], false);
    assert!(
        key["decryptor_type"]
            .as_str()
            .unwrap()
            .contains("EncryptedXmlDecryptor")
    );
    // The unencrypted master keys are never printed.
    assert!(!stdout.contains("wlZYX34JjRFEz"));
    assert!(!stdout.contains("+J0+m3FEtyV2"));
}

#[test]
fn inspect_applies_revocations_and_reports_failures_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let key =
        shared("vectors/aspnet/recognition/plain-key-d17a439d-8228-4216-9ea5-16a5424a0788.xml");
    std::fs::copy(
        &key,
        dir.path()
            .join("key-d17a439d-8228-4216-9ea5-16a5424a0788.xml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("revocation-d17a439d-8228-4216-9ea5-16a5424a0788.xml"),
        "<revocation version=\"1\"><revocationDate>2025-01-01T00:00:00Z</revocationDate><key id=\"d17a439d-8228-4216-9ea5-16a5424a0788\" /><reason>leaked</reason></revocation>",
    )
    .unwrap();
    let (code, stdout, _) = dpwrap(&["inspect", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    let row: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(row["revoked"], true);
    assert_eq!(row["revocation_reason"], "leaked");

    std::fs::write(dir.path().join("key-broken.xml"), "<key id=").unwrap();
    let (code, stdout, stderr) = dpwrap(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("key-broken.xml"), "{stderr}");
    assert!(
        stdout.contains("d17a439d-8228-4216-9ea5-16a5424a0788"),
        "the rest is still listed"
    );

    let (code, _, _) = dpwrap(&["inspect", "--no-such-flag", "x"]);
    assert_eq!(code, 2);
    let (code, _, _) = dpwrap(&["inspect"]);
    assert_eq!(code, 2);
}
