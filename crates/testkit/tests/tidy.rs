//! The architecture rules of `STYLE.md` as a test (rust-analyzer's "tidy" idea): the cores do
//! no IO (rule 1), only `crypto` names a crypto library (rule 2), only store modules use sqlx
//! and only HTTP/web modules use axum (rule 3), `main.rs` only wires (rule 8), no grab-bag
//! module names, and no `unwrap`/`expect` in the cores without an `// Invariant:` comment.
//!
//! Plain text scans, no parser and no new dependency: they can be fooled on purpose, but they
//! catch the ordinary slip. Every failure names the file, the line and the rule.

use std::fs;
use std::path::{Path, PathBuf};

/// The sans-IO cores (STYLE rule 1).
const CORES: &[&str] = &["apdu", "pki", "protocol", "card"];
/// The one crate allowed to name a crypto library (STYLE rule 2).
const CRYPTO_CRATE: &str = "crypto";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Every crate directory under `crates/` (those with a Cargo.toml), sorted.
fn crate_dirs() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(workspace_root().join("crates"))
        .expect("read crates/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .map(|p| {
            let name = p
                .file_name()
                .expect("dir name")
                .to_string_lossy()
                .into_owned();
            (name, p)
        })
        .collect();
    out.sort();
    out
}

/// Every `.rs` file under `dir`, recursively, sorted (empty if `dir` does not exist).
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(workspace_root())
        .unwrap_or(p)
        .display()
        .to_string()
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The code of a source file, line by line: comments and the contents of string and char
/// literals blanked out (so a rule quoted in a comment, a doc example or a message is not a
/// hit). A small lexer: line and nested block comments, strings that span lines, raw strings,
/// char literals versus lifetimes.
fn code_lines(text: &str) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        LineComment,
        BlockComment(usize),
        Str,
        RawStr(usize),
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut state = State::Code;
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match state {
            State::Code => {
                let prev_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
                if c == '/' && next == Some('/') {
                    state = State::LineComment;
                    out.push(' ');
                } else if c == '/' && next == Some('*') {
                    state = State::BlockComment(1);
                    out.push_str("  ");
                    i += 1;
                } else if c == '"' {
                    state = State::Str;
                    out.push('"');
                } else if c == 'r' && !prev_ident && matches!(next, Some('"') | Some('#')) && {
                    let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
                    chars.get(i + 1 + hashes) == Some(&'"')
                } {
                    let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
                    state = State::RawStr(hashes);
                    out.push('r');
                    out.push_str(&"#".repeat(hashes));
                    out.push('"');
                    i += hashes + 1;
                } else if c == '\'' {
                    // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
                    let len = if next == Some('\\') {
                        chars
                            .get(i + 3..)
                            .and_then(|rest| rest.iter().position(|&q| q == '\''))
                            .map(|p| p + 4)
                    } else if chars.get(i + 2) == Some(&'\'') {
                        Some(3)
                    } else {
                        None
                    };
                    match len {
                        Some(n) => {
                            out.push('\'');
                            out.push_str(&" ".repeat(n - 2));
                            out.push('\'');
                            i += n - 1;
                        }
                        None => out.push('\''),
                    }
                } else {
                    out.push(c);
                }
            }
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                }
                out.push(blank(c));
            }
            State::BlockComment(depth) => {
                if c == '*' && next == Some('/') {
                    state = if depth == 1 {
                        State::Code
                    } else {
                        State::BlockComment(depth - 1)
                    };
                    out.push_str("  ");
                    i += 1;
                } else if c == '/' && next == Some('*') {
                    state = State::BlockComment(depth + 1);
                    out.push_str("  ");
                    i += 1;
                } else {
                    out.push(blank(c));
                }
            }
            State::Str => {
                if c == '\\' {
                    out.push(' ');
                    if let Some(n) = next {
                        out.push(blank(n));
                        i += 1;
                    }
                } else if c == '"' {
                    state = State::Code;
                    out.push('"');
                } else {
                    out.push(blank(c));
                }
            }
            State::RawStr(hashes) => {
                let closes =
                    c == '"' && chars[i + 1..].iter().take_while(|&&h| h == '#').count() >= hashes;
                if closes {
                    state = State::Code;
                    out.push('"');
                    out.push_str(&"#".repeat(hashes));
                    i += hashes;
                } else {
                    out.push(blank(c));
                }
            }
        }
        i += 1;
    }
    out.lines().map(str::to_string).collect()
}

