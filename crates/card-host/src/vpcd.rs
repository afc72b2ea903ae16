//! The card side of the vsmartcard vpcd protocol: how a card on this computer appears in pcscd
//! as the card in a real reader ("Virtual PCD 00 00").
//!
//! vpcd is pcscd's driver for virtual readers. In server mode (`DEVICENAME /dev/null:0x8C7B` in
//! its reader.conf) it listens on TCP port 35963 (slot 0) and 35964 (slot 1); a card connects as
//! a client and from then on only answers. Both directions frame every message as a big-endian
//! `u16` length followed by the payload. A 1-byte payload from vpcd is a control message (power
//! off, power on, reset — no reply — or "get ATR", answered with the framed ATR); anything
//! longer is a command APDU, answered with the framed response APDU. See `docs/pcsc.md`.
//!
//! Two socket details decide whether this runs at 20,000 APDUs/s or at 21: Debian 12's vpcd
//! writes the length and the payload with two `send()` calls and without `TCP_NODELAY`, so its
//! second segment waits for our ACK of the first, which Linux delays by ~40 ms. We therefore
//! re-arm `TCP_QUICKACK` before every read (the kernel clears it on its own) and send each of
//! our frames with a single write, with `TCP_NODELAY` set.
//!
//! When the connection drops (pcscd stopped or restarted) the card is "removed": it loses power
//! and we reconnect with a capped backoff until the caller raises the stop flag.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::{CardSlot, HostError, PowerEvent};

/// Where Debian's vpcd listens for the card of its first slot (`VPCDPORT` in vsmartcard).
pub const DEFAULT_VPCD_ADDR: &str = "127.0.0.1:35963";

// Control payloads from vpcd (vsmartcard `vpcd.c`, `VPCD_CTRL_*`).
const CTRL_OFF: u8 = 0x00;
const CTRL_ON: u8 = 0x01;
const CTRL_RESET: u8 = 0x02;
const CTRL_ATR: u8 = 0x04;

/// ISO 7816-4 §5.6 "no precise diagnosis": the answer when a response cannot be framed.
const SW_NO_PRECISE_DIAGNOSIS: [u8; 2] = [0x6F, 0x00];

