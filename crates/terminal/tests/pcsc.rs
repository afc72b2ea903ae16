//! The terminal on a card in a real PC/SC reader: a private pcscd with the vsmartcard vpcd
//! driver, a card image served into it by card-host's vpcd transport, and `terminal::PcscCard`
//! under `terminal::CardClient`, as the CLI uses them.
//!
//! The harness is card-host's (`crates/card-host/tests/pcsc.rs`, see `docs/pcsc.md`): each test
//! re-executes itself under `unshare -mn`, with a tmpfs on `/run/pcscd` and a network namespace
//! of its own, so no other pcscd on the machine is touched and nobody else can insert a card.
//! Needs root (or the capabilities `unshare` needs) and `pcscd vsmartcard-vpcd libpcsclite-dev`.
#![cfg(feature = "pcsc")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use apdu::chaining::TransceiveError;
use card_host::vpcd::{serve_vpcd, DEFAULT_VPCD_ADDR};
use card_host::{HostedCard, SealedFileNvm, SealingKey};
use terminal::{CardChannel, CardClient, ChannelError, ClientError, PcscCard};
use testkit::world::{World, PIN, PIN_TRY_LIMIT};

/// Set (to anything) in the re-executed test process that runs inside the namespaces.
const NS_ENV: &str = "CARDWRIGHT_PCSC_NS";
const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// Longest a step may take before the test gives up; only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// vpcd's two slots (server mode, ports 35963 and 35964); the card is served into the first.
const SLOT_0: &str = "Virtual PCD 00 00";
const SLOT_1: &str = "Virtual PCD 00 01";

// ISO 7816-4 / GlobalPlatform command bytes used raw, outside `CardClient`.
const INS_GET_DATA: u8 = 0xCA;
const INS_INSTALL: u8 = 0xE6;
/// GET DATA tag of the GlobalPlatform card recognition data (`docs/card-os.md`).
const CARD_RECOGNITION_DATA: u16 = 0x0066;

