//! APDU transcripts: card tests written as readable `>>`/`<<` sessions, and the runner that
//! plays them against a card and says exactly where and how the card answered differently.
//!
//! ```text
//! # Select the card manager.
//! >> 00 A4 04 00 08 A000000151000000
//! << 6F * 9000
//! # Ask for a challenge and keep it.
//! >> 80 84 00 00 08
//! << {challenge:8} 9000
//! >> 80 82 00 00 08 {challenge}
//! << 9000
//! ```
//!
//! - `# …` starts a comment, on its own line or after a command or response; blank lines are
//!   ignored; whitespace inside hex is ignored.
//! - `>> hex` is a command; `{name}` inserts the bytes of a variable.
//! - `<< pattern` is the expected response to the command before it. Hex bytes match
//!   themselves, `..` any one byte, `*` any run of bytes (possibly empty), `{name:N}` any N
//!   bytes that are then stored in variable `name`, and `{name}` the variable's bytes. The last
//!   two bytes of the pattern are the status word, written as hex or `..` (`<< 9000` expects no
//!   data).
//!
//! The whole transcript is checked for syntax before the first command is sent.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// Why a transcript did not run to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranscriptError {
    /// A line that is not a comment, a `>>` command or a `<<` response.
    UnrecognizedLine { line: usize, text: String },
    /// A command line that is not whole hex bytes and `{name}` variables.
    InvalidHex { line: usize, text: String },
    /// A response line that is not a valid pattern.
    InvalidPattern {
        line: usize,
        text: String,
        reason: &'static str,
    },
    /// A command with no `<<` line after it.
    MissingResponse { line: usize },
    /// A `<<` line with no command before it.
    UnexpectedResponse { line: usize },
    /// `{name}` used before anything was captured into or preset for `name`.
    UnknownVariable { line: usize, name: String },
    /// The card's response does not match the pattern.
    Mismatch {
        line: usize,
        command_line: usize,
        command: Vec<u8>,
        expected: String,
        actual: Vec<u8>,
    },
}

impl fmt::Display for TranscriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TranscriptError::UnrecognizedLine { line, text } => write!(
                f,
                "transcript line {line}: expected `>>`, `<<` or `#`, found {text:?}"
            ),
            TranscriptError::InvalidHex { line, text } => write!(
                f,
                "transcript line {line}: command is not hex bytes and {{variables}}: {text:?}"
            ),
            TranscriptError::InvalidPattern { line, text, reason } => {
                write!(f, "transcript line {line}: {reason}: {text:?}")
            }
            TranscriptError::MissingResponse { line } => write!(
                f,
                "transcript line {line}: command has no `<<` response line after it"
            ),
            TranscriptError::UnexpectedResponse { line } => write!(
                f,
                "transcript line {line}: `<<` response line without a command before it"
            ),
            TranscriptError::UnknownVariable { line, name } => {
                write!(f, "transcript line {line}: unknown variable {{{name}}}")
            }
            TranscriptError::Mismatch {
                line,
                command_line,
                command,
                expected,
                actual,
            } => write!(
                f,
                "transcript line {line}: response does not match\n  \
                 command  (line {command_line}): {}\n  \
                 expected (line {line}): {expected}\n  \
                 actual:            {}",
                spaced_hex(command),
                spaced_hex(actual),
            ),
        }
    }
}

impl std::error::Error for TranscriptError {}

