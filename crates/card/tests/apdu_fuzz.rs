//! Property tests of the card's whole APDU surface (CARD-8): no sequence of command APDUs —
//! arbitrary bytes, extended-length-shaped bytes, structured commands in short and extended
//! form, command chains, GET RESPONSE — makes the card panic, answer without a plausible
//! ISO 7816-4 status word, or change its persistent state without answering success. A second
//! property mutates a valid, complete store sequence and checks that the card never stores
//! anything but exactly the item that was authorized.
//!
//! Deterministic: proptest runs from a fixed seed with no failure persistence (nothing is
//! written next to the sources), and the card's randomness is an `InsecureSeededRng`.

use std::fmt::Write as _;

use apdu::chaining::split_for_chaining;
use apdu::{tlv, Command, CLA_CHAINING};
use card::nvm::MemNvm;
use card::state::Item;
use card::wire::*;
use card::{Card, LifeCycle, PersistentState, ISD_AID};
use crypto::{sha256, InsecureSeededRng};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use protocol::{verify_listing, Challenge, Nonce, Operation};
use testkit::world::{Path, World, PIN};

/// Seed of the test world (PKI, card ID, `Sk`).
const WORLD_SEED: u64 = 0xF022_0008;
/// Seed of the randomness the fuzzed card is given (challenges, keys).
const CARD_RNG_SEED: u64 = 0xCA8D_F022;

fn runner(cases: u32, seed: u64) -> TestRunner {
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        // Deterministic and side-effect free: no regression files written into the tree.
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    })
}

fn run<S: Strategy>(
    cases: u32,
    seed: u64,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner(cases, seed).run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Starting states

/// NVM contents of the three starting cards, and APDUs that are valid somewhere in the life
/// cycle (so random sequences also reach states past the one they started in).
struct Fixture {
    blank: Vec<u8>,
    personalised: Vec<u8>,
    registered: Vec<u8>,
    known: Vec<Vec<Vec<u8>>>,
}

fn nvm_of(card: Card<MemNvm>) -> Vec<u8> {
    card.into_nvm().into_bytes()
}

fn fixture(w: &World) -> Fixture {
    let blank = nvm_of(w.blank_card());
    let personalised = nvm_of(w.personalised().into_channel().into_card());
    let (registered, _rc) = w.registered();
    let registered = nvm_of(registered.into_channel().into_card());
    let personalisation: Vec<Vec<u8>> = {
        let blocks = w.personalisation().blocks();
        let n = blocks.len();
        blocks
            .into_iter()
            .enumerate()
            .flat_map(|(i, block)| {
                let p1 = if i + 1 == n { 0x80 } else { 0x00 };
                split_for_chaining(&Command::new(0x80, INS_STORE_DATA, p1, i as u8, block), 255)
            })
            .map(|c| c.to_bytes())
            .collect()
    };
    let mut register_data = tlv::encode(TAG_USER_INFO, &w.user.to_der());
    register_data.extend(tlv::encode(TAG_ISSUER_CHALLENGE, &[0x11; 16]));
    let register = Command::new(0x80, INS_REGISTER, 0, 0, register_data).with_le(256);
    let known = vec![
        personalisation,
        vec![verify_pin_apdu()],
        vec![Command::new(0x00, INS_VERIFY, 0x00, 0x80, *b"0000").to_bytes()],
        vec![Command::new(0x00, INS_VERIFY, 0x00, 0x80, *b"123456789012").to_bytes()],
        vec![Command::new(0x00, INS_VERIFY, 0x00, 0x80, []).to_bytes()],
        vec![Command::new(0x00, INS_SELECT, 0x04, 0x00, ISD_AID)
            .with_le(256)
            .to_bytes()],
        vec![Command::new(0x00, INS_GET_CHALLENGE, 0, 0, [])
            .with_le(16)
            .to_bytes()],
        vec![Command::new(
            0x80,
            INS_GET_STATUS,
            0x40,
            0x00,
            tlv::encode(TAG_NONCE, b"fuzz nonce"),
        )
        .with_le(256)
        .to_bytes()],
        vec![Command::new(0x80, INS_GET_DATA, 0xDF, 0x30, [])
            .with_le(256)
            .to_bytes()],
        vec![Command::new(0x00, INS_GENERATE_KEY_PAIR, 0, 0, [])
            .with_le(256)
            .to_bytes()],
        split_for_chaining(&register, 255)
            .iter()
            .map(Command::to_bytes)
            .collect(),
    ];
    Fixture {
        blank,
        personalised,
        registered,
        known,
    }
}

fn verify_pin_apdu() -> Vec<u8> {
    Command::new(0x00, INS_VERIFY, 0x00, 0x80, PIN.as_bytes()).to_bytes()
}

/// Where a fuzzed sequence starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    Blank,
    Personalised,
    PersonalisedPinVerified,
    Registered,
    RegisteredPinVerified,
}