/// One source file: its lines as written and as code (see [`code_lines`]), numbered from 1.
struct Source {
    path: PathBuf,
    lines: Vec<(usize, String, String)>,
}

impl Source {
    fn load(path: &Path) -> Source {
        let text = read(path);
        let code = code_lines(&text);
        let lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                (
                    i + 1,
                    l.to_string(),
                    code.get(i).cloned().unwrap_or_default(),
                )
            })
            .collect();
        Source {
            path: path.to_path_buf(),
            lines,
        }
    }

    /// Production lines of a file under `src/`: up to the first `#[cfg(test)]` (the test
    /// module sits at the end by convention). Files that are test modules themselves
    /// (`tests.rs`, anything under a `tests/` directory inside `src/`) have none.
    fn production(&self) -> &[(usize, String, String)] {
        let is_test_file = self.path.file_name().is_some_and(|n| n == "tests.rs")
            || self
                .path
                .components()
                .skip_while(|c| c.as_os_str() != "src")
                .any(|c| c.as_os_str() == "tests");
        if is_test_file {
            return &[];
        }
        let end = self
            .lines
            .iter()
            .position(|(_, raw, _)| raw.trim() == "#[cfg(test)]")
            .unwrap_or(self.lines.len());
        &self.lines[..end]
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `token` occurs in `code` as a whole path or macro: not preceded by an identifier
/// character (so `my_std::fs` does not count), a crate root not preceded by `::` either, and,
/// if it ends in an identifier character, not followed by one.
fn find_token(code: &str, token: &str) -> bool {
    let b = code.as_bytes();
    // `ring::` must start a path to name the crate (`a::ring::x` is some module `ring`); items
    // and `std::…` paths count wherever they appear (`crypto::OsRng`, `::std::fs`).
    let crate_root = token.ends_with("::") && !token.starts_with("std::");
    let mut from = 0;
    while let Some(i) = code[from..].find(token).map(|i| i + from) {
        let before_ok = i == 0 || {
            let c = b[i - 1];
            !is_ident(c) && (c != b':' || !crate_root)
        };
        let end = i + token.len();
        let after_ok = !token.as_bytes().last().copied().is_some_and(is_ident)
            || end >= b.len()
            || !is_ident(b[end]);
        if before_ok && after_ok {
            return true;
        }
        from = i + 1;
    }
    false
}

fn report(rule: &str, violations: &[String]) {
    assert!(
        violations.is_empty(),
        "{rule}: {} violation(s):\n  {}\n",
        violations.len(),
        violations.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// Rule 1: the cores do no IO

/// What IO, clocks, threads, ambient randomness and the process look like in source.
const FORBIDDEN_IN_CORES: &[&str] = &[
    "std::fs",
    "std::net",
    "std::thread",
    "std::time::SystemTime",
    "SystemTime::now",
    "Instant::now",
    "std::env",
    "std::process",
    "OsRng",
    "thread_rng",
    "println!",
    "eprintln!",
    "print!",
    "eprint!",
    "dbg!",
];

/// Names that, inside a `use std::{…}` group, mean the same as the paths above.
const FORBIDDEN_STD_MODULES: &[&str] = &["fs", "net", "thread", "env", "process"];

#[test]
fn cores_do_no_io() {
    let mut v = Vec::new();
    for core in CORES {
        let src = workspace_root().join("crates").join(core).join("src");
        let files = rust_files(&src);
        assert!(
            !files.is_empty(),
            "core crate {core} has no sources at {src:?}"
        );
        for file in files {
            let source = Source::load(&file);
            let lines = source.production();
            for (n, line, code) in lines {
                for token in FORBIDDEN_IN_CORES {
                    if find_token(code, token) {
                        v.push(format!(
                            "{}:{n}: `{token}` in a sans-IO core: `{}`",
                            relative(&file),
                            line.trim()
                        ));
                    }
                }
            }
            // `use std::{fs, …}` and `use std::{time::SystemTime, …}`, possibly over lines.
            let joined: String = lines
                .iter()
                .map(|(_, _, code)| code.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            let mut from = 0;
            while let Some(i) = joined[from..].find("std::{").map(|i| i + from) {
                let end = joined[i..].find('}').map_or(joined.len(), |e| i + e);
                let group = &joined[i + "std::{".len()..end];
                let line = joined[..i].matches('\n').count() + 1;
                for name in group.split([',', ' ', '\n', '{']).map(str::trim) {
                    let root = name.split("::").next().unwrap_or("");
                    if FORBIDDEN_STD_MODULES.contains(&root) || name.contains("SystemTime") {
                        v.push(format!(
                            "{}:{line}: `std::{{…{name}…}}` in a sans-IO core",
                            relative(&file)
                        ));
                    }
                }
                from = end.max(i + 1);
            }
        }
    }
    report(
        "STYLE rule 1 (cores do no IO: no files, sockets, threads, clocks, ambient randomness, \
         printing)",
        &v,
    );
}

// ---------------------------------------------------------------------------------------------
// Rule 2: only `crypto` names a crypto library

/// Crypto libraries by package name. The first line is the list STYLE's rule 2 is about; the
/// second adds the other common ones so a swap to them is caught too. `zeroize` and `subtle`
/// are deliberately absent: wiping memory and constant-time comparison are not algorithms.
const CRYPTO_PACKAGES: &[&str] = &[
    "p256",
    "ecdsa",
    "aes-gcm",
    "aes",
    "hkdf",
    "hmac",
    "sha2",
    "sha1",
    "rand_core",
    "rand_chacha",
    "rand",
    "aws-lc-rs",
    "ring",
    "rsa",
    "chacha20poly1305",
    "elliptic-curve",
    // Not named by the rule, same kind.
    "aws-lc-sys",
    "openssl",
    "sha3",
    "ed25519-dalek",
    "x25519-dalek",
    "curve25519-dalek",
    "getrandom",
    "p384",
    "p521",
    "cbc",
    "cmac",
    "aes-kw",
    "pbkdf2",
    "argon2",
    "blake2",
    "blake3",
    "md-5",
];

/// Dependencies declared by a Cargo.toml, with their line: `(line, name, package)`. Handles
/// `name = …`, `name.workspace = true`, `name = { package = "real", … }` and
/// `[dependencies.name]`, in every dependency table (normal, dev, build, target-specific).
fn declared_dependencies(manifest: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut in_deps = false;
    for (i, raw) in manifest.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            let header = line.trim_matches(['[', ']']).trim();
            let parts: Vec<&str> = header.split('.').collect();
            let dep_table = |s: &str| {
                matches!(
                    s,
                    "dependencies" | "dev-dependencies" | "build-dependencies"
                )
            };
            in_deps = parts.last().is_some_and(|p| dep_table(p));
            // `[dependencies.p256]` (or `[target.x.dependencies.p256]`).
            if let Some(pos) = parts.iter().position(|p| dep_table(p)) {
                if pos + 1 == parts.len() - 1 {
                    let name = parts[pos + 1].trim_matches('"').to_string();
                    out.push((i + 1, name.clone(), name));
                }
            }
            continue;
        }
        if !in_deps || line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let name = key
            .trim()
            .split('.')
            .next()
            .unwrap_or("")
            .trim_matches('"')
            .to_string();
        let package = value
            .split_once("package")
            .and_then(|(_, rest)| rest.split('"').nth(1))
            .map_or_else(|| name.clone(), str::to_string);
        out.push((i + 1, name, package));
    }
    out
}

#[test]
fn manifest_scanner_reads_every_declaration_form() {
    // The check below is only as good as this parser.
    let manifest = "[package]\nname = \"x\"\n[dependencies]\np256.workspace = true\n\
                    sha2 = \"0.10\"\nmy-rand = { package = \"rand\", version = \"0.8\" } # why\n\
                    [dev-dependencies]\nhmac = { workspace = true }\n\
                    [target.'cfg(unix)'.dependencies]\nring = \"0.17\"\n\
                    [dependencies.aes-gcm]\nversion = \"0.10\"\n[features]\nrand = []\n";
    let got: Vec<String> = declared_dependencies(manifest)
        .into_iter()
        .map(|(_, _, p)| p)
        .collect();
    assert_eq!(got, ["p256", "sha2", "rand", "hmac", "ring", "aes-gcm"]);
}

#[test]
fn only_crypto_depends_on_a_crypto_library() {
    let mut v = Vec::new();
    for (name, dir) in crate_dirs() {
        if name == CRYPTO_CRATE {
            continue;
        }
        let path = dir.join("Cargo.toml");
        for (line, dep, package) in declared_dependencies(&read(&path)) {
            if CRYPTO_PACKAGES.contains(&package.as_str()) {
                v.push(format!(
                    "{}:{line}: crate `{name}` depends on crypto library `{package}`{}",
                    relative(&path),
                    if dep != package {
                        format!(" (as `{dep}`)")
                    } else {
                        String::new()
                    }
                ));
            }
        }
    }
    report(
        "STYLE rule 2 (only `crypto` depends on a crypto library; use its API)",
        &v,
    );
}

#[test]
fn only_crypto_source_names_a_crypto_library() {
    let mut v = Vec::new();
    let roots: Vec<String> = CRYPTO_PACKAGES
        .iter()
        .map(|p| p.replace('-', "_"))
        .collect();
    for (name, dir) in crate_dirs() {
        if name == CRYPTO_CRATE {
            continue;
        }
        let mut files = Vec::new();
        for sub in ["src", "tests", "benches", "examples"] {
            files.extend(rust_files(&dir.join(sub)));
        }
        if dir.join("build.rs").is_file() {
            files.push(dir.join("build.rs"));
        }
        for file in files {
            for (n, line, code) in &Source::load(&file).lines {
                for root in &roots {
                    let path_use = format!("{root}::");
                    let whole = [
                        format!("use {root};"),
                        format!("use {root} "),
                        format!("extern crate {root}"),
                    ];
                    if find_token(code, &path_use) || whole.iter().any(|w| code.contains(w)) {
                        v.push(format!(
                            "{}:{n}: names crypto library `{root}`: `{}`",
                            relative(&file),
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    report(
        "STYLE rule 2 (only `crypto` names a crypto library in source)",
        &v,
    );
}

// ---------------------------------------------------------------------------------------------
// Rule 3: only store modules use sqlx; only http.rs, server-kit and web modules use axum

/// Whether `file` (under some crate's `src/`) is one of `names` or inside a directory of one
/// of those names: `store.rs` and `store/…` for `store`.
fn in_module(file: &Path, names: &[&str]) -> bool {
    let after_src: Vec<String> = file
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .skip_while(|c| c != "src")
        .skip(1)
        .collect();
    after_src.iter().any(|c| {
        let stem = c.strip_suffix(".rs").unwrap_or(c);
        names.contains(&stem)
    })
}

#[test]
fn sqlx_only_in_store_modules_and_axum_only_in_http_modules() {
    let mut v = Vec::new();
    for (name, dir) in crate_dirs() {
        if name == "server-kit" {
            // What servers share: database open + migrate, error → HTTP (STYLE layout).
            continue;
        }
        for file in rust_files(&dir.join("src")) {
            for (n, line, code) in Source::load(&file).production() {
                if (find_token(code, "sqlx::") || code.contains("use sqlx"))
                    && !in_module(&file, &["store"])
                {
                    v.push(format!(
                        "{}:{n}: sqlx outside a store module: `{}`",
                        relative(&file),
                        line.trim()
                    ));
                }
                // lib.rs holds the router (STYLE: "src/lib.rs (router, config)"); the web
                // modules are the operators' `console` and the user's `portal` (APP-4).
                if (find_token(code, "axum::") || code.contains("use axum"))
                    && !in_module(&file, &["http", "web", "lib", "console", "portal"])
                {
                    v.push(format!(
                        "{}:{n}: axum outside http.rs/web modules (console, portal)/the router in lib.rs: `{}`",
                        relative(&file),
                        line.trim()
                    ));
                }
            }
        }
    }
    report(
        "STYLE rule 3 (only store modules use sqlx; only http.rs, server-kit and web modules \
         use axum)",
        &v,
    );
}

// ---------------------------------------------------------------------------------------------
// Rule 8: main.rs only wires

const MAIN_RS_MAX_LINES: usize = 60;

#[test]
fn main_rs_only_wires() {
    let mut v = Vec::new();
    let cli_main = workspace_root().join("crates/cli/src/main.rs");
    assert!(cli_main.is_file(), "{} is missing", relative(&cli_main));
    let mut mains: Vec<PathBuf> = crate_dirs()
        .into_iter()
        .map(|(_, d)| d.join("src/main.rs"))
        .filter(|p| p.is_file())
        .collect();
    mains.sort();
    for main in mains {
        let text = read(&main);
        let lines = text.lines().count();
        if lines >= MAIN_RS_MAX_LINES {
            v.push(format!(
                "{}: {lines} lines; main.rs only wires, keep it under {MAIN_RS_MAX_LINES} \
                 (move the work into a module)",
                relative(&main)
            ));
        }
        for (n, line, code) in &Source::load(&main).lines {
            if find_token(code, "fn") && !code.contains("fn main(") {
                v.push(format!(
                    "{}:{n}: a function other than `main`: `{}`",
                    relative(&main),
                    line.trim()
                ));
            }
        }
    }
    report("STYLE rule 8 (main.rs only wires)", &v);
}

// ---------------------------------------------------------------------------------------------
// Naming: no grab-bag modules

const GRAB_BAG_NAMES: &[&str] = &[
    "utils", "util", "helpers", "helper", "common", "misc", "types", "manager",
];

#[test]
fn no_grab_bag_module_names() {
    let mut v = Vec::new();
    for (_, dir) in crate_dirs() {
        let src = dir.join("src");
        for file in rust_files(&src) {
            // The file's own name, and every directory between src/ and it.
            let rel = file.strip_prefix(&src).expect("under src");
            for c in rel.components() {
                let c = c.as_os_str().to_string_lossy();
                let stem = c.strip_suffix(".rs").unwrap_or(&c);
                if GRAB_BAG_NAMES.contains(&stem) {
                    v.push(format!("{}: module named `{stem}`", relative(&file)));
                }
            }
            // Inline or declared modules: `mod utils;`, `pub(crate) mod helpers {`.
            for (n, line, code) in &Source::load(&file).lines {
                let mut words = code.split(|c: char| !is_ident(c as u8) || !c.is_ascii());
                while let Some(w) = words.next() {
                    if w == "mod" {
                        let next = words.find(|w| !w.is_empty()).unwrap_or("");
                        if GRAB_BAG_NAMES.contains(&next) {
                            v.push(format!(
                                "{}:{n}: module named `{next}`: `{}`",
                                relative(&file),
                                line.trim()
                            ));
                        }
                    }
                }
            }
        }
    }
    v.sort();
    v.dedup();
    report(
        "STYLE naming (no utils/helpers/common/misc/types/manager modules: name the concept)",
        &v,
    );
}

// ---------------------------------------------------------------------------------------------
// No unwrap/expect in the cores without an `// Invariant:` comment

/// How many lines above an `unwrap()`/`expect(` the `// Invariant:` comment may sit (so it can
/// head a multi-line expression).
const INVARIANT_REACH: usize = 3;

/// Existing offenders when this check was written, by file and the trimmed line. Empty: every
/// core `unwrap`/`expect` had its invariant written down. Adding to this list needs a reason.
const UNWRAP_ALLOW_LIST: &[(&str, &str)] = &[];

#[test]
fn no_unwrap_or_expect_in_cores_without_an_invariant() {
    let mut v = Vec::new();
    for core in CORES {
        for file in rust_files(&workspace_root().join("crates").join(core).join("src")) {
            let source = Source::load(&file);
            let lines = source.production();
            let rel = relative(&file);
            for (idx, (n, line, code)) in lines.iter().enumerate() {
                if !(code.contains(".unwrap()") || code.contains(".expect(")) {
                    continue;
                }
                let justified = lines[idx.saturating_sub(INVARIANT_REACH)..=idx]
                    .iter()
                    .any(|(_, raw, _)| raw.contains("// Invariant:"));
                let allowed = UNWRAP_ALLOW_LIST
                    .iter()
                    .any(|(f, l)| rel.ends_with(f) && line.trim() == *l);
                if !justified && !allowed {
                    v.push(format!(
                        "{rel}:{n}: unwrap/expect without `// Invariant:` on the line or the \
                         {INVARIANT_REACH} above: `{}`",
                        line.trim()
                    ));
                }
            }
        }
    }
    report(
        "error rule (no unwrap/expect outside tests without an `// Invariant:` comment; input \
         from network or card never panics)",
        &v,
    );
}

#[test]
fn scanners_see_what_they_look_for() {
    // The checks above pass vacuously if their scanners are blind: pin what they must see.
    assert!(find_token(
        "let t = std::time::SystemTime::now();",
        "SystemTime::now"
    ));
    assert!(find_token("use crypto::OsRng;", "OsRng"));
    assert!(find_token("    println!(\"x\");", "println!"));
    assert!(find_token("eprint!(\"x\")", "eprint!"));
    assert!(!find_token("eprintln!(\"x\")", "print!"));
    assert!(!find_token("let s = String::new();", "ring::"));
    assert!(!find_token("crypto::hmac_sha256(k, m)", "hmac::"));
    assert!(find_token("use p256::ecdsa::Signature;", "p256::"));
    assert!(!find_token("use my_std::fs;", "std::fs"));
    assert!(find_token("let f = ::std::fs::read(p);", "std::fs"));
    assert!(!find_token("use pki::oid::ecdsa::X;", "ecdsa::"));
    assert!(find_token("let r = rand::thread_rng();", "thread_rng"));
    let text = "let a = 1; // std::fs\nlet u = \"http://x \\\" std::env\";\n/* println!\n */ let c = '\"';\n\
         fn f<'a>(x: &'a str) -> char { '\\'' }\nlet r = r#\"use p256;\"#; dbg!(r);";
    let code = code_lines(text);
    let squeezed: Vec<String> = code
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        squeezed,
        [
            "let a = 1;",
            "let u = \" \";",
            "",
            "let c = ' ';",
            "fn f<'a>(x: &'a str) -> char { ' ' }",
            "let r = r#\" \"#; dbg!(r);",
        ]
    );
    for (blanked, original) in code.iter().zip(text.lines()) {
        assert_eq!(
            blanked.chars().count(),
            original.chars().count(),
            "blanking keeps columns: {original:?}"
        );
    }
    assert!(in_module(
        Path::new("/w/crates/issuer/src/store/sqlite.rs"),
        &["store"]
    ));
    assert!(!in_module(
        Path::new("/w/crates/issuer/src/service.rs"),
        &["store"]
    ));
}
