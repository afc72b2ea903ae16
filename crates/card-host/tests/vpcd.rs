//! The vpcd transport against a stand-in for pcscd's vpcd driver: a TCP listener on a loopback
//! port that speaks vpcd's side of the protocol (control bytes, framed APDUs, garbage, dropped
//! connections). No pcscd needed; `tests/pcsc.rs` does the real thing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use card_host::vpcd::serve_vpcd;
use card_host::{CardSlot, PowerEvent};

const ATR: &[u8] = &[0x3B, 0x80, 0x80, 0x01, 0x01];
/// Longest a test waits for anything; only reached when the code under test is broken.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Power(PowerEvent),
    Apdu(usize),
}

/// A card that answers every command with the command itself followed by 9000, and logs what
/// happened to it.
struct EchoCard {
    log: Arc<Mutex<Vec<Event>>>,
}

impl CardSlot for EchoCard {
    fn atr(&mut self) -> Vec<u8> {
        ATR.to_vec()
    }
    fn power(&mut self, event: PowerEvent) {
        self.log.lock().unwrap().push(Event::Power(event));
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        self.log.lock().unwrap().push(Event::Apdu(command.len()));
        let mut r = command.to_vec();
        r.extend_from_slice(&[0x90, 0x00]);
        r
    }
}

struct Served {
    addr: SocketAddr,
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Event>>>,
    thread: JoinHandle<Result<(), card_host::HostError>>,
}

fn serve() -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let thread = {
        let (stop, log) = (stop.clone(), log.clone());
        std::thread::spawn(move || serve_vpcd(&addr.to_string(), &mut EchoCard { log }, &stop))
    };
    Served {
        addr,
        listener,
        stop,
        log,
        thread,
    }
}

impl Served {
    fn accept(&self) -> TcpStream {
        accept_within(&self.listener)
    }

    fn finish(self) -> Vec<Event> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap().unwrap();
        let log = self.log.lock().unwrap().clone();
        log
    }
}

fn accept_within(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(PATIENCE)).unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the card did not connect");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Sends like Debian's vpcd does: length and payload in two writes.
fn send(s: &mut TcpStream, payload: &[u8]) {
    s.write_all(&(payload.len() as u16).to_be_bytes()).unwrap();
    s.write_all(payload).unwrap();
}

fn recv(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut payload).unwrap();
    payload
}

fn exchange(s: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
    send(s, payload);
    recv(s)
}

/// The card side closed the connection: the next read sees end of stream (or a reset, when
/// the card closed with our bytes still unread in its buffer).
fn assert_closed_by_card(s: &mut TcpStream) {
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "unexpected bytes {rest:02X?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn serves_power_atr_and_apdus_short_and_extended() {
    let served = serve();
    let mut vpcd = served.accept();

    send(&mut vpcd, &[0x01]); // power on
    assert_eq!(exchange(&mut vpcd, &[0x04]), ATR);
    let select = hex("00A4040008A000000151000000");
    let r = exchange(&mut vpcd, &select);
    assert_eq!(&r[r.len() - 2..], [0x90, 0x00]);
    assert_eq!(&r[..r.len() - 2], &select[..]);

    // Extended APDU: Lc = 00 10 00, 4096 data bytes.
    let mut ext = hex("80E2000000");
    ext.extend_from_slice(&[0x10, 0x00]);
    ext.extend((0..4096u32).map(|i| i as u8));
    let r = exchange(&mut vpcd, &ext);
    assert_eq!(r.len(), ext.len() + 2);
    assert_eq!(&r[..ext.len()], &ext[..]);

    // The longest frame vpcd can send. Its echo would not fit a frame: the card side must
    // answer 6F00 rather than truncate or hang.
    let longest = vec![0xAB; 65_535];
    assert_eq!(exchange(&mut vpcd, &longest), [0x6F, 0x00]);

    send(&mut vpcd, &[0x02]); // reset
    send(&mut vpcd, &[0x00]); // power off

    // A 2-byte "APDU" is the card's business (it answers with a status word), not a framing
    // error.
    assert_eq!(exchange(&mut vpcd, &[0xAA, 0xBB]), [0xAA, 0xBB, 0x90, 0x00]);
    assert_eq!(exchange(&mut vpcd, &[0x04]), ATR);

    let log = served.finish();
    use Event::*;
    use PowerEvent::*;
    assert_eq!(
        log,
        vec![
            Power(On),
            Apdu(13),
            Apdu(4103),
            Apdu(65_535),
            Power(Reset),
            Power(Off),
            Apdu(2),
            Power(Off), // stopping removes the card
        ]
    );
}

#[test]
fn malformed_frames_close_the_connection_and_the_card_comes_back() {
    let served = serve();
    let mut vpcd = served.accept();
    send(&mut vpcd, &[0x01]);

    // An empty frame.
    vpcd.write_all(&[0x00, 0x00]).unwrap();
    assert_closed_by_card(&mut vpcd);

    // An unknown control byte.
    let mut vpcd = served.accept();
    send(&mut vpcd, &[0x03]);
    assert_closed_by_card(&mut vpcd);

    // A payload cut short by the reader going away.
    let mut vpcd = served.accept();
    vpcd.write_all(&[0x00, 0x05, 0x00, 0xA4]).unwrap();
    drop(vpcd);

    // A length cut in half.
    let mut vpcd = served.accept();
    vpcd.write_all(&[0x00]).unwrap();
    drop(vpcd);

    // Random bytes: whatever they decode to, the card neither panics nor hangs the reader.
    let mut vpcd = served.accept();
    vpcd.write_all(&[0x00, 0x01, 0x07, 0xFF, 0xFF, 0x12])
        .unwrap();
    assert_closed_by_card(&mut vpcd);

    // And after all that, a healthy reader still gets a working card.
    let mut vpcd = served.accept();
    assert_eq!(exchange(&mut vpcd, &[0x04]), ATR);
    assert_eq!(
        exchange(&mut vpcd, &hex("00CA006600")),
        hex("00CA0066009000")
    );

    let log = served.finish();
    let offs = log
        .iter()
        .filter(|e| **e == Event::Power(PowerEvent::Off))
        .count();
    assert_eq!(
        offs, 6,
        "one power-off per lost connection, and one at stop: {log:?}"
    );
}

#[test]
fn reconnects_when_the_reader_restarts_on_the_same_port() {
    let served = serve();
    let mut vpcd = served.accept();
    assert_eq!(exchange(&mut vpcd, &[0x04]), ATR);

    // pcscd stops: the connection and the listening socket both go away.
    let Served {
        addr,
        listener,
        stop,
        log,
        thread,
    } = served;
    drop(vpcd);
    drop(listener);

    // While nothing listens, the card keeps retrying; pcscd comes back on the same port.
    let listener = TcpListener::bind(addr).unwrap();
    let served = Served {
        addr,
        listener,
        stop,
        log,
        thread,
    };
    let mut vpcd = served.accept();
    assert_eq!(exchange(&mut vpcd, &[0x04]), ATR);
    assert_eq!(
        exchange(&mut vpcd, &hex("00A4040000")),
        hex("00A40400009000")
    );
    served.finish();
}

#[test]
fn stop_ends_serving_while_no_reader_is_there() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut card = EchoCard {
                log: Arc::default(),
            };
            serve_vpcd(&port.to_string(), &mut card, &stop)
        })
    };
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap().unwrap();
}
