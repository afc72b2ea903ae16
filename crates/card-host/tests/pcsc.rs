//! A card reached through real PC/SC: a private pcscd with the vsmartcard vpcd driver, the
//! card served into it by our vpcd transport, and APDUs sent through the PC/SC API (the `pcsc`
//! crate over libpcsclite), exactly as any PC/SC application would.
//!
//! pcscd has fixed paths (`/run/pcscd/`) and vpcd listens on 0.0.0.0, so the test re-executes
//! itself under `unshare -mn`: a private mount namespace with a tmpfs on `/run/pcscd` and a
//! private network namespace with only a loopback interface. No other pcscd on the machine is
//! touched and nobody else can insert a card. Needs root (or the capabilities `unshare` needs)
//! and the packages `pcscd vsmartcard-vpcd libpcsclite-dev`; see `docs/pcsc.md`.
#![cfg(feature = "pcsc")]

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use card_host::vpcd::{serve_vpcd, DEFAULT_VPCD_ADDR};
use card_host::{HostedCard, SealingKey};

/// Set (to anything) in the re-executed test process that runs inside the namespaces.
const NS_ENV: &str = "CARDWRIGHT_PCSC_NS";
const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// Longest a step may take before the test gives up; only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);
/// APDUs timed for the printed rate (measured, never asserted: STYLE "Tests").
const RATE_APDUS: u32 = 2000;

const SELECT_ISD: &str = "00A4040008A000000151000000";
const GET_CARD_DATA: &str = "80CA006600";

#[test]
fn a_served_card_answers_through_pcscd_and_survives_a_pcscd_restart() {
    if std::env::var_os(NS_ENV).is_none() {
        rerun_in_private_namespaces(
            "a_served_card_answers_through_pcscd_and_survives_a_pcscd_restart",
        );
        return;
    }

    let work = tempfile::tempdir().unwrap();
    let conf_dir = reader_conf(work.path());
    let mut pcscd = Pcscd::start(&conf_dir, &work.path().join("pcscd.log"));
    let card = ServedCard::start(&work.path().join("card"));

    // A PC/SC application's view.
    let (ctx, reader) = wait_for_card();
    assert_eq!(reader.to_str().unwrap(), "Virtual PCD 00 00");
    let conn = ctx
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap();
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];

    let r = transmit(&conn, &mut buf, &hex(SELECT_ISD));
    assert_eq!(sw(&r), 0x9000, "SELECT ISD answered {r:02X?}");
    let r = transmit(&conn, &mut buf, &hex(GET_CARD_DATA));
    assert_eq!(sw(&r), 0x9000, "GET DATA 0066 answered {r:02X?}");
    assert_eq!(r[0], 0x66, "card recognition data is tag 66: {r:02X?}");

    // Extended length (ISO 7816-4 §5.1): SELECT with a 3-byte Lc and 2-byte Le.
    let r = transmit(&conn, &mut buf, &hex("00A40400000008A0000001510000000000"));
    assert_eq!(sw(&r), 0x9000, "extended SELECT answered {r:02X?}");
    // A command with 4,000 data bytes crosses pcscd and vpcd whole; whatever the card thinks
    // of it, it answers with a status word.
    let mut big = hex("80E20000000FA0");
    big.extend_from_slice(&[0x5A; 4000]);
    let r = transmit(&conn, &mut buf, &big);
    assert!(r.len() >= 2, "a 4,000-byte command got {r:02X?}");

    let start = Instant::now();
    let select = hex(SELECT_ISD);
    for _ in 0..RATE_APDUS {
        let r = transmit(&conn, &mut buf, &select);
        assert_eq!(sw(&r), 0x9000);
    }
    let per_second = f64::from(RATE_APDUS) / start.elapsed().as_secs_f64();
    println!("through pcscd: {per_second:.0} APDUs/s ({RATE_APDUS} SELECTs via SCardTransmit)");
    drop(conn);
    drop(ctx);

    // pcscd dies and comes back: the card reconnects on its own.
    pcscd.kill();
    let mut pcscd = Pcscd::start(&conf_dir, &work.path().join("pcscd-2.log"));
    let (ctx, reader) = wait_for_card();
    let conn = ctx
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap();
    let r = transmit(&conn, &mut buf, &hex(SELECT_ISD));
    assert_eq!(
        sw(&r),
        0x9000,
        "after the restart, SELECT answered {r:02X?}"
    );
    drop(conn);
    drop(ctx);

    card.stop();
    pcscd.kill();
}