/// Plays `transcript` against `exchange` (command bytes in, response bytes out), returning how
/// many commands were exchanged.
pub fn run(
    transcript: &str,
    exchange: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Result<usize, TranscriptError> {
    run_with_variables(transcript, &mut BTreeMap::new(), exchange)
}

/// Like [`run`], starting from `variables` and leaving every capture in it, so a test can
/// compute a value from a captured challenge between two transcripts, or preset one.
pub fn run_with_variables(
    transcript: &str,
    variables: &mut BTreeMap<String, Vec<u8>>,
    exchange: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Result<usize, TranscriptError> {
    let steps = parse(transcript)?;
    for step in &steps {
        let command = step.command(variables)?;
        let actual = exchange(&command);
        let pattern = step.resolved_pattern(variables)?;
        match match_response(&pattern, &actual) {
            Some(captures) => variables.extend(captures),
            None => {
                return Err(TranscriptError::Mismatch {
                    line: step.response_line,
                    command_line: step.command_line,
                    command,
                    expected: step.expected.clone(),
                    actual,
                })
            }
        }
    }
    Ok(steps.len())
}

/// One command and the response expected to it.
struct Step {
    command_line: usize,
    command: Vec<Piece>,
    response_line: usize,
    expected: String,
    data: Vec<Token>,
    status: [Token; 2],
}

impl Step {
    fn command(&self, variables: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, TranscriptError> {
        let mut out = Vec::new();
        for piece in &self.command {
            match piece {
                Piece::Bytes(bytes) => out.extend_from_slice(bytes),
                Piece::Variable(name) => {
                    out.extend_from_slice(lookup(variables, name, self.command_line)?)
                }
            }
        }
        Ok(out)
    }

    /// The pattern with `{name}` references replaced by the variables' current bytes.
    fn resolved_pattern(
        &self,
        variables: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Pattern, TranscriptError> {
        let mut data = Vec::with_capacity(self.data.len());
        for token in &self.data {
            match token {
                Token::Variable(name) => data.extend(
                    lookup(variables, name, self.response_line)?
                        .iter()
                        .map(|&b| Token::Byte(b)),
                ),
                other => data.push(other.clone()),
            }
        }
        Ok(Pattern {
            data,
            status: self.status.clone(),
        })
    }
}

fn lookup<'v>(
    variables: &'v BTreeMap<String, Vec<u8>>,
    name: &str,
    line: usize,
) -> Result<&'v [u8], TranscriptError> {
    variables
        .get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| TranscriptError::UnknownVariable {
            line,
            name: name.to_owned(),
        })
}

/// Part of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Bytes(Vec<u8>),
    Variable(String),
}

/// Part of a response pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Byte(u8),
    AnyByte,
    AnyRun,
    Capture { name: String, len: usize },
    Variable(String),
}

/// A response pattern with its variables resolved.
struct Pattern {
    data: Vec<Token>,
    status: [Token; 2],
}

fn parse(transcript: &str) -> Result<Vec<Step>, TranscriptError> {
    let mut steps = Vec::new();
    let mut pending: Option<(usize, Vec<Piece>)> = None;
    for (index, raw) in transcript.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        if let Some(rest) = content.strip_prefix(">>") {
            if let Some((command_line, _)) = pending {
                return Err(TranscriptError::MissingResponse { line: command_line });
            }
            let command = parse_command(rest).ok_or_else(|| TranscriptError::InvalidHex {
                line,
                text: rest.trim().to_owned(),
            })?;
            pending = Some((line, command));
        } else if let Some(rest) = content.strip_prefix("<<") {
            let Some((command_line, command)) = pending.take() else {
                return Err(TranscriptError::UnexpectedResponse { line });
            };
            let expected = rest.trim().to_owned();
            let (data, status) =
                parse_pattern(rest).map_err(|reason| TranscriptError::InvalidPattern {
                    line,
                    text: expected.clone(),
                    reason,
                })?;
            steps.push(Step {
                command_line,
                command,
                response_line: line,
                expected,
                data,
                status,
            });
        } else {
            return Err(TranscriptError::UnrecognizedLine {
                line,
                text: content.to_owned(),
            });
        }
    }
    match pending {
        Some((line, _)) => Err(TranscriptError::MissingResponse { line }),
        None => Ok(steps),
    }
}

fn without_whitespace(text: &str) -> Vec<char> {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Command hex with `{name}` variables; `None` on anything else or an odd number of digits.
fn parse_command(text: &str) -> Option<Vec<Piece>> {
    let chars = without_whitespace(text);
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '{' {
            let (name, next) = read_braces(&chars, i)?;
            if !is_name(&name) {
                return None;
            }
            pieces.push(Piece::Variable(name));
            i = next;
        } else {
            let start = i;
            while i < chars.len() && chars[i] != '{' {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            pieces.push(Piece::Bytes(hex::decode(digits).ok()?));
        }
    }
    Some(pieces)
}

/// The text between `{` at `open` and the next `}`, and the index after the `}`.
fn read_braces(chars: &[char], open: usize) -> Option<(String, usize)> {
    let close = open + chars[open..].iter().position(|&c| c == '}')?;
    Some((chars[open + 1..close].iter().collect(), close + 1))
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A response pattern, split into the data part and the two status word bytes.
fn parse_pattern(text: &str) -> Result<(Vec<Token>, [Token; 2]), &'static str> {
    let chars = without_whitespace(text);
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                tokens.push(Token::AnyRun);
                i += 1;
            }
            '.' => {
                if chars.get(i + 1) != Some(&'.') {
                    return Err("`.` must come in pairs (`..` is any one byte)");
                }
                tokens.push(Token::AnyByte);
                i += 2;
            }
            '{' => {
                let (inner, next) = read_braces(&chars, i).ok_or("unclosed `{`")?;
                tokens.push(parse_braces(&inner)?);
                i = next;
            }
            c if c.is_ascii_hexdigit() => {
                let low = chars
                    .get(i + 1)
                    .and_then(|c| c.to_digit(16))
                    .ok_or("hex digits must come in pairs")?;
                let high = c.to_digit(16).ok_or("invalid hex digit")?;
                tokens.push(Token::Byte((high * 16 + low) as u8));
                i += 2;
            }
            _ => return Err("expected hex bytes, `..`, `*` or `{…}`"),
        }
    }
    let status_at = tokens
        .len()
        .checked_sub(2)
        .ok_or("a response needs a two-byte status word at the end")?;
    let status: Vec<Token> = tokens.split_off(status_at);
    match <[Token; 2]>::try_from(status) {
        Ok(status @ [Token::Byte(_) | Token::AnyByte, Token::Byte(_) | Token::AnyByte]) => {
            Ok((tokens, status))
        }
        _ => Err("the status word must be the last two bytes, in hex or `..`"),
    }
}

