//! Interoperability: what we issue verifies with `openssl verify` (chains, CRLs, -x509_strict),
//! and what we revoke or let expire fails there too. CI installs openssl; without it these tests
//! fail on purpose, saying so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Fixture, DAY, NOT_AFTER, NOW};
use pki::{issue_crl, Crl, UnixTime, CARDWRIGHT_ARC};

/// `/usr/bin/openssl` (where Debian and CI put it), else `openssl` on the PATH; fails the test
/// with instructions when neither runs.
fn openssl() -> PathBuf {
    let runs = |path: &Path| {
        Command::new(path)
            .arg("version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let found = [PathBuf::from("/usr/bin/openssl"), PathBuf::from("openssl")]
        .into_iter()
        .find(|p| runs(p));
    match found {
        Some(path) => path,
        None => panic!(
            "openssl is required by pki's interoperability tests and was not found at \
             /usr/bin/openssl or on the PATH (install it: apt-get install openssl)"
        ),
    }
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new(f: &Fixture) -> Dir {
        let d = Dir {
            dir: tempfile::tempdir().unwrap(),
        };
        d.write("ir.pem", &f.ir.to_pem());
        d.write("dr.pem", &f.dr.to_pem());
        d.write("irc.pem", &f.irc.to_pem());
        d.write("dpr.pem", &f.dpr.to_pem());
        d.write("rc.pem", &f.rc.to_pem());
        d
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, pem: &str) {
        std::fs::write(self.path(name), pem).unwrap();
    }

    fn write_crl(&self, name: &str, crl: &Crl) {
        self.write(name, &crl.to_pem());
    }
}

/// Runs `openssl verify -x509_strict -attime <at> <args…>` in `dir`; returns (success, output).
fn verify(dir: &Path, at: UnixTime, args: &[&str]) -> (bool, String) {
    let out = Command::new(openssl())
        .current_dir(dir)
        .arg("verify")
        .arg("-x509_strict")
        .arg("-attime")
        .arg(at.0.to_string())
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn assert_ok(dir: &Path, at: UnixTime, args: &[&str], leaf: &str) {
    let (ok, text) = verify(dir, at, args);
    assert!(
        ok && text.contains(&format!("{leaf}: OK")),
        "openssl verify {args:?}:\n{text}"
    );
}

fn assert_fails(dir: &Path, at: UnixTime, args: &[&str], reason: &str) {
    let (ok, text) = verify(dir, at, args);
    assert!(!ok, "openssl accepted {args:?}:\n{text}");
    assert!(
        text.contains(reason),
        "expected {reason:?} from {args:?}:\n{text}"
    );
}

#[test]
fn openssl_verifies_every_chain() {
    let f = Fixture::new(1);
    let d = Dir::new(&f);
    let p = d.dir.path();
    assert_ok(
        p,
        NOW,
        &["-CAfile", "ir.pem", "-untrusted", "irc.pem", "rc.pem"],
        "rc.pem",
    );
    assert_ok(p, NOW, &["-CAfile", "ir.pem", "irc.pem"], "irc.pem");
    assert_ok(p, NOW, &["-CAfile", "dr.pem", "dpr.pem"], "dpr.pem");
    assert_ok(p, NOW, &["-CAfile", "ir.pem", "ir.pem"], "ir.pem");
    // Under the wrong root, or without the IRC, it does not verify.
    assert_fails(
        p,
        NOW,
        &["-CAfile", "dr.pem", "-untrusted", "irc.pem", "rc.pem"],
        "unable to get",
    );
    assert_fails(p, NOW, &["-CAfile", "ir.pem", "rc.pem"], "unable to get");
}

#[test]
fn openssl_checks_our_validity_periods() {
    let f = Fixture::new(2);
    let d = Dir::new(&f);
    let late = UnixTime(NOT_AFTER.0 + 1);
    assert_fails(
        d.dir.path(),
        late,
        &["-CAfile", "ir.pem", "-untrusted", "irc.pem", "rc.pem"],
        "certificate has expired",
    );
    // RFC 5280 (and verify_chain) count notAfter itself as valid; openssl 3.0 does not, so
    // the last second both agree on is notAfter - 1.
    assert_ok(
        d.dir.path(),
        UnixTime(NOT_AFTER.0 - 1),
        &["-CAfile", "ir.pem", "-untrusted", "irc.pem", "rc.pem"],
        "rc.pem",
    );
}

#[test]
fn openssl_honours_our_crls() {
    let f = Fixture::new(3);
    let d = Dir::new(&f);
    let p = d.dir.path();
    let next = UnixTime(NOW.0 + 7 * DAY);
    let chain = ["-CAfile", "ir.pem", "-untrusted", "irc.pem"];

    d.write_crl(
        "issuer-empty.crl",
        &issue_crl(&f.irc, &f.issuer_key, 1, NOW, next, &[]).unwrap(),
    );
    d.write_crl(
        "issuer-other.crl",
        &issue_crl(&f.irc, &f.issuer_key, 2, NOW, next, &[5, 6]).unwrap(),
    );
    d.write_crl(
        "issuer-rc.crl",
        &issue_crl(&f.irc, &f.issuer_key, 3, NOW, next, &[1000]).unwrap(),
    );
    d.write_crl(
        "ir-empty.crl",
        &issue_crl(&f.ir, &f.ir_key, 1, NOW, next, &[]).unwrap(),
    );
    d.write_crl(
        "ir-irc.crl",
        &issue_crl(&f.ir, &f.ir_key, 2, NOW, next, &[10]).unwrap(),
    );
    d.write_crl(
        "dr-dpr.crl",
        &issue_crl(&f.dr, &f.dr_key, 1, NOW, next, &[20]).unwrap(),
    );
    d.write_crl(
        "dr-empty.crl",
        &issue_crl(&f.dr, &f.dr_key, 2, NOW, next, &[]).unwrap(),
    );

    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v: Vec<&'static str> = chain.to_vec();
        v.extend_from_slice(extra);
        v.push("rc.pem");
        v
    };
    assert_ok(
        p,
        NOW,
        &with(&["-crl_check", "-CRLfile", "issuer-empty.crl"]),
        "rc.pem",
    );
    assert_ok(
        p,
        NOW,
        &with(&["-crl_check", "-CRLfile", "issuer-other.crl"]),
        "rc.pem",
    );
    assert_ok(
        p,
        NOW,
        &with(&[
            "-crl_check_all",
            "-CRLfile",
            "issuer-other.crl",
            "-CRLfile",
            "ir-empty.crl",
        ]),
        "rc.pem",
    );
    assert_fails(
        p,
        NOW,
        &with(&["-crl_check", "-CRLfile", "issuer-rc.crl"]),
        "certificate revoked",
    );
    assert_fails(
        p,
        NOW,
        &with(&[
            "-crl_check_all",
            "-CRLfile",
            "issuer-empty.crl",
            "-CRLfile",
            "ir-irc.crl",
        ]),
        "certificate revoked",
    );
    assert_fails(
        p,
        NOW,
        &[
            "-CAfile",
            "dr.pem",
            "-crl_check",
            "-CRLfile",
            "dr-dpr.crl",
            "dpr.pem",
        ],
        "certificate revoked",
    );
    assert_ok(
        p,
        NOW,
        &[
            "-CAfile",
            "dr.pem",
            "-crl_check",
            "-CRLfile",
            "dr-empty.crl",
            "dpr.pem",
        ],
        "dpr.pem",
    );
}

#[test]
fn openssl_reads_our_private_extensions_and_crls() {
    let f = Fixture::new(4);
    let d = Dir::new(&f);
    let out = Command::new(openssl())
        .args(["x509", "-noout", "-text", "-in"])
        .arg(d.path("rc.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for n in 1..=3 {
        assert!(
            text.contains(&format!("{CARDWRIGHT_ARC}.{n}")),
            "extension .{n} in:\n{text}"
        );
    }
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");
    assert!(
        text.contains("prime256v1") || text.contains("P-256"),
        "{text}"
    );

    let crl = issue_crl(&f.irc, &f.issuer_key, 7, NOW, NOW, &[1000]).unwrap();
    d.write_crl("c.crl", &crl);
    let out = Command::new(openssl())
        .args(["crl", "-noout", "-text", "-in"])
        .arg(d.path("c.crl"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("X509v3 CRL Number"), "{text}");
    assert!(text.contains("Serial Number: 03E8"), "{text}");
}