// ---------------------------------------------------------------------------------------------
// Driving a card and checking every answer

/// A card under test, with the checks made after every command and a transcript for failure
/// messages.
struct Driven {
    card: Card<MemNvm>,
    rng: InsecureSeededRng,
    transcript: String,
    successes: usize,
}

fn abbreviated(bytes: &[u8]) -> String {
    const SHOW: usize = 48;
    if bytes.len() <= SHOW {
        hex::encode_upper(bytes)
    } else {
        format!(
            "{}…({} bytes)",
            hex::encode_upper(&bytes[..SHOW]),
            bytes.len()
        )
    }
}

impl Driven {
    fn boot(nvm: &[u8]) -> Driven {
        let card = Card::boot(MemNvm::from_bytes(nvm.to_vec())).expect("test card boots");
        Driven {
            card,
            rng: InsecureSeededRng::insecure_seeded_for_tests(CARD_RNG_SEED),
            transcript: String::new(),
            successes: 0,
        }
    }

    fn fail(&self, what: String) -> TestCaseError {
        TestCaseError::fail(format!("{what}\ntranscript:\n{}", self.transcript))
    }

    /// Sends `apdu` and checks the answer (CARD-8) and any change of the persistent state.
    fn send(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TestCaseError> {
        let before = self.card.image().to_vec();
        let resp = self.card.transmit(apdu, &mut self.rng);
        let _ = writeln!(
            self.transcript,
            ">> {}\n<< {}",
            abbreviated(apdu),
            abbreviated(&resp)
        );
        if let Err(why) = check_answer(apdu, &resp) {
            return Err(self.fail(format!("CARD-8 violated: {why}")));
        }
        let sw = sw_of(&resp);
        let success = sw == 0x9000 || sw >> 8 == 0x61;
        if success {
            self.successes += 1;
        }
        if self.card.image() != before.as_slice() && !success {
            if let Err(why) = check_spent_pin_try(apdu, sw, &before, self.card.image()) {
                return Err(self.fail(format!(
                    "STATE CHANGED WITHOUT SUCCESS: {} answered {sw:04X}: {why}",
                    abbreviated(apdu)
                )));
            }
        }
        Ok(resp)
    }

    /// Power-cycles the card: it must come back from its NVM with the same state image.
    fn reboot(self) -> Result<Driven, TestCaseError> {
        let image = self.card.image().to_vec();
        let transcript = self.transcript.clone();
        let card = Card::boot(self.card.into_nvm()).map_err(|e| {
            TestCaseError::fail(format!(
                "card does not boot after the sequence: {e}\ntranscript:\n{transcript}"
            ))
        })?;
        if card.image() != image.as_slice() {
            return Err(TestCaseError::fail(format!(
                "rebooted card has another state image\ntranscript:\n{transcript}"
            )));
        }
        Ok(Driven {
            card,
            rng: self.rng,
            transcript,
            successes: self.successes,
        })
    }
}

fn sw_of(resp: &[u8]) -> u16 {
    u16::from_be_bytes([resp[resp.len() - 2], resp[resp.len() - 1]])
}

/// The answer carries a plausible status word, no data with an error, and no more data than
/// the command's Ne (ISO 7816-4 §5.1, §5.6; Ne defaults as `docs/card-os.md` says).
fn check_answer(apdu: &[u8], resp: &[u8]) -> Result<(), String> {
    if resp.len() < 2 {
        return Err(format!(
            "{} answered {} bytes, no status word",
            abbreviated(apdu),
            resp.len()
        ));
    }
    let [sw1, sw2] = [resp[resp.len() - 2], resp[resp.len() - 1]];
    let data_len = resp.len() - 2;
    if !((0x61..=0x6F).contains(&sw1) || sw1 == 0x90) {
        return Err(format!(
            "{} answered implausible status {sw1:02X}{sw2:02X}",
            abbreviated(apdu)
        ));
    }
    if sw1 == 0x90 && sw2 != 0x00 {
        return Err(format!(
            "{} answered {sw1:02X}{sw2:02X}: only 9000 is success",
            abbreviated(apdu)
        ));
    }
    // Errors (64xx..6Fxx) carry no data (ISO 7816-4 §5.6: only 61xx, 62xx, 63xx and 9000 may).
    if (0x64..=0x6F).contains(&sw1) && data_len != 0 {
        return Err(format!(
            "{} answered error {sw1:02X}{sw2:02X} with {data_len} data bytes",
            abbreviated(apdu)
        ));
    }
    match apdu::Command::parse_with_framing(apdu) {
        Err(_) => {
            if resp != [0x67, 0x00] {
                return Err(format!(
                    "unparseable {} answered {}, not 6700",
                    abbreviated(apdu),
                    abbreviated(resp)
                ));
            }
        }
        Ok((cmd, framing)) => {
            let max = match framing {
                apdu::Framing::Short => 256,
                apdu::Framing::Extended => 65_536,
            };
            let ne = cmd.le.unwrap_or(max).min(max);
            if data_len > ne {
                return Err(format!(
                    "{} (Ne {ne}) answered {data_len} data bytes",
                    abbreviated(apdu)
                ));
            }
        }
    }
    Ok(())
}

/// The one state change a refused command may make: VERIFY with a wrong PIN spends a try, and
/// commits it before comparing (anti-tearing, `docs/card-os.md` *Atomicity*). Anything else is
/// a bug.
fn check_spent_pin_try(apdu: &[u8], sw: u16, before: &[u8], after: &[u8]) -> Result<(), String> {
    let cmd = Command::parse(apdu).map_err(|e| format!("unparseable command ({e})"))?;
    let wrong_pin = sw & 0xFFF0 == 0x63C0 || sw == 0x6983;
    if cmd.ins != INS_VERIFY || !wrong_pin {
        return Err("only a failed VERIFY may change state".into());
    }
    let mut old = PersistentState::decode(before).map_err(|e| format!("old image: {e}"))?;
    let new = PersistentState::decode(after).map_err(|e| format!("new image: {e}"))?;
    let (Some(o), Some(n)) = (old.pin.as_mut(), new.pin.as_ref()) else {
        return Err("VERIFY changed state of a card without a PIN".into());
    };
    if n.tries_left + 1 != o.tries_left {
        return Err(format!(
            "VERIFY moved tries from {} to {}",
            o.tries_left, n.tries_left
        ));
    }
    let expected = if n.tries_left == 0 {
        0x6983
    } else {
        0x63C0 | u16::from(n.tries_left)
    };
    if sw != expected {
        return Err(format!("{} tries left but answered {sw:04X}", n.tries_left));
    }
    o.tries_left = n.tries_left;
    if old.encode() != after {
        return Err("VERIFY changed more than the try counter".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generators

/// One thing the terminal does; expands to one or more APDUs.
#[derive(Debug, Clone)]
enum Step {
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// Header, `00`, a two-byte Lc, a body of `body_len` bytes (filled from `fill`), an optional
    /// two-byte Le: the shapes extended APDUs come in, right and wrong.
    ExtendedShaped {
        header: [u8; 4],
        lc: u16,
        body_len: usize,
        le: Option<u16>,
        fill: u64,
    },
    /// A command encoded by `Command::to_bytes` (short when it fits, otherwise extended).
    Apdu(Command),
    /// A command forced into extended form.
    ApduExtended(Command),
    /// `cmd` as a short chain with `chunk`-byte pieces; `pieces` cuts the chain short (leaving
    /// it pending for the next step to break); `get_response_inside` slips a GET RESPONSE
    /// after the first piece.
    Chain {
        cmd: Command,
        chunk: usize,
        pieces: Option<usize>,
        get_response_inside: bool,
    },
    /// A chain of `total` bytes (filled from `fill`), around the card's 16 KiB limit.
    LongChain {
        header: [u8; 4],
        total: usize,
        fill: u64,
    },
    /// `00 C0 00 00 le`.
    GetResponse(u8),
    /// APDUs valid somewhere in the life cycle (personalisation, the right PIN, SELECT, …).
    Known(Vec<Vec<u8>>),
}

/// Deterministic filler for long bodies (xorshift64*), so 70 000-byte APDUs shrink by length
/// and print as a seed.
fn filled(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn extended_bytes(c: &Command) -> Vec<u8> {
    let mut out = c.header().to_vec();
    if !c.data.is_empty() {
        out.push(0);
        out.extend((c.data.len() as u16).to_be_bytes());
        out.extend_from_slice(&c.data);
    }
    if let Some(le) = c.le {
        if c.data.is_empty() {
            out.push(0);
        }
        out.extend(((le % 65_536) as u16).to_be_bytes());
    }
    out
}

fn get_response(le: u8) -> Vec<u8> {
    vec![0x00, 0xC0, 0x00, 0x00, le]
}

impl Step {
    fn apdus(&self) -> Vec<Vec<u8>> {
        match self {
            Step::Raw(b) => vec![b.clone()],
            Step::ExtendedShaped {
                header,
                lc,
                body_len,
                le,
                fill,
            } => {
                let mut out = header.to_vec();
                out.push(0);
                out.extend(lc.to_be_bytes());
                out.extend(filled(*fill, *body_len));
                if let Some(le) = le {
                    out.extend(le.to_be_bytes());
                }
                vec![out]
            }
            Step::Apdu(c) => vec![c.to_bytes()],
            Step::ApduExtended(c) => vec![extended_bytes(c)],
            Step::Chain {
                cmd,
                chunk,
                pieces,
                get_response_inside,
            } => {
                let mut out: Vec<Vec<u8>> = split_for_chaining(cmd, *chunk)
                    .iter()
                    .map(Command::to_bytes)
                    .collect();
                if let Some(n) = pieces {
                    out.truncate((*n).max(1));
                }
                if *get_response_inside {
                    out.insert(1.min(out.len()), get_response(0));
                }
                out
            }
            Step::LongChain {
                header,
                total,
                fill,
            } => {
                let [cla, ins, p1, p2] = *header;
                let cmd = Command::new(cla, ins, p1, p2, filled(*fill, *total));
                split_for_chaining(&cmd, 255)
                    .iter()
                    .map(Command::to_bytes)
                    .collect()
            }
            Step::GetResponse(le) => vec![get_response(*le)],
            Step::Known(apdus) => apdus.clone(),
        }
    }
}

fn cla() -> impl Strategy<Value = u8> {
    // Weighted towards the classes the card takes, so most commands reach a handler.
    prop_oneof![
        6 => select(vec![0x00u8, 0x80]),
        3 => select(vec![0x84u8, 0x90, 0x10, 0x01, 0xFF]),
        1 => any::<u8>(),
    ]
}

/// Every instruction of `docs/card-os.md`, and random ones.
fn ins() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => select(vec![
            INS_SELECT,
            INS_GET_RESPONSE,
            INS_VERIFY,
            INS_RESET_RETRY_COUNTER,
            INS_GENERATE_KEY_PAIR,
            INS_GET_CHALLENGE,
            INS_GET_DATA,
            INS_REGISTER,
            INS_REGISTER_COMPLETE,
            INS_SIGN_DOWNLOAD_APPLICATION,
            INS_GET_RECEIPT,
            INS_STORE_DATA,
            INS_DELETE,
            INS_INSTALL,
            INS_LOAD,
            INS_SET_STATUS,
            INS_GET_STATUS,
            INS_TAMPER,
        ]),
        1 => any::<u8>(),
    ]
}

/// P1 P2: random, or a pair some command of the card takes (so handlers get past their P1/P2
/// check), or a GET DATA tag.
fn p1p2() -> impl Strategy<Value = (u8, u8)> {
    prop_oneof![
        2 => (any::<u8>(), any::<u8>()),
        2 => select(vec![
            (0x00u8, 0x00u8),
            (0x04, 0x00),
            (0x00, 0x80),
            (0x03, 0x80),
            (0x02, 0x00),
            (0x80, 0x00),
            (0x80, 0x01),
            (0x00, 0x01),
            (0x80, 0x7F),
            (0x80, 0x0F),
            (0x80, 0xFF),
            (0x40, 0x00),
            (0x80, 0x02),
            (0x40, 0x02),
        ]),
        1 => select(vec![
            TAG_ISSUER_ID,
            TAG_CARD_ID,
            TAG_CARD_DATA,
            TAG_KEY_INFORMATION,
            TAG_CARD_STATUS,
            TAG_RC,
            TAG_CARD_PUBLIC_KEY,
            TAG_IRC,
            0xDF34,
        ])
        .prop_map(|t| (t.to_be_bytes()[0], t.to_be_bytes()[1])),
    ]
}

fn dgi(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_be_bytes().to_vec();
    if value.len() < 0xFF {
        out.push(value.len() as u8);
    } else {
        out.push(0xFF);
        out.extend((value.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(value);
    out
}

/// Data fields: random, and shaped like what the card parses (TLVs of its tags, DGIs, PINs,
/// AIDs) so parsing gets past the first byte.
fn data() -> impl Strategy<Value = Vec<u8>> {
    let tags = select(vec![
        TAG_USER_INFO,
        TAG_ISSUER_CHALLENGE,
        TAG_RC_DER,
        TAG_IRC_DER,
        TAG_AUTHORIZATION,
        TAG_CERTIFIED_DATA,
        TAG_ISSUER_COMMAND,
        TAG_NONCE,
        TAG_DOWNLOAD_REQUEST,
        TAG_AUTHORIZATION_DIGEST,
        TAG_AID,
        0x30,
    ]);
    let dgis = select(vec![
        DGI_CARD_ID,
        DGI_SK,
        DGI_ISSUER_ANCHOR,
        DGI_DATA_ANCHOR,
        DGI_PIN,
        DGI_ISSUER_AUTHENTICATOR,
        DGI_CAPACITY,
        DGI_TIME_FLOOR,
        DGI_ISSUER_ID,
        DGI_CRL,
        0x7F7F,
    ]);
    prop_oneof![
        4 => vec(any::<u8>(), 0..600),
        1 => Just(Vec::new()),
        3 => vec((tags, vec(any::<u8>(), 0..300)), 1..3).prop_map(|tlvs| {
            tlvs.iter().flat_map(|(t, v)| tlv::encode(*t, v)).collect()
        }),
        2 => vec((dgis, vec(any::<u8>(), 0..40)), 1..4).prop_map(|ds| {
            ds.iter().flat_map(|(d, v)| dgi(*d, v)).collect()
        }),
        1 => vec(b'0'..=b'9', 0..14),
        1 => Just(PIN.as_bytes().to_vec()),
        1 => (5usize..=8).prop_map(|n| ISD_AID[..n].to_vec()),
        1 => vec(any::<u8>(), 5..=16),
    ]
}

fn le() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        3 => Just(None),
        2 => Just(Some(256)),
        1 => Just(Some(16)),
        1 => (1usize..=300).prop_map(Some),
        1 => (1usize..=65_536).prop_map(Some),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    (header(), data(), le()).prop_map(|([cla, ins, p1, p2], data, le)| Command {
        cla,
        ins,
        p1,
        p2,
        data,
        le,
    })
}

/// CLA INS P1 P2 of every row of `docs/card-os.md` (some P2 free), so data-field parsing is
/// reached often, or a random header.
fn header() -> impl Strategy<Value = [u8; 4]> {
    let documented = (
        select(vec![
            [0x00, INS_SELECT, 0x04, 0x00],
            [0x80, INS_GET_DATA, 0xDF, 0x30],
            [0x00, INS_GET_CHALLENGE, 0x00, 0x00],
            [0x00, INS_VERIFY, 0x00, 0x80],
            [0x00, INS_RESET_RETRY_COUNTER, 0x03, 0x80],
            [0x00, INS_GENERATE_KEY_PAIR, 0x00, 0x00],
            [0x80, INS_STORE_DATA, 0x00, 0x00],
            [0x80, INS_STORE_DATA, 0x80, 0x00],
            [0x80, INS_REGISTER, 0x00, 0x00],
            [0x80, INS_REGISTER_COMPLETE, 0x00, 0x00],
            [0x80, INS_SIGN_DOWNLOAD_APPLICATION, 0x00, 0x00],
            [0x80, INS_GET_RECEIPT, 0x00, 0x00],
            [0x80, INS_INSTALL, 0x02, 0x00],
            [0x80, INS_LOAD, 0x00, 0x00],
            [0x80, INS_LOAD, 0x80, 0x00],
            [0x80, INS_DELETE, 0x00, 0x00],
            [0x80, INS_GET_STATUS, 0x40, 0x00],
            [0x80, INS_GET_STATUS, 0x80, 0x02],
            [0x80, INS_GET_STATUS, 0x40, 0x02],
            [0x80, INS_SET_STATUS, 0x80, 0x7F],
            [0x80, INS_SET_STATUS, 0x80, 0x0F],
            [0x80, INS_SET_STATUS, 0x80, 0xFF],
            [0x80, INS_TAMPER, 0x00, 0x00],
        ]),
        prop_oneof![3 => Just(None), 1 => any::<u8>().prop_map(Some)],
    )
        .prop_map(|(mut h, p2)| {
            if let Some(p2) = p2 {
                h[3] = p2;
            }
            h
        });
    prop_oneof![
        2 => documented,
        3 => (cla(), ins(), p1p2()).prop_map(|(cla, ins, (p1, p2))| [cla, ins, p1, p2]),
    ]
}

fn extended_shaped(header: impl Strategy<Value = [u8; 4]>) -> impl Strategy<Value = Step> {
    let lc = prop_oneof![0u16..=600, 60_000u16..=65_535, any::<u16>()];
    (
        header,
        lc,
        0usize..4,
        -2i64..=3,
        0usize..70_000,
        proptest::option::of(any::<u16>()),
        any::<u64>(),
    )
        .prop_map(|(header, lc, shape, delta, free_len, le, fill)| {
            // Mostly a body matching Lc (give or take a few bytes), sometimes any length.
            let body_len = match shape {
                0 | 1 => usize::from(lc),
                2 => (i64::from(lc) + delta).max(0) as usize,
                _ => free_len,
            };
            Step::ExtendedShaped {
                header,
                lc,
                body_len,
                le,
                fill,
            }
        })
}

fn step(known: Vec<Vec<Vec<u8>>>) -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..300).prop_map(Step::Raw),
        1 => extended_shaped(header()),
        6 => command().prop_map(Step::Apdu),
        2 => command().prop_map(Step::ApduExtended),
        2 => (command(), 1usize..=255, proptest::option::of(1usize..4), any::<bool>()).prop_map(
            |(mut cmd, chunk, pieces, get_response_inside)| {
                cmd.cla |= CLA_CHAINING;
                Step::Chain {
                    cmd,
                    chunk,
                    pieces,
                    get_response_inside,
                }
            }
        ),
        1 => (header(), 15_000usize..18_000, any::<u64>()).prop_map(|(header, total, fill)| {
            Step::LongChain {
                header,
                total,
                fill,
            }
        }),
        2 => any::<u8>().prop_map(Step::GetResponse),
        1 => select(known).prop_map(Step::Known),
    ]
}

fn start() -> impl Strategy<Value = Start> {
    select(vec![
        Start::Blank,
        Start::Personalised,
        Start::PersonalisedPinVerified,
        Start::Registered,
        Start::RegisteredPinVerified,
    ])
}

// ---------------------------------------------------------------------------------------------
// CARD-8: arbitrary sequences

/// Boots the starting card (verifying the PIN if asked) and returns it with its state image.
fn started(f: &Fixture, start: Start) -> Result<(Driven, Vec<u8>), TestCaseError> {
    let (nvm, pin) = match start {
        Start::Blank => (&f.blank, false),
        Start::Personalised => (&f.personalised, false),
        Start::PersonalisedPinVerified => (&f.personalised, true),
        Start::Registered => (&f.registered, false),
        Start::RegisteredPinVerified => (&f.registered, true),
    };
    let mut d = Driven::boot(nvm);
    if pin {
        let r = d.send(&verify_pin_apdu())?;
        prop_assert_eq!(sw_of(&r), 0x9000, "the right PIN verifies");
    }
    let image = d.card.image().to_vec();
    Ok((d, image))
}

fn run_sequence(f: &Fixture, start: Start, steps: &[Step]) -> Result<(), TestCaseError> {
    let (mut d, image_before) = started(f, start)?;
    d.successes = 0;
    for step in steps {
        for apdu in step.apdus() {
            d.send(&apdu)?;
        }
    }
    let d = d.reboot()?;
    if d.successes == 0 {
        // Without a single success only a wrong PIN may have left a trace (its spent tries,
        // checked command by command above).
        let mut old = PersistentState::decode(&image_before).map_err(|e| d.fail(e.to_string()))?;
        let new = PersistentState::decode(d.card.image()).map_err(|e| d.fail(e.to_string()))?;
        if let (Some(o), Some(n)) = (old.pin.as_mut(), new.pin.as_ref()) {
            o.tries_left = n.tries_left;
        }
        if old.encode() != d.card.image() {
            return Err(d.fail("STATE CHANGED although no command answered success".into()));
        }
    }
    Ok(())
}

#[test]
fn arbitrary_apdu_sequences_never_panic_and_always_answer_a_status_word() {
    let w = World::new(WORLD_SEED);
    let f = fixture(&w);
    let strategy = (start(), vec(step(f.known.clone()), 1..40));
    run(512, 0xC8D8_0001, strategy, |(start, steps)| {
        run_sequence(&f, start, &steps)
    });
}

#[test]
fn random_bytes_never_panic_nor_change_state_without_success() {
    // Only arbitrary bytes, short and extended-length-shaped: these must essentially never
    // authorize anything. Strictly: with no answer 9000/61xx the image is byte-identical.
    let w = World::new(WORLD_SEED);
    let f = fixture(&w);
    let raw = prop_oneof![
        4 => vec(any::<u8>(), 0..300).prop_map(Step::Raw),
        1 => extended_shaped(any::<[u8; 4]>()),
    ];
    let strategy = (start(), vec(raw, 1..40));
    run(256, 0xC8D8_0002, strategy, |(start, steps)| {
        let (mut d, image_before) = started(&f, start)?;
        for step in &steps {
            for apdu in step.apdus() {
                d.send(&apdu)?;
            }
        }
        let d = d.reboot()?;
        if d.successes == 0 && d.card.image() != image_before.as_slice() {
            return Err(d.fail("random bytes changed the state without a success".into()));
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// STO: mutations of a valid store sequence

/// A registered card and a complete, valid store sequence for it.
struct StoreScenario {
    nvm: Vec<u8>,
    /// GET CHALLENGE, INSTALL (one extended APDU), LOAD blocks.
    extended: Vec<Vec<u8>>,
    /// The same with INSTALL as a chain of short APDUs.
    short: Vec<Vec<u8>>,
    /// The item the SA authorizes, as the card must keep it.
    item: Item,
    rc: pki::Certificate,
}

const ITEM: &[u8] = b"fuzz-item";

fn item_data() -> Vec<u8> {
    (0..600u32).map(|i| (i * 7 + 3) as u8).collect()
}

fn store_scenario(w: &World) -> StoreScenario {
    let (c, rc) = w.registered();
    let nvm = nvm_of(c.into_channel().into_card());
    // The challenge the card will give: the first one from CARD_RNG_SEED (VERIFY draws none).
    let mut probe = Driven::boot(&nvm);
    probe.send(&verify_pin_apdu()).expect("verify");
    let get_challenge = Command::new(0x00, INS_GET_CHALLENGE, 0, 0, []).with_le(16);
    let r = probe.send(&get_challenge.to_bytes()).expect("challenge");
    assert_eq!(sw_of(&r), 0x9000);
    let challenge = Challenge(r[..16].try_into().expect("16-byte challenge"));

    let data = item_data();
    let sdi = w.sdi(Operation::Store, ITEM, 1, &data);
    let sa = w.sa(Path::ViaIssuer, &sdi, challenge, &rc);
    let install = Command::new(
        0x80,
        INS_INSTALL,
        0x02,
        0x00,
        tlv::encode(TAG_AUTHORIZATION, &sa.to_der()),
    );
    // The last LOAD answers the receipt: whole to an extended Le, in pieces (61xx, then
    // GET RESPONSE) to a short one.
    let load = |last_le: usize| -> Vec<Vec<u8>> {
        let blocks: Vec<&[u8]> = data.chunks(240).collect();
        blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let last = i + 1 == blocks.len();
                let c = Command::new(0x80, INS_LOAD, if last { 0x80 } else { 0 }, i as u8, *b);
                if last {
                    c.with_le(last_le).to_bytes()
                } else {
                    c.to_bytes()
                }
            })
            .collect()
    };
    let mut extended = vec![get_challenge.to_bytes(), install.to_bytes()];
    extended.extend(load(65_536));
    let mut short = vec![get_challenge.to_bytes()];
    short.extend(
        split_for_chaining(&install, 255)
            .iter()
            .map(Command::to_bytes),
    );
    short.extend(load(256));
    // As many GET RESPONSEs as the receipt needs (found by running the sequence once).
    let mut dry = Driven::boot(&nvm);
    dry.send(&verify_pin_apdu()).expect("verify");
    let mut last = Vec::new();
    for apdu in &short {
        last = dry.send(apdu).expect("valid sequence");
    }
    while sw_of(&last) >> 8 == 0x61 {
        short.push(get_response(0));
        last = dry.send(&get_response(0)).expect("GET RESPONSE");
    }
    assert_eq!(
        sw_of(&last),
        0x9000,
        "the valid short sequence ends in 9000"
    );
    StoreScenario {
        nvm,
        extended,
        short,
        item: Item {
            item_id: sdi.item_id.clone(),
            version: sdi.version,
            owner: sdi.owner.clone(),
            policy: sdi.policy,
            digest: sha256(&data),
            data,
        },
        rc,
    }
}

/// One change to the sequence. Indices pick the APDU and the byte.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte anywhere with a non-zero mask.
    Flip { apdu: Index, at: Index, mask: u8 },
    /// XOR one byte of the header or length fields (the first 7 bytes).
    FlipHeader { apdu: Index, at: usize, mask: u8 },
    /// Keep only the first bytes.
    Truncate { apdu: Index, keep: Index },
    /// Append bytes.
    Extend { apdu: Index, bytes: Vec<u8> },
    /// Leave an APDU out.
    Drop { apdu: Index },
    /// Send an APDU twice.
    Duplicate { apdu: Index },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), any::<Index>(), 1u8..=255)
            .prop_map(|(apdu, at, mask)| Mutation::Flip { apdu, at, mask }),
        3 => (any::<Index>(), 0usize..7, 1u8..=255)
            .prop_map(|(apdu, at, mask)| Mutation::FlipHeader { apdu, at, mask }),
        1 => (any::<Index>(), any::<Index>())
            .prop_map(|(apdu, keep)| Mutation::Truncate { apdu, keep }),
        1 => (any::<Index>(), vec(any::<u8>(), 1..4))
            .prop_map(|(apdu, bytes)| Mutation::Extend { apdu, bytes }),
        1 => any::<Index>().prop_map(|apdu| Mutation::Drop { apdu }),
        1 => any::<Index>().prop_map(|apdu| Mutation::Duplicate { apdu }),
    ]
}