/// `{name:N}` captures, `{name}` refers.
fn parse_braces(inner: &str) -> Result<Token, &'static str> {
    match inner.split_once(':') {
        Some((name, len)) => {
            let len = len
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or("a capture `{name:N}` needs a byte count N of at least 1")?;
            if !is_name(name) {
                return Err("variable names are letters, digits, `_` and `-`");
            }
            Ok(Token::Capture {
                name: name.to_owned(),
                len,
            })
        }
        None if is_name(inner) => Ok(Token::Variable(inner.to_owned())),
        None => Err("variable names are letters, digits, `_` and `-`"),
    }
}

/// The captures made when `actual` matches `pattern`, or `None` when it does not.
fn match_response(pattern: &Pattern, actual: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let split = actual.len().checked_sub(2)?;
    let (data, sw) = actual.split_at(split);
    let sw_matches = pattern
        .status
        .iter()
        .zip(sw)
        .all(|(token, &byte)| match token {
            Token::Byte(b) => *b == byte,
            _ => true,
        });
    if !sw_matches {
        return None;
    }
    let mut captures = Vec::new();
    let mut failed = HashSet::new();
    match_data(&pattern.data, data, &mut captures, &mut failed).then_some(captures)
}

/// Backtracking match of `tokens` against all of `data`; `failed` remembers (tokens left,
/// bytes left) states already known not to match, which keeps several `*` polynomial.
fn match_data(
    tokens: &[Token],
    data: &[u8],
    captures: &mut Vec<(String, Vec<u8>)>,
    failed: &mut HashSet<(usize, usize)>,
) -> bool {
    let state = (tokens.len(), data.len());
    if failed.contains(&state) {
        return false;
    }
    let matched = match tokens.split_first() {
        None => data.is_empty(),
        Some((Token::Byte(b), rest)) => {
            data.first() == Some(b) && match_data(rest, &data[1..], captures, failed)
        }
        Some((Token::AnyByte, rest)) => {
            !data.is_empty() && match_data(rest, &data[1..], captures, failed)
        }
        Some((Token::AnyRun, rest)) => {
            (0..=data.len()).any(|skip| match_data(rest, &data[skip..], captures, failed))
        }
        Some((Token::Capture { name, len }, rest)) => {
            data.len() >= *len && {
                captures.push((name.clone(), data[..*len].to_vec()));
                let ok = match_data(rest, &data[*len..], captures, failed);
                if !ok {
                    captures.pop();
                }
                ok
            }
        }
        // Resolved before matching; an unresolved reference matches nothing.
        Some((Token::Variable(_), _)) => false,
    };
    if !matched {
        failed.insert(state);
    }
    matched
}

/// `00 A4 04 00`: how commands and responses appear in failure messages.
fn spaced_hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(nothing)".to_owned();
    }
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Records an APDU session on any [`terminal::CardChannel`] in this module's transcript format,
/// so a deterministic scenario can be kept as a readable golden file and replayed by [`run`].
pub struct Recorder<C: terminal::CardChannel> {
    inner: C,
    text: String,
}

impl<C: terminal::CardChannel> Recorder<C> {
    pub fn new(inner: C) -> Self {
        Recorder {
            inner,
            text: String::new(),
        }
    }

    /// Adds a `# comment` line before the next exchange.
    pub fn note(&mut self, comment: &str) {
        for line in comment.lines() {
            self.text.push_str("# ");
            self.text.push_str(line);
            self.text.push('\n');
        }
    }

