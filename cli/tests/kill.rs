//! `dpwrap rewrap` killed with SIGKILL at random points of a 50-key directory: every key still
//! decrypts to its master key afterwards (the directory store swaps each file atomically, and
//! nothing is written before every new element was verified).

mod common;

use std::time::{Duration, Instant};

use common::*;

#[cfg(unix)]
/// The inode of every file of `dir`: a rename over a file changes it.
fn inodes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.ino())))
        .collect();
    v.sort();
    v
}

fn random_below(n: u128) -> u128 {
    uuid::Uuid::new_v4().as_u128() % n.max(1)
}

#[cfg(unix)]
#[test]
fn killed_mid_rewrap_every_key_still_decrypts() {
    let Some(peer) = interop::peer() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ring, certs, manifest) =
        peer_ring(&peer, tmp.path(), 50, "cert,cert-oaep,none,null", 2048);
    let other = tmp.path().join("other");
    peer.gen_cert(&other, 2048, PASSWORD, "n");
    let c = (
        s(&certs.join("c.cert.pem")).to_owned(),
        s(&certs.join("c.key.pem")).to_owned(),
    );
    let n = (
        s(&other.join("n.cert.pem")).to_owned(),
        s(&other.join("n.key.pem")).to_owned(),
    );
    let material = ["--cert", &c.0, "--key", &c.1, "--cert", &n.0, "--key", &n.1];
    let r = s(&ring).to_owned();
    let rewrap_to = |to: &(String, String)| {
        let mut args = vec!["rewrap", r.as_str(), "--to-cert", &to.0, "--to-key", &to.1];
        args.extend(material);
        cmd(args)
    };
    let check = |when: &str| {
        let mut args = vec!["decrypt", "--json", "--reveal"];
        args.extend(material);
        args.push(&r);
        let run = dpwrap(&args);
        assert_eq!(run.code, 0, "{when}: {}", run.stderr);
        let got: std::collections::BTreeMap<String, String> = run
            .json()
            .into_iter()
            .map(|v| {
                (
                    v["key_id"].as_str().unwrap().to_owned(),
                    v["master_key"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(got, expected(&manifest), "{when}");
    };

    // One full run to learn how long a re-wrap of 50 keys takes here.
    let started = Instant::now();
    run_cmd(rewrap_to(&n)).expect(0);
    let full = started.elapsed();
    check("after a full run");

    let c_b64: String = std::fs::read_to_string(&c.0)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let runs = 10;
    let mut mid_write = 0;
    let mut before_write = 0;
    let mut finished = 0;
    for i in 0..runs {
        // Towards the certificate that protects fewer keys now, so that there is work to do.
        let under_c = snapshot(&ring)
            .values()
            .filter(|b| String::from_utf8_lossy(b).contains(&c_b64[..64]))
            .count();
        let to = if under_c < 25 { &c } else { &n };
        let before = snapshot(&ring);
        let mut child = rewrap_to(to)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Half of the runs are killed at a uniformly random time; the other half a random few
        // milliseconds after the first file was swapped, so that kills land mid-write too.
        let delay = if i % 2 == 0 {
            let d = Duration::from_millis(random_below(full.as_millis() + 50) as u64);
            std::thread::sleep(d);
            d
        } else {
            let start = Instant::now();
            let before = inodes(&ring);
            let swapped = |now: &[(std::path::PathBuf, u64)]| {
                before
                    .iter()
                    .any(|(p, ino)| now.iter().any(|(q, i)| p == q && i != ino))
            };
            while !swapped(&inodes(&ring)) && start.elapsed() < full * 3 {
                std::thread::sleep(Duration::from_micros(100));
            }
            std::thread::sleep(Duration::from_micros(random_below(20_000) as u64));
            start.elapsed()
        };
        let killed = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let after = snapshot(&ring);
        let changed = before
            .iter()
            .filter(|(p, b)| after.get(*p) != Some(*b))
            .count();
        match (killed, changed) {
            (false, _) => finished += 1,
            (true, 0) => before_write += 1,
            (true, _) => mid_write += 1,
        }
        check(&format!(
            "run {i}, killed after {delay:?}, {changed} files changed"
        ));
    }
    assert!(
        mid_write > 0,
        "no kill landed while files were being swapped"
    );
    // Interrupted or not, a last run completes the rotation.
    run_cmd(rewrap_to(&n)).expect(0);
    check("after the last run");
    let peer_view = peer_decrypt(&peer, &ring, &material);
    assert_eq!(
        peer_view
            .into_iter()
            .map(|(k, (m, _))| (k, m))
            .collect::<std::collections::BTreeMap<_, _>>(),
        expected(&manifest)
    );
    eprintln!(
        "kill -9 during rewrap of 50 keys (a full run takes {full:?}): {runs} runs, {mid_write} killed while writing, {before_write} killed before writing, {finished} finished first; every key decrypted after each"
    );
}