#[test]
fn a_card_in_pcscd_is_personalised_and_used_through_the_terminal() {
    if std::env::var_os(NS_ENV).is_none() {
        rerun_in_private_namespaces(
            "a_card_in_pcscd_is_personalised_and_used_through_the_terminal",
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let _pcscd = Pcscd::start(&reader_conf(work.path()), &work.path().join("pcscd.log"));
    let card_dir = work.path().join("card");
    let key = sealing_key();
    let served = ServedCard::start(
        HostedCard::create(&card_dir, &key, card::DEFAULT_IMAGE_CAPACITY).unwrap(),
    );
    wait_for(Presence::Present);

    assert_eq!(PcscCard::readers().unwrap(), [SLOT_0, SLOT_1]);
    // A part of a name picks the first reader containing it.
    let channel = PcscCard::connect("Virtual PCD").unwrap();
    assert_eq!(channel.reader(), SLOT_0);
    let mut client = CardClient::new(channel);

    let fci = client.select_card_manager().unwrap();
    assert_eq!(
        fci.first(),
        Some(&0x6F),
        "SELECT answers an FCI: {fci:02X?}"
    );

    // The issuer's personalisation, in STORE DATA chains through pcscd and vpcd.
    let world = World::new(11);
    client.personalise(&world.personalisation()).unwrap();
    assert_eq!(client.card_id().unwrap(), world.card_id);

    let first = client.get_challenge().unwrap();
    let second = client.get_challenge().unwrap();
    assert_ne!(first, second, "two challenges from the card's generator");

    let wrong = client.verify_pin("0000").unwrap_err();
    assert_eq!(
        wrong.status().map(|s| s.0),
        Some(0x63C0 | u16::from(PIN_TRY_LIMIT - 1)),
        "a wrong PIN: {wrong}"
    );
    assert_eq!(client.status().unwrap().pin_tries_left, PIN_TRY_LIMIT - 1);
    client.verify_pin(PIN).unwrap();
    assert_eq!(client.status().unwrap().pin_tries_left, PIN_TRY_LIMIT);

    // Extended length (ISO 7816-4 §5.1): Le = 65,536 can only be sent as an extended APDU,
    // and the answer is the same card ID.
    let mut client = CardClient::extended(client.into_channel());
    let card_id = client
        .send(
            "GET DATA",
            apdu::Command::new(0x80, INS_GET_DATA, 0x00, 0x45, []).with_le(65_536),
        )
        .unwrap();
    assert!(
        card_id.ends_with(&world.card_id.0),
        "extended GET DATA 0045 answered {card_id:02X?}"
    );
    // A 4,000-byte command crosses pcscd and vpcd as one extended APDU; whatever the card
    // thinks of it, the answer is a status word, not a transport failure.
    let big = client
        .send(
            "INSTALL",
            apdu::Command::new(0x80, INS_INSTALL, 0x02, 0x00, vec![0x5A; 4000]),
        )
        .unwrap_err();
    assert!(big.status().is_some(), "a 4,000-byte command got {big}");
    // The raw channel: an extended SELECT of the card manager (3-byte Lc, 2-byte Le).
    let r = client
        .channel()
        .transmit(&[
            0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00,
            0x00, 0x00, 0x00,
        ])
        .unwrap();
    assert_eq!(
        r[r.len() - 2..],
        [0x90, 0x00],
        "extended SELECT answered {r:02X?}"
    );

    // A transaction holds the card for a sequence; the connection goes on after it.
    let mut channel = client.into_channel();
    {
        let mut tx = channel.transaction().unwrap();
        let mut in_tx = CardClient::new(&mut tx);
        in_tx.select_card_manager().unwrap();
        in_tx.get_challenge().unwrap();
    }
    let mut client = CardClient::new(channel);
    assert_eq!(client.card_id().unwrap(), world.card_id);
    drop(client);

    served.stop();
}

#[test]
fn pcsc_failures_are_transport_errors_that_say_what_happened() {
    if std::env::var_os(NS_ENV).is_none() {
        rerun_in_private_namespaces("pcsc_failures_are_transport_errors_that_say_what_happened");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mut pcscd = Pcscd::start(&reader_conf(work.path()), &work.path().join("pcscd.log"));
    wait_for(Presence::Absent);

    // An unknown reader: the error lists the readers there are.
    let detail = channel_failure(PcscCard::connect("Yubico YubiKey"));
    assert!(
        detail.contains("no reader named \"Yubico YubiKey\"")
            && detail.contains(SLOT_0)
            && detail.contains(SLOT_1),
        "{detail}"
    );
    // A reader without a card.
    let detail = channel_failure(PcscCard::connect(SLOT_0));
    assert_eq!(detail, format!("no card in reader \"{SLOT_0}\""));

    let card_dir = work.path().join("card");
    let key = sealing_key();
    let served = ServedCard::start(
        HostedCard::create(&card_dir, &key, card::DEFAULT_IMAGE_CAPACITY).unwrap(),
    );
    wait_for(Presence::Present);
    let mut client = CardClient::new(PcscCard::connect(SLOT_0).unwrap());
    client.select_card_manager().unwrap();
    // GP card recognition data (a MANUFACTURED card has no card ID yet).
    let recognition = client.get_data(CARD_RECOGNITION_DATA).unwrap();

    // Another application resets the card: the selection is gone, so the terminal reconnects
    // and says so rather than sending the command to a card that forgot the context.
    reset_by_another_application();
    let detail = transport_failure(client.get_data(CARD_RECOGNITION_DATA));
    assert!(
        detail.contains("was reset") && detail.contains("start the exchange again"),
        "{detail}"
    );
    // Reconnected: the next exchange goes through.
    client.select_card_manager().unwrap();
    assert_eq!(client.get_data(CARD_RECOGNITION_DATA).unwrap(), recognition);

    // The card leaves the reader (its host stops): a transport error, not a panic.
    served.stop();
    wait_for(Presence::Absent);
    let detail = transport_failure(client.get_data(CARD_RECOGNITION_DATA));
    assert!(detail.contains("removed"), "{detail}");
    let detail = transport_failure(client.get_data(CARD_RECOGNITION_DATA));
    assert!(detail.contains("removed"), "still no card: {detail}");

    // The same card comes back: having been told, the caller simply starts again.
    let served = ServedCard::start(HostedCard::open(&card_dir, &key).unwrap());
    wait_for(Presence::Present);
    client.select_card_manager().unwrap();
    assert_eq!(client.get_data(CARD_RECOGNITION_DATA).unwrap(), recognition);

    // pcscd dies under the terminal.
    pcscd.kill();
    let detail = transport_failure(client.get_data(CARD_RECOGNITION_DATA));
    assert!(detail.contains("PC/SC service"), "{detail}");
    let detail = channel_failure(PcscCard::readers());
    assert!(
        detail.contains("cannot reach the PC/SC service"),
        "{detail}"
    );
    drop(client);

    served.stop();
}

fn channel_failure<T: std::fmt::Debug>(result: Result<T, ChannelError>) -> String {
    match result {
        Err(ChannelError::Transport { detail }) => detail,
        other => panic!("expected a transport error, got {other:?}"),
    }
}

fn transport_failure<T: std::fmt::Debug>(result: Result<T, ClientError>) -> String {
    match result {
        Err(ClientError::Transport {
            source: TransceiveError::Transport(ChannelError::Transport { detail }),
            ..
        }) => detail,
        other => panic!("expected a transport error, got {other:?}"),
    }
}

/// What another PC/SC application does when it resets the card on its way out.
fn reset_by_another_application() {
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let reader = std::ffi::CString::new(SLOT_0).unwrap();
    let mut other = ctx
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap();
    other
        .reconnect(
            pcsc::ShareMode::Shared,
            pcsc::Protocols::ANY,
            pcsc::Disposition::ResetCard,
        )
        .unwrap();
    if let Err((_, e)) = other.disconnect(pcsc::Disposition::LeaveCard) {
        panic!("SCardDisconnect: {e}");
    }
}

fn sealing_key() -> SealingKey {
    SealingKey::generate(&mut crypto::InsecureSeededRng::insecure_seeded_for_tests(7))
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

/// A card image served to vpcd from a thread; stopping it takes the card out of the reader and
/// closes the image (so it can be served again).
struct ServedCard {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ServedCard {
    fn start(mut card: HostedCard<SealedFileNvm>) -> ServedCard {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Present,
    Absent,
}

/// Polls until pcscd answers and reports a card in [`SLOT_0`], or none.
fn wait_for(presence: Presence) {
    let deadline = Instant::now() + PATIENCE;
    let reader = std::ffi::CString::new(SLOT_0).unwrap();
    loop {
        if let Ok(ctx) = pcsc::Context::establish(pcsc::Scope::User) {
            let mut state = [pcsc::ReaderState::new(reader.clone(), pcsc::State::UNAWARE)];
            if ctx.get_status_change(Duration::ZERO, &mut state).is_ok() {
                let present = state[0].event_state().contains(pcsc::State::PRESENT);
                let known = !state[0].event_state().contains(pcsc::State::UNKNOWN);
                if known && present == (presence == Presence::Present) {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{SLOT_0} did not become {presence:?} in pcscd within {PATIENCE:?} \
             (see pcscd.log in the work directory)"
        );
        std::thread::sleep(POLL);
    }
}