    /// The transcript so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.inner
    }
}

impl<C: terminal::CardChannel> terminal::CardChannel for Recorder<C> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, terminal::ChannelError> {
        let response = self.inner.transmit(command)?;
        self.text.push_str(">> ");
        self.text.push_str(&hex::encode_upper(command));
        self.text.push_str("\n<< ");
        if response.len() > 2 {
            self.text
                .push_str(&hex::encode_upper(&response[..response.len() - 2]));
            self.text.push(' ');
        }
        self.text.push_str(&hex::encode_upper(
            &response[response.len().saturating_sub(2)..],
        ));
        self.text.push('\n');
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted card: answers each command from `answers` in turn and records the commands.
    struct Scripted {
        answers: Vec<Vec<u8>>,
        seen: Vec<Vec<u8>>,
    }

    impl Scripted {
        fn new(answers: &[&str]) -> Scripted {
            Scripted {
                answers: answers
                    .iter()
                    .rev()
                    .map(|a| hex::decode(a.replace(' ', "")).unwrap())
                    .collect(),
                seen: Vec::new(),
            }
        }

        fn exchange(&mut self, command: &[u8]) -> Vec<u8> {
            self.seen.push(command.to_vec());
            self.answers.pop().unwrap_or_default()
        }
    }

    fn run_scripted(
        transcript: &str,
        answers: &[&str],
    ) -> (Result<usize, TranscriptError>, Vec<Vec<u8>>) {
        let mut card = Scripted::new(answers);
        let result = run(transcript, &mut |c| card.exchange(c));
        (result, card.seen)
    }

    #[test]
    fn exact_match_and_comments() {
        let transcript = "
            # Select the card manager.
            >> 00 A4 04 00 08 A000000151000000   # GlobalPlatform ISD
            << 6F 02 8400 9000

            >> 00 CA 00 66
            << 9000
        ";
        let (result, seen) = run_scripted(transcript, &["6F028400 9000", "9000"]);
        assert_eq!(result, Ok(2));
        assert_eq!(
            seen,
            vec![
                hex::decode("00A4040008A000000151000000").unwrap(),
                hex::decode("00CA0066").unwrap(),
            ]
        );
    }