/// Runs this one test again in new mount and network namespaces and checks that it passed
/// there.
fn rerun_in_private_namespaces(test_name: &str) {
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .args(["-mn", "--"])
        .arg(&exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(NS_ENV, "1")
        .status()
        .unwrap_or_else(|e| panic!("cannot run unshare (util-linux) to isolate pcscd: {e}"));
    assert!(
        status.success(),
        "the PC/SC test failed inside `unshare -mn` ({status}); its output is above. \
         It needs root, and: apt-get install pcscd vsmartcard-vpcd libpcsclite-dev"
    );
}

/// A reader.conf directory with one vpcd reader in server mode (the card connects to it).
fn reader_conf(work: &Path) -> PathBuf {
    let driver = vpcd_driver();
    let dir = work.join("reader.conf.d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("vpcd"),
        // Server mode: vpcd listens on port 0x8C7B = 35963 and the card connects to it.
        format!(
            "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:0x8C7B\n\
             LIBPATH {}\nCHANNELID 0x8C7B\n",
            driver.display()
        ),
    )
    .unwrap();
    dir
}

fn vpcd_driver() -> PathBuf {
    if Path::new(VPCD_DRIVER).exists() {
        return VPCD_DRIVER.into();
    }
    let listed = Command::new("dpkg")
        .args(["-L", "vsmartcard-vpcd"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    listed
        .lines()
        .find(|l| l.contains("libifdvpcd.so"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "the vpcd driver (libifdvpcd.so) is not installed: apt-get install vsmartcard-vpcd"
            )
        })
}

/// A pcscd of our own, killed when dropped (also when the test panics).
struct Pcscd {
    child: Option<Child>,
}

impl Pcscd {
    fn start(conf_dir: &Path, log: &Path) -> Pcscd {
        run("mkdir", &["-p", "/run/pcscd"]);
        // A fresh tmpfs each time: a killed pcscd leaves its pid file and socket behind.
        let _ = Command::new("umount")
            .arg("/run/pcscd")
            .stderr(Stdio::null())
            .status();
        run("mount", &["-t", "tmpfs", "tmpfs", "/run/pcscd"]);
        run("ip", &["link", "set", "lo", "up"]);
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new("pcscd")
            .arg("--foreground")
            .arg("--config")
            .arg(conf_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start pcscd ({e}): apt-get install pcscd"));
        Pcscd { child: Some(child) }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

/// A freshly manufactured card on a sealed file NVM, served to vpcd from a thread.
struct ServedCard {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ServedCard {
    fn start(dir: &Path) -> ServedCard {
        let key =
            SealingKey::generate(&mut crypto::InsecureSeededRng::insecure_seeded_for_tests(7));
        let mut card = HostedCard::create(dir, &key, card::DEFAULT_IMAGE_CAPACITY).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || serve_vpcd(DEFAULT_VPCD_ADDR, &mut card, &stop).unwrap())
        };
        ServedCard {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for ServedCard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Polls until pcscd answers and its vpcd reader holds a card; returns the context and reader.
fn wait_for_card() -> (pcsc::Context, CString) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(ctx) = pcsc::Context::establish(pcsc::Scope::User) {
            if let Ok(readers) = ctx.list_readers_owned() {
                if let Some(reader) = readers.into_iter().next() {
                    let mut state = [pcsc::ReaderState::new(reader.clone(), pcsc::State::UNAWARE)];
                    if ctx.get_status_change(Duration::ZERO, &mut state).is_ok()
                        && state[0].event_state().contains(pcsc::State::PRESENT)
                    {
                        return (ctx, reader);
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no card appeared in pcscd within {PATIENCE:?} (see pcscd.log in the work directory)"
        );
        std::thread::sleep(POLL);
    }
}

fn transmit(conn: &pcsc::Card, buf: &mut [u8], command: &[u8]) -> Vec<u8> {
    conn.transmit(command, buf)
        .unwrap_or_else(|e| panic!("SCardTransmit of {command:02X?}: {e}"))
        .to_vec()
}

fn sw(response: &[u8]) -> u16 {
    match response {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => panic!("response without a status word: {response:02X?}"),
    }
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}