fn mutate(seq: &mut Vec<Vec<u8>>, m: &Mutation) {
    if seq.is_empty() {
        return;
    }
    let n = seq.len();
    match m {
        Mutation::Flip { apdu, at, mask } => {
            let a = &mut seq[apdu.index(n)];
            if !a.is_empty() {
                let i = at.index(a.len());
                a[i] ^= mask;
            }
        }
        Mutation::FlipHeader { apdu, at, mask } => {
            let a = &mut seq[apdu.index(n)];
            if let Some(b) = a.get_mut(*at) {
                *b ^= mask;
            }
        }
        Mutation::Truncate { apdu, keep } => {
            let a = &mut seq[apdu.index(n)];
            let keep = keep.index(a.len().max(1));
            a.truncate(keep);
        }
        Mutation::Extend { apdu, bytes } => {
            let i = apdu.index(n);
            seq[i].extend_from_slice(bytes);
        }
        Mutation::Drop { apdu } => {
            seq.remove(apdu.index(n));
        }
        Mutation::Duplicate { apdu } => {
            let i = apdu.index(n);
            let a = seq[i].clone();
            seq.insert(i, a);
        }
    }
}

/// Runs `seq` on a fresh copy of the scenario's card (PIN verified) and checks that the card
/// holds either nothing or exactly the authorized item, in its state, its status and its
/// signed listing.
fn run_store(w: &World, s: &StoreScenario, seq: &[Vec<u8>]) -> Result<bool, TestCaseError> {
    let mut d = Driven::boot(&s.nvm);
    d.send(&verify_pin_apdu())?;
    for apdu in seq {
        d.send(apdu)?;
    }
    let d = d.reboot()?;
    let state = PersistentState::decode(d.card.image()).map_err(|e| d.fail(e.to_string()))?;
    let stored = match state.items.as_slice() {
        [] => false,
        [only] if *only == s.item => true,
        other => {
            return Err(d.fail(format!(
                "UNAUTHORIZED STORE: the card holds {:?}",
                other
                    .iter()
                    .map(|i| (i.item_id.clone(), i.version, i.data.len()))
                    .collect::<Vec<_>>()
            )))
        }
    };
    prop_assert_eq!(
        state.receipt_counter,
        u64::from(stored),
        "one receipt per store"
    );
    let transcript = d.transcript.clone();
    let mut c = w.client(d.card);
    let status = c.status().map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(status.items, u16::from(stored));
    if status.life_cycle == LifeCycle::InUse.gp_code() {
        let nonce = Nonce::new(b"after the fuzz").expect("nonce");
        let l = c
            .listing(nonce.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("listing: {e}\ntranscript:\n{transcript}")))?;
        let l = verify_listing(&l, &s.rc, &nonce)
            .map_err(|e| TestCaseError::fail(format!("listing verifies: {e}")))?;
        let items = l.contents.items();
        prop_assert_eq!(items.len(), usize::from(stored));
        if let Some(it) = items.first() {
            prop_assert_eq!(&it.item_id, &s.item.item_id);
            prop_assert_eq!(it.data_digest, s.item.digest);
            prop_assert_eq!(it.version, s.item.version);
        }
    }
    Ok(stored)
}

#[test]
fn the_unmutated_store_sequence_stores_the_item() {
    // The mutation property below is only meaningful if the sequence it mutates works.
    let w = World::new(WORLD_SEED);
    let s = store_scenario(&w);
    for seq in [&s.extended, &s.short] {
        match run_store(&w, &s, seq) {
            Ok(stored) => assert!(stored, "the valid sequence stores the item"),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn mutated_store_sequences_store_nothing_but_the_authorized_item() {
    let w = World::new(WORLD_SEED);
    let s = store_scenario(&w);
    let strategy = (any::<bool>(), vec(mutation(), 1..=4));
    run(512, 0xC8D8_0003, strategy, |(short, mutations)| {
        let mut seq = if short {
            s.short.clone()
        } else {
            s.extended.clone()
        };
        for m in &mutations {
            mutate(&mut seq, m);
        }
        run_store(&w, &s, &seq).map(drop)
    });
}