    #[test]
    fn wildcards() {
        let cases = [
            ("6F.. 9000", "6F01 9000", true),
            ("6F.. 9000", "6F 9000", false),
            ("6F.. 9000", "6F0102 9000", false),
            ("6F * 9000", "6F 9000", true),
            ("6F * 9000", "6F01020304 9000", true),
            ("* 01 * 9000", "AA01BB01CC 9000", true),
            ("* 01 * 9000", "AABBCC 9000", false),
            ("* 9000", "9000", true),
            ("63 ..", "63C2", true),
            (".. ..", "6A82", true),
            ("9000", "6A82", false),
            ("9000", "90", false),
            ("9000", "", false),
            ("61 .. ", "01 6110", false),
        ];
        for (pattern, response, should_match) in cases {
            let transcript = format!(">> 00\n<< {pattern}");
            let (result, _) = run_scripted(&transcript, &[response]);
            assert_eq!(result.is_ok(), should_match, "{pattern} vs {response}");
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        // Without memoisation this pattern is exponential in the number of `*`.
        let pattern = format!("{} 02 9000", "* 01 ".repeat(20));
        let response = format!("{}9000", "01".repeat(60));
        let transcript = format!(">> 00\n<< {pattern}");
        let (result, _) = run_scripted(&transcript, &[&response]);
        assert!(matches!(result, Err(TranscriptError::Mismatch { .. })));
    }

    #[test]
    fn mismatch_reports_line_command_pattern_and_response() {
        let transcript = "# header\n>> 00 A4 04 00 02 3F00\n<< 6F * 9000\n>> 00 B0 00 00 04\n<< 0102 .. .. 9000\n";
        let (result, _) = run_scripted(transcript, &["6F00 9000", "6A82"]);
        let err = result.unwrap_err();
        assert_eq!(
            err,
            TranscriptError::Mismatch {
                line: 5,
                command_line: 4,
                command: hex::decode("00B0000004").unwrap(),
                expected: "0102 .. .. 9000".to_owned(),
                actual: hex::decode("6A82").unwrap(),
            }
        );
        assert_eq!(
            err.to_string(),
            "transcript line 5: response does not match\n  \
             command  (line 4): 00 B0 00 00 04\n  \
             expected (line 5): 0102 .. .. 9000\n  \
             actual:            6A 82"
        );
    }

    #[test]
    fn captures_feed_later_commands() {
        let transcript = "
            >> 80 84 00 00 08
            << {challenge:8} 9000
            >> 80 82 00 00 0A {challenge} {tail}
            << {challenge} * 9000
        ";
        let mut variables = BTreeMap::from([("tail".to_owned(), vec![0xEE, 0xFF])]);
        let mut card = Scripted::new(&["1122334455667788 9000", "1122334455667788 AA 9000"]);
        let result = run_with_variables(transcript, &mut variables, &mut |c| card.exchange(c));
        assert_eq!(result, Ok(2));
        assert_eq!(
            card.seen[1],
            hex::decode("808200000A1122334455667788EEFF").unwrap()
        );
        assert_eq!(
            variables.get("challenge"),
            Some(&hex::decode("1122334455667788").unwrap())
        );
    }

    #[test]
    fn capture_needs_enough_bytes() {
        let (result, _) = run_scripted(">> 00\n<< {x:4} 9000", &["010203 9000"]);
        assert!(matches!(
            result,
            Err(TranscriptError::Mismatch { line: 2, .. })
        ));
    }

    #[test]
    fn capture_next_to_star_takes_the_tail() {
        let transcript = ">> 00\n<< * {last:2} 9000\n>> {last}\n<< 9000";
        let (result, seen) = run_scripted(transcript, &["0102030405 9000", "9000"]);
        assert_eq!(result, Ok(2));
        assert_eq!(seen[1], vec![0x04, 0x05]);
    }

    #[test]
    fn unknown_variable() {
        let (result, seen) = run_scripted(">> 00 {nonce}\n<< 9000", &[]);
        assert_eq!(
            result,
            Err(TranscriptError::UnknownVariable {
                line: 1,
                name: "nonce".to_owned()
            })
        );
        assert!(seen.is_empty());
    }

    #[test]
    fn syntax_errors_before_any_exchange() {
        let pattern = |line, text: &str, reason| TranscriptError::InvalidPattern {
            line,
            text: text.to_owned(),
            reason,
        };
        let cases = [
            (
                ">> 00\n<< 9000\n>> 0",
                TranscriptError::InvalidHex {
                    line: 3,
                    text: "0".to_owned(),
                },
            ),
            (
                ">> 00 G1\n<< 9000",
                TranscriptError::InvalidHex {
                    line: 1,
                    text: "00 G1".to_owned(),
                },
            ),
            (
                ">> 00\n<< 9000\n>> 00",
                TranscriptError::MissingResponse { line: 3 },
            ),
            (
                ">> 00\n>> 00\n<< 9000",
                TranscriptError::MissingResponse { line: 1 },
            ),
            ("<< 9000", TranscriptError::UnexpectedResponse { line: 1 }),
            (
                "00 A4",
                TranscriptError::UnrecognizedLine {
                    line: 1,
                    text: "00 A4".to_owned(),
                },
            ),
            (
                ">> 00\n<< 90",
                pattern(
                    2,
                    "90",
                    "a response needs a two-byte status word at the end",
                ),
            ),
            (
                ">> 00\n<< 9000 *",
                pattern(
                    2,
                    "9000 *",
                    "the status word must be the last two bytes, in hex or `..`",
                ),
            ),
            (
                ">> 00\n<< {x:0} 9000",
                pattern(
                    2,
                    "{x:0} 9000",
                    "a capture `{name:N}` needs a byte count N of at least 1",
                ),
            ),
        ];
        for (transcript, expected) in cases {
            let (result, seen) = run_scripted(transcript, &["9000", "9000"]);
            assert_eq!(result, Err(expected), "{transcript:?}");
            assert!(seen.is_empty(), "{transcript:?} sent commands");
        }
    }

    #[test]
    fn pattern_errors_name_the_problem() {
        assert_eq!(
            parse_pattern("6F . 9000").unwrap_err(),
            "`.` must come in pairs (`..` is any one byte)"
        );
        assert_eq!(
            parse_pattern("6F 9").unwrap_err(),
            "hex digits must come in pairs"
        );
        assert_eq!(parse_pattern("{x:2 9000").unwrap_err(), "unclosed `{`");
        assert_eq!(
            parse_pattern("{a.b} 9000").unwrap_err(),
            "variable names are letters, digits, `_` and `-`"
        );
    }

    #[test]
    fn empty_transcript_runs_nothing() {
        assert_eq!(run_scripted("# nothing\n\n", &[]).0, Ok(0));
    }
}
