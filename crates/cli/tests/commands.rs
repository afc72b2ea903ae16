//! The `cardwright` commands a new user tries first, run as a user would: the README's demo,
//! `up` with the terminal commands against it, `bench authorize`, and clear errors for bad
//! input. Each must exit with the right status and say what it did.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cardwright(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cardwright"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LOG", "warn")
        .env_remove("CARDWRIGHT_CARD_KEY")
        .output()
        .expect("run cardwright")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_demo_runs_every_flow_against_real_servers() {
    let dir = tempfile::tempdir().unwrap();
    let out = cardwright(&["demo", "--dir", "demo"], dir.path());
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for step in [
        "REG-2",
        "STO-1",
        "STO-2",
        "STO-3",
        "STO-4",
        "STO-5",
        "STO-6",
        "refused: a replayed",
        "both ledgers verify",
        "S1-S3 card proves itself",
        "S8-S16 issuer verifies",
        "issuer registry of card",
        "application   Transit Wallet v1",
        "provider members of transit",
        "Carol Example <carol@example.org>  since",
        "all checks passed",
    ] {
        assert!(
            said.contains(step),
            "the demo does not mention {step:?}:\n{said}"
        );
    }
    assert!(!said.contains("FAILED"), "{said}");
    // A second demo into the same directory refuses to reuse it.
    let again = cardwright(&["demo", "--dir", "demo"], dir.path());
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
}

struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn up_then_the_terminal_commands() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up(Command::new(env!("CARGO_BIN_EXE_cardwright"))
        .args(["up", "--dir", "data", "--port", "0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let listing = dir.path().join("data/deployment.json");
    let started = Instant::now();
    while !listing.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "up did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The catalog and delegation are published just after deployment.json is written.
    let run = |args: &[&str]| {
        let mut last = cardwright(args, dir.path());
        let t = Instant::now();
        while !last.status.success()
            && text(&last).contains("unknown_item")
            && t.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(100));
            last = cardwright(args, dir.path());
        }
        last
    };
    let card = ["--dir", "data", "--card", "cards/alice"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        v.extend_from_slice(extra);
        v.extend_from_slice(&card);
        v
    };
    for args in [
        with(&["terminal", "personalise", "--pin", "2468"]),
        with(&[
            "terminal",
            "register",
            "--pin",
            "2468",
            "--user-id",
            "alice",
            "--name",
            "Alice",
        ]),
        with(&[
            "terminal",
            "store",
            "--pin",
            "2468",
            "--item",
            "7469636b6574",
            "--path",
            "via-provider",
        ]),
        with(&[
            "terminal",
            "store",
            "--pin",
            "2468",
            "--item",
            "70617373",
            "--certified",
            "provider",
        ]),
        with(&[
            "terminal",
            "delete",
            "--pin",
            "2468",
            "--item",
            "7469636b6574",
            "--path",
            "provider-only",
        ]),
    ] {
        let out = run(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let list = run(&with(&["terminal", "list"]));
    let said = text(&list);
    assert!(list.status.success(), "{said}");
    assert!(
        said.contains("70617373") && !said.contains("7469636b6574 "),
        "{said}"
    );
    assert!(
        said.contains("issuer's record: agrees; provider's record: agrees"),
        "{said}"
    );

    // Bad input says what was wrong.
    for (args, says) in [
        (
            with(&["terminal", "store", "--pin", "2468", "--item", "zz"]),
            "--item",
        ),
        (
            with(&["terminal", "store", "--pin", "0000", "--item", "70617373"]),
            "wrong PIN",
        ),
        (
            vec![
                "terminal",
                "list",
                "--dir",
                "data",
                "--card",
                "cards/nobody",
            ],
            "there is no card",
        ),
        (
            vec![
                "terminal",
                "list",
                "--dir",
                "elsewhere",
                "--card",
                "cards/alice",
            ],
            "cardwright up",
        ),
    ] {
        let out = cardwright(&args, dir.path());
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
    drop(up);
}

#[test]
fn bench_authorize_prints_the_rate_next_to_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let out = cardwright(
        &[
            "bench",
            "authorize",
            "--seconds",
            "0.3",
            "--concurrency",
            "2",
            "--dir",
            dir_arg,
        ],
        dir.path(),
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("SQLite") && said.contains("authorizations/s"),
        "{said}"
    );
    assert!(
        said.contains("bound") && said.contains("verifies each, counted"),
        "{said}"
    );
}

/// `cardwright terminal download` (APP-3) from the command line: the terms must be accepted, a
/// service too large is refused with both numbers, and a download whose process is killed with
/// SIGKILL after it reported a step is finished by running the same command again (REC-2): the
/// card then holds the application once and both parties' records agree with it.
#[test]
fn terminal_download_survives_a_killed_terminal() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let up = Up(Command::new(env!("CARGO_BIN_EXE_cardwright"))
        .args(["up", "--dir", "data", "--port", "0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let listing = dir.path().join("data/deployment.json");
    let started = Instant::now();
    while !listing.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "up did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let card = ["--dir", "data", "--card", "cards/dora", "--pin", "2468"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        let mut v: Vec<&str> = extra.to_vec();
        v.extend_from_slice(&card);
        v
    };
    for args in [
        with(&["terminal", "personalise"]),
        with(&[
            "terminal",
            "register",
            "--user-id",
            "dora",
            "--name",
            "Dora Example",
        ]),
    ] {
        let out = cardwright(&args, dir.path());
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    // The services are published just after deployment.json is written.
    let t = Instant::now();
    let refused = loop {
        let out = cardwright(
            &with(&[
                "terminal",
                "download",
                "--service",
                "lounge",
                "--accept-terms",
            ]),
            dir.path(),
        );
        if text(&out).contains("offers no service") && t.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        break out;
    };
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(
        said.contains("not enough room")
            && said.contains("needs 12480 bytes")
            && said.contains("4096 bytes free"),
        "{said}"
    );
    let no_terms = cardwright(
        &with(&["terminal", "download", "--service", "transit"]),
        dir.path(),
    );
    assert!(!no_terms.status.success());
    assert!(
        text(&no_terms).contains("--accept-terms"),
        "{}",
        text(&no_terms)
    );

    // Killed after the card installed the application, before the issuer heard of it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cardwright"))
        .args(with(&[
            "terminal",
            "download",
            "--service",
            "transit",
            "--accept-terms",
        ]))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("installed it") {
            child.kill().unwrap();
            break;
        }
    }
    let _ = child.wait();
    assert!(seen.contains("installed it"), "{seen}");

    let again = cardwright(
        &with(&[
            "terminal",
            "download",
            "--service",
            "transit",
            "--accept-terms",
        ]),
        dir.path(),
    );
    let said = text(&again);
    assert!(again.status.success(), "{said}");
    assert!(said.contains("resuming download"), "{said}");
    assert!(said.contains("service transit started"), "{said}");

    let list = cardwright(
        &["terminal", "list", "--dir", "data", "--card", "cards/dora"],
        dir.path(),
    );
    let said = text(&list);
    assert!(list.status.success(), "{said}");
    assert_eq!(said.matches("a0000008710101").count(), 1, "{said}");
    assert!(
        said.contains("issuer's record: agrees; provider's record: agrees"),
        "{said}"
    );

    // The portal serves this computer only, and prints the one link that opens it.
    let portal = [
        "terminal",
        "portal",
        "--dir",
        "data",
        "--card",
        "cards/dora",
    ];
    let mut args = portal.to_vec();
    args.extend(["--listen", "0.0.0.0:0"]);
    let out = cardwright(&args, dir.path());
    assert!(!out.status.success());
    assert!(text(&out).contains("this computer only"), "{}", text(&out));
    let mut args = portal.to_vec();
    args.extend(["--listen", "127.0.0.1:0"]);
    let mut child = Up(Command::new(env!("CARGO_BIN_EXE_cardwright"))
        .args(&args)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let stdout = child.0.stdout.take().unwrap();
    let url = std::io::BufReader::new(stdout)
        .lines()
        .map(|l| l.unwrap())
        .find(|l| l.contains("/start?key="))
        .expect("the portal prints its link");
    let url = url.trim();
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    use std::io::{Read as _, Write as _};
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("set-cookie:"),
        "{answer}"
    );
    drop(child);
    drop(up);
}

#[test]
fn bench_download_prints_the_rate_next_to_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let out = cardwright(
        &[
            "bench",
            "download",
            "--downloads",
            "3",
            "--concurrency",
            "2",
            "--dir",
            dir_arg,
        ],
        dir.path(),
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("SQLite") && said.contains("downloads/s"),
        "{said}"
    );
    assert!(
        said.contains("bound") && said.contains("verifies each, counted"),
        "{said}"
    );
}
