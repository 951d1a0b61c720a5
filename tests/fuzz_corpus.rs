//! Replays the committed fuzz corpora (fuzz/seeds/<target>, fuzz/regressions/<target>) and the
//! shared vectors through the fuzz targets' entry points, so every crash the fuzzers ever found
//! stays fixed without running a fuzzer in CI.
#![cfg(feature = "fuzzing")]

mod common;

use std::path::Path;

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Every committed input of `target`, plus the given extra files.
fn replay(target: &str, extra: &[std::path::PathBuf], run: fn(&[u8])) -> usize {
    let mut inputs = files(&common::repo().join("fuzz/seeds").join(target));
    inputs.extend(files(&common::repo().join("fuzz/regressions").join(target)));
    inputs.extend(extra.iter().cloned());
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{target} panicked on {}", path.display());
    }
    inputs.len()
}

fn vector_xml() -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for dir in [
        "vectors/aspnet/dotnet-aspnetcore-trimming",
        "vectors/aspnet/recognition",
        "vectors/aspnet/azure-sdk-akv-mock",
    ] {
        v.extend(
            files(&common::shared(dir))
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "xml")),
        );
    }
    for dir in [
        "vectors/xmlenc/merlin-xmlenc-five",
        "vectors/xmlenc/01-phaos-xmlenc-3",
        "vectors/xmlenc/xmlenc11-interop-2012",
    ] {
        v.extend(
            files(&common::shared(dir))
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "xml")),
        );
    }
    v
}

#[test]
fn xml_parse_corpus() {
    let n = replay("xml_parse", &vector_xml(), dpwrap::fuzzing::xml_round_trip);
    assert!(n > 40, "only {n} inputs");
}

#[test]
fn key_file_corpus() {
    let n = replay("key_file", &vector_xml(), dpwrap::fuzzing::key_file);
    assert!(n > 40, "only {n} inputs");
}

/// The hostile corpus, whose files are built to reach deep into the parsers.
fn malformed_xml() -> Vec<std::path::PathBuf> {
    files(&common::fixture("malformed"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect()
}

#[test]
fn xmlenc_model_corpus() {
    let mut extra = vector_xml();
    extra.extend(malformed_xml());
    let n = replay("xmlenc_model", &extra, dpwrap::fuzzing::xmlenc_model);
    assert!(n > 40, "only {n} inputs");
}

#[test]
fn decrypt_fixed_key_corpus() {
    let mut extra = vector_xml();
    extra.extend(malformed_xml());
    let n = replay(
        "decrypt_fixed_key",
        &extra,
        dpwrap::fuzzing::decrypt_fixed_key,
    );
    assert!(n > 40, "only {n} inputs");
}

#[test]
fn decrypt_spliced_corpus() {
    let n = replay("decrypt_spliced", &[], dpwrap::fuzzing::decrypt_spliced);
    assert!(n >= 30, "only {n} inputs");
}

/// The decryption seeds are worth their name: each decrypts with the fuzzers' fixed keys, so the
/// fuzzer starts inside the ciphers rather than at the parser.
#[test]
fn decrypt_fixed_key_seeds_decrypt() {
    use dpwrap::xml::NS_XENC;
    let keys = dpwrap::fuzzing::fixed_keys();
    let seeds = files(&common::repo().join("fuzz/seeds/decrypt_fixed_key"));
    assert!(seeds.len() >= 8);
    for path in seeds {
        let doc = dpwrap::xml::parse(&std::fs::read(&path).unwrap()).unwrap();
        let eds = doc.paths_where(&mut |e| e.is(Some(NS_XENC), "EncryptedData"));
        assert!(!eds.is_empty(), "{}", path.display());
        for p in eds {
            let ed = doc.at(&p).unwrap();
            let r = dpwrap::xmlenc::decrypt_encrypted_data(ed, &doc, keys);
            assert!(r.is_ok(), "{}: {:?}", path.display(), r.err());
        }
        let mut copy = doc.clone();
        match dpwrap::xmlenc::decrypt_document(&mut copy, keys) {
            Ok(n) => assert!(n >= 1, "{}", path.display()),
            // Octets cannot go back into a tree.
            Err(e) => assert!(
                path.ends_with("octets.xml") && e.kind() == dpwrap::ErrorKind::Format,
                "{}: {e}",
                path.display()
            ),
        }
    }
}