/// How often a blocked read or a backoff wakes up to look at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);
/// A peer that stops reading must not hang the card forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Serves `slot` to the vpcd listening at `addr` (`host:port`, e.g. [`DEFAULT_VPCD_ADDR`])
/// until `stop` becomes true; reconnects whenever the connection is refused, closed or carries
/// a malformed frame. Returns an error only if `addr` does not resolve; everything after that
/// is retried and logged to stderr in one line per change of state.
pub fn serve_vpcd(
    addr: &str,
    slot: &mut impl CardSlot,
    stop: &AtomicBool,
) -> Result<(), HostError> {
    let targets: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| HostError::VpcdAddress {
            addr: addr.to_owned(),
            detail: e.to_string(),
        })?
        .collect();
    if targets.is_empty() {
        return Err(HostError::VpcdAddress {
            addr: addr.to_owned(),
            detail: "resolves to no address".to_owned(),
        });
    }

    let mut backoff = BACKOFF_FIRST;
    // Only the first failure of an outage is logged; retries every BACKOFF_MAX would flood.
    let mut outage_logged = false;
    while !stop.load(Ordering::Relaxed) {
        let stream = match connect(&targets) {
            Ok(s) => s,
            Err(e) => {
                if !outage_logged {
                    eprintln!("vpcd: cannot reach {addr} ({e}); retrying until it is up");
                    outage_logged = true;
                }
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        eprintln!("vpcd: card inserted into the reader at {addr}");
        outage_logged = false;
        backoff = BACKOFF_FIRST;
        let end = serve_connection(stream, slot, stop);
        // The card left the reader: whatever it held in RAM is gone.
        slot.power(PowerEvent::Off);
        match end {
            SessionEnd::Stopped => break,
            SessionEnd::Closed => eprintln!("vpcd: {addr} closed the connection; reconnecting"),
            SessionEnd::Malformed(what) => {
                eprintln!("vpcd: malformed frame from {addr} ({what}); reconnecting")
            }
            SessionEnd::Io(e) => eprintln!("vpcd: connection to {addr} failed ({e}); reconnecting"),
        }
    }
    Ok(())
}

/// Why one connection to vpcd ended.
#[derive(Debug)]
enum SessionEnd {
    Stopped,
    Closed,
    Malformed(String),
    Io(io::Error),
}

fn connect(targets: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for target in targets {
        match TcpStream::connect_timeout(target, CONNECT_TIMEOUT) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(STOP_POLL))?;
                stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn serve_connection(
    mut stream: TcpStream,
    slot: &mut impl CardSlot,
    stop: &AtomicBool,
) -> SessionEnd {
    let mut header = [0u8; 2];
    let mut payload = Vec::new();
    loop {
        match read_full(&mut stream, &mut header, stop) {
            Ok(ReadEnd::Full) => {}
            Ok(ReadEnd::Stopped) => return SessionEnd::Stopped,
            Ok(ReadEnd::Eof { read: 0 }) => return SessionEnd::Closed,
            Ok(ReadEnd::Eof { read }) => {
                return SessionEnd::Malformed(format!(
                    "connection closed after {read} of 2 length bytes"
                ))
            }
            Err(e) => return SessionEnd::Io(e),
        }
        let len = usize::from(u16::from_be_bytes(header));
        if len == 0 {
            return SessionEnd::Malformed("empty frame".to_owned());
        }
        payload.resize(len, 0);
        match read_full(&mut stream, &mut payload, stop) {
            Ok(ReadEnd::Full) => {}
            Ok(ReadEnd::Stopped) => return SessionEnd::Stopped,
            Ok(ReadEnd::Eof { read }) => {
                return SessionEnd::Malformed(format!(
                    "connection closed after {read} of {len} payload bytes"
                ))
            }
            Err(e) => return SessionEnd::Io(e),
        }
        let reply = match payload.as_slice() {
            [CTRL_OFF] => {
                slot.power(PowerEvent::Off);
                None
            }
            [CTRL_ON] => {
                slot.power(PowerEvent::On);
                None
            }
            [CTRL_RESET] => {
                slot.power(PowerEvent::Reset);
                None
            }
            [CTRL_ATR] => Some(slot.atr()),
            [other] => return SessionEnd::Malformed(format!("unknown control byte {other:02X}")),
            command => Some(slot.transmit(command)),
        };
        if let Some(reply) = reply {
            if let Err(e) = stream.write_all(&frame(&reply)) {
                return SessionEnd::Io(e);
            }
        }
    }
}

/// `len(u16 BE) || payload` in one buffer, so that it leaves in one write (one TCP segment).
/// A payload the frame cannot carry (over 65,535 bytes) becomes `6F00`: cutting a response
/// short would hand the reader a wrong answer.
fn frame(payload: &[u8]) -> Vec<u8> {
    let payload = match u16::try_from(payload.len()) {
        Ok(_) => payload,
        Err(_) => {
            eprintln!(
                "vpcd: a {}-byte response does not fit a vpcd frame; sent 6F00 instead",
                payload.len()
            );
            &SW_NO_PRECISE_DIAGNOSIS[..]
        }
    };
    let mut out = Vec::with_capacity(2 + payload.len());
    // Invariant: payload.len() fits u16, checked (or replaced) just above.
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

enum ReadEnd {
    Full,
    Stopped,
    Eof { read: usize },
}

/// Fills `buf`, re-arming `TCP_QUICKACK` before every `read` (see the module comment) and
/// looking at `stop` whenever the read times out.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> io::Result<ReadEnd> {
    let mut filled = 0;
    while filled < buf.len() {
        if stop.load(Ordering::Relaxed) {
            return Ok(ReadEnd::Stopped);
        }
        rearm_quickack(stream);
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(ReadEnd::Eof { read: filled }),
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ReadEnd::Full)
}

/// Asks Linux to ACK incoming segments at once. Best effort: failing costs speed, not
/// correctness, so an error is ignored.
#[cfg(target_os = "linux")]
fn rearm_quickack(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: the descriptor is open for the lifetime of `stream`; optval points to a c_int
    // and optlen is its size.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn rearm_quickack(_stream: &TcpStream) {}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let mut left = total;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let step = left.min(STOP_POLL);
        std::thread::sleep(step);
        left -= step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_frame_is_the_big_endian_length_then_the_payload() {
        assert_eq!(frame(&[0x90, 0x00]), vec![0x00, 0x02, 0x90, 0x00]);
        let big = vec![0xAB; 0x1234];
        let f = frame(&big);
        assert_eq!(&f[..2], &[0x12, 0x34]);
        assert_eq!(&f[2..], &big[..]);
    }

    #[test]
    fn a_response_too_long_for_a_frame_becomes_6f00() {
        assert_eq!(frame(&vec![0; 65_538]), vec![0x00, 0x02, 0x6F, 0x00]);
        assert_eq!(frame(&vec![7; 65_535]).len(), 65_537);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn quickack_is_armed_on_the_socket() {
        use std::os::fd::AsRawFd;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _peer = listener.accept().unwrap();
        rearm_quickack(&stream);
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: valid descriptor, value/len point to a c_int and its size.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        assert_eq!(value, 1);
    }

    #[test]
    fn an_unresolvable_address_is_an_error_naming_it() {
        let stop = AtomicBool::new(false);
        struct Nothing;
        impl CardSlot for Nothing {
            fn atr(&mut self) -> Vec<u8> {
                vec![]
            }
            fn power(&mut self, _: PowerEvent) {}
            fn transmit(&mut self, _: &[u8]) -> Vec<u8> {
                vec![0x6D, 0x00]
            }
        }
        let err = serve_vpcd("not an address", &mut Nothing, &stop).unwrap_err();
        assert!(matches!(err, HostError::VpcdAddress { ref addr, .. } if addr == "not an address"));
    }
}
