//! The only crate that names a cryptography library (STYLE rule 2).
//!
//! Everything above this crate speaks in our own types: [`SigningKey`], [`VerifyingKey`],
//! [`Signature`], [`Digest`], [`SymmetricKey`]. The algorithms are fixed per object type and named
//! on the wire by the callers (OIDs in certificates and messages), so swapping one is a change to
//! this crate and to those names only.
//!
//! Randomness always enters as an argument ([`Rng`]): the sans-IO cores (card, protocol, pki)
//! never reach for ambient randomness, and ECDSA signatures are deterministic (RFC 6979), so a card
//! driven by a seeded [`Rng`] produces byte-identical transcripts.
//!
#![allow(deprecated)] // aes-gcm 0.10 re-exports generic-array 0.14, whose from_slice is deprecated
//! See `docs/decisions/0001-rustcrypto.md` for why this is RustCrypto and not aws-lc-rs.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::Mac;
use p256::ecdsa::signature::{Signer, Verifier};
use rand_core::{CryptoRng, RngCore, SeedableRng};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// What went wrong in a cryptographic operation. Deliberately coarse: an attacker learns nothing
/// from which check failed inside an open or a verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("public key is not a valid SEC1 P-256 point ({len} bytes given)")]
    InvalidPublicKey { len: usize },
    #[error("private key is not a valid P-256 scalar")]
    InvalidPrivateKey,
    #[error("signature is not a DER-encoded ECDSA P-256 signature ({len} bytes given)")]
    MalformedSignature { len: usize },
    #[error("signature does not verify")]
    BadSignature,
    #[error("signature is the high-S twin of a valid one (not canonical)")]
    NonCanonicalSignature,
    #[error("ciphertext is malformed or was not made for this key and context")]
    OpenFailed,
    #[error("PKCS#8 key could not be read")]
    InvalidPkcs8,
}

/// A source of randomness, passed explicitly to everything that needs one.
pub trait Rng {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]);
}

/// The operating system's random number generator (`getrandom`). Not for sans-IO cores: they
/// take an [`Rng`] from their host.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&mut self, out: &mut [u8]) {
        rand_core::OsRng.fill_bytes(out);
    }
}

/// A deterministic generator from a 64-bit seed. Reproducible, hence insecure: tests,
/// benchmarks and simulations only.
pub struct InsecureSeededRng(rand_chacha::ChaCha20Rng);

impl InsecureSeededRng {
    /// A generator whose whole output is determined by `seed`.
    pub fn insecure_seeded_for_tests(seed: u64) -> Self {
        Self(rand_chacha::ChaCha20Rng::seed_from_u64(seed))
    }
}

impl Rng for InsecureSeededRng {
    fn fill(&mut self, out: &mut [u8]) {
        self.0.fill_bytes(out);
    }
}

/// Adapts our [`Rng`] to the `rand_core` traits the library wants.
struct RngAdapter<'a>(&'a mut dyn Rng);

impl RngCore for RngAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

// Our Rng implementations are all cryptographic or explicitly named insecure.
impl CryptoRng for RngAdapter<'_> {}

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// SHA-256 of `data` (FIPS 180-4).
pub fn sha256(data: &[u8]) -> Digest {
    Digest(Sha256::digest(data).into())
}

/// SHA-256 over several parts, as if concatenated.
pub fn sha256_parts(parts: &[&[u8]]) -> Digest {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Digest(h.finalize().into())
}

/// An incremental SHA-256 (for data that arrives in blocks).
#[derive(Clone, Default)]
pub struct Sha256Hasher(Sha256);

impl Sha256Hasher {
    pub fn new() -> Self {
        Self(Sha256::new())
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

/// HMAC-SHA-256 (RFC 2104) of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // Invariant: HMAC accepts keys of any length.
    let mut mac =
        <hmac::Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// An ECDSA P-256 private key. Zeroized on drop; never printed.
#[derive(Clone)]
pub struct SigningKey(p256::ecdsa::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<secret>)")
    }
}

impl SigningKey {
    /// A fresh key from `rng`.
    pub fn generate(rng: &mut dyn Rng) -> Self {
        Self(p256::ecdsa::SigningKey::random(&mut RngAdapter(rng)))
    }

    /// The key whose scalar is these 32 big-endian bytes.
    pub fn from_scalar_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::InvalidPrivateKey);
        }
        p256::ecdsa::SigningKey::from_slice(bytes)
            .map(Self)
            .map_err(|_| CryptoError::InvalidPrivateKey)
    }

    /// The 32-byte big-endian scalar, in a buffer that is wiped when dropped.
    pub fn to_scalar_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes().into())
    }

    /// PKCS#8 DER (for key files and for `openssl`).
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        use p256::pkcs8::EncodePrivateKey;
        // Invariant: encoding a valid P-256 key as PKCS#8 cannot fail.
        let doc = self
            .0
            .to_pkcs8_der()
            .expect("PKCS#8 encoding of a P-256 key");
        Zeroizing::new(doc.as_bytes().to_vec())
    }

    /// Reads a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        use p256::pkcs8::DecodePrivateKey;
        p256::ecdsa::SigningKey::from_pkcs8_der(der)
            .map(Self)
            .map_err(|_| CryptoError::InvalidPkcs8)
    }

    /// PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        // Invariant: encoding a valid P-256 key as PKCS#8 PEM cannot fail.
        let pem = self
            .0
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 PEM encoding of a P-256 key");
        Zeroizing::new(pem.to_string())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(*self.0.verifying_key())
    }

    /// ECDSA P-256 with SHA-256 over `message`, deterministic (RFC 6979), with `s` in the lower
    /// half of the group order (the canonical twin; see [`VerifyingKey::verify_canonical`]).
    pub fn sign(&self, message: &[u8]) -> Signature {
        op_counts::SIGNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sig: p256::ecdsa::Signature = self.0.sign(message);
        let sig = sig.normalize_s().unwrap_or(sig);
        Signature(sig.to_der().as_bytes().to_vec())
    }

    /// The ECDH shared secret with `peer` (raw x-coordinate), wiped when dropped.
    fn diffie_hellman(&self, peer: &VerifyingKey) -> Zeroizing<[u8; 32]> {
        let secret = p256::ecdh::diffie_hellman(
            self.0.as_nonzero_scalar(),
            p256::PublicKey::from(peer.0).as_affine(),
        );
        let mut out = [0u8; 32];
        out.copy_from_slice(secret.raw_secret_bytes());
        Zeroizing::new(out)
    }
}

/// An ECDSA P-256 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(p256::ecdsa::VerifyingKey);

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({:?})", sha256(&self.to_sec1()))
    }
}

impl VerifyingKey {
    /// Reads a SEC1 point (uncompressed 65 bytes or compressed 33 bytes).
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, CryptoError> {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
            .map(Self)
            .map_err(|_| CryptoError::InvalidPublicKey { len: bytes.len() })
    }

    /// The uncompressed SEC1 point, 65 bytes (`04 || x || y`).
    pub fn to_sec1(&self) -> Vec<u8> {
        self.0.to_encoded_point(false).as_bytes().to_vec()
    }

    /// Verifies a DER ECDSA P-256/SHA-256 signature over `message`, accepting either `s` of the
    /// pair (X.509 signatures made by other implementations may use either).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), CryptoError> {
        let sig = parse_signature(signature)?;
        op_counts::VERIFIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0
            .verify(message, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// Verifies like [`VerifyingKey::verify`] but accepts only the low-`s` form. ECDSA
    /// signatures come in pairs (`s` and `n − s`): a relay could swap one for the other and
    /// change a signed object's bytes, and so every digest over it, without the key. Signed
    /// protocol objects are checked with this, so each has exactly one valid encoding.
    pub fn verify_canonical(
        &self,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        let sig = parse_signature(signature)?;
        if sig.normalize_s().is_some() {
            return Err(CryptoError::NonCanonicalSignature);
        }
        op_counts::VERIFIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0
            .verify(message, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }
}

/// How many ECDSA signatures this process has made and checked: benchmarks count the
/// signature operations a request really costs and print the bound they set
/// (`cardwright bench authorize`). Relaxed counters: a few nanoseconds per operation.
pub mod op_counts {
    use std::sync::atomic::{AtomicU64, Ordering};

    pub(crate) static SIGNS: AtomicU64 = AtomicU64::new(0);
    pub(crate) static VERIFIES: AtomicU64 = AtomicU64::new(0);

    /// (signatures made, signatures verified) so far in this process.
    pub fn snapshot() -> (u64, u64) {
        (
            SIGNS.load(Ordering::Relaxed),
            VERIFIES.load(Ordering::Relaxed),
        )
    }
}

fn parse_signature(signature: &Signature) -> Result<p256::ecdsa::Signature, CryptoError> {
    p256::ecdsa::Signature::from_der(&signature.0).map_err(|_| CryptoError::MalformedSignature {
        len: signature.0.len(),
    })
}

/// A DER-encoded ECDSA signature (`Ecdsa-Sig-Value`, RFC 3279).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Signature(pub Vec<u8>);

impl Signature {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A 256-bit symmetric key (the card-unique `Sk`, sealing keys). Zeroized on drop.
#[derive(Clone, Zeroize, zeroize::ZeroizeOnDrop)]
pub struct SymmetricKey([u8; 32]);

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricKey(<secret>)")
    }
}

const GCM_NONCE_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;

impl SymmetricKey {
    pub fn generate(rng: &mut dyn Rng) -> Self {
        let mut k = [0u8; 32];
        rng.fill(&mut k);
        Self(k)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CryptoError::InvalidPrivateKey)?;
        Ok(Self(arr))
    }

    /// The raw key, for persisting it inside a sealed store.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key check value: the first 3 bytes of HMAC(key, "KCV"), safe to show.
    pub fn check_value(&self) -> [u8; 3] {
        let m = hmac_sha256(&self.0, b"cardwright key check value");
        [m[0], m[1], m[2]]
    }

    /// AES-256-GCM with a random nonce; `binding` is authenticated but not encrypted, so a
    /// wrapped blob only opens in the context it was made for. Output: `nonce || ct || tag`.
    pub fn wrap(&self, binding: &[u8], plaintext: &[u8], rng: &mut dyn Rng) -> Vec<u8> {
        let mut nonce = [0u8; GCM_NONCE_LEN];
        rng.fill(&mut nonce);
        self.wrap_with_nonce(binding, plaintext, &nonce)
    }

    fn wrap_with_nonce(&self, binding: &[u8], plaintext: &[u8], nonce: &[u8; 12]) -> Vec<u8> {
        let cipher = Aes256Gcm::new((&self.0).into());
        // Invariant: AES-GCM encryption only fails for plaintexts beyond 64 GiB.
        let ct = cipher
            .encrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: plaintext,
                    aad: binding,
                },
            )
            .expect("AES-GCM encrypt");
        let mut out = Vec::with_capacity(GCM_NONCE_LEN + ct.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what [`SymmetricKey::wrap`] made under the same key and binding.
    pub fn unwrap(
        &self,
        binding: &[u8],
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if wrapped.len() < GCM_NONCE_LEN + GCM_TAG_LEN {
            return Err(CryptoError::OpenFailed);
        }
        let (nonce, ct) = wrapped.split_at(GCM_NONCE_LEN);
        let cipher = Aes256Gcm::new((&self.0).into());
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: binding,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::OpenFailed)
    }

    /// Derives a purpose-specific subkey (HKDF-SHA256, RFC 5869).
    pub fn derive(&self, info: &[u8]) -> SymmetricKey {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        let mut out = [0u8; 32];
        // Invariant: 32 bytes is within HKDF-SHA256's output limit.
        hk.expand(info, &mut out).expect("HKDF expand 32 bytes");
        SymmetricKey(out)
    }
}

/// Public-key encryption to a P-256 key (HPKE-shaped: ephemeral ECDH, HKDF-SHA256, AES-256-GCM).
/// `info` names the purpose and audience and is mixed into the key; `aad` is authenticated.
/// Output: `ephemeral SEC1 point (65) || nonce || ct || tag`.
pub fn seal_to(
    recipient: &VerifyingKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut dyn Rng,
) -> Vec<u8> {
    let eph = SigningKey::generate(rng);
    let eph_pub = eph.verifying_key().to_sec1();
    let key = seal_key(&eph.diffie_hellman(recipient), &eph_pub, recipient, info);
    let mut out = eph_pub;
    out.extend_from_slice(&key.wrap(aad, plaintext, rng));
    out
}

/// Opens what [`seal_to`] made for `recipient`'s public key.
pub fn open_sealed(
    recipient: &SigningKey,
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < 65 {
        return Err(CryptoError::OpenFailed);
    }
    let (eph_pub, rest) = sealed.split_at(65);
    let eph = VerifyingKey::from_sec1(eph_pub).map_err(|_| CryptoError::OpenFailed)?;
    let key = seal_key(
        &recipient.diffie_hellman(&eph),
        eph_pub,
        &recipient.verifying_key(),
        info,
    );
    key.unwrap(aad, rest)
}

fn seal_key(
    shared: &[u8; 32],
    eph_pub: &[u8],
    recipient: &VerifyingKey,
    info: &[u8],
) -> SymmetricKey {
    let salt = sha256_parts(&[eph_pub, &recipient.to_sec1()]);
    let hk = Hkdf::<Sha256>::new(Some(&salt.0), shared);
    let mut out = [0u8; 32];
    // Invariant: 32 bytes is within HKDF-SHA256's output limit.
    hk.expand(info, &mut out).expect("HKDF expand 32 bytes");
    SymmetricKey(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answer_fips_180_2_abc() {
        assert_eq!(
            hex::encode(sha256(b"abc").0),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sign_verify_and_tamper() {
        let mut rng = InsecureSeededRng::insecure_seeded_for_tests(1);
        let k = SigningKey::generate(&mut rng);
        let s = k.sign(b"hello");
        assert_eq!(s, k.sign(b"hello"), "RFC 6979 signatures are deterministic");
        k.verifying_key().verify(b"hello", &s).unwrap();
        assert_eq!(
            k.verifying_key().verify(b"hellp", &s),
            Err(CryptoError::BadSignature)
        );
        let other = SigningKey::generate(&mut rng);
        assert!(other.verifying_key().verify(b"hello", &s).is_err());
        let pk = VerifyingKey::from_sec1(&k.verifying_key().to_sec1()).unwrap();
        assert_eq!(pk, k.verifying_key());
        let k2 = SigningKey::from_scalar_bytes(&*k.to_scalar_bytes()).unwrap();
        assert_eq!(k2.verifying_key(), k.verifying_key());
        let k3 = SigningKey::from_pkcs8_der(&k.to_pkcs8_der()).unwrap();
        assert_eq!(k3.verifying_key(), k.verifying_key());
    }

    #[test]
    fn signatures_are_low_s_and_the_high_s_twin_is_refused_where_canonical() {
        let mut rng = InsecureSeededRng::insecure_seeded_for_tests(5);
        for i in 0..32u8 {
            let k = SigningKey::generate(&mut rng);
            let msg = [i; 7];
            let sig = k.sign(&msg);
            let parsed = p256::ecdsa::Signature::from_der(&sig.0).unwrap();
            assert!(parsed.normalize_s().is_none(), "our signatures are low-S");
            k.verifying_key().verify_canonical(&msg, &sig).unwrap();
            // The twin (r, n - s) verifies leniently but not canonically.
            let (r, s) = parsed.split_scalars();
            let twin = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
            let twin = Signature(twin.to_der().as_bytes().to_vec());
            k.verifying_key().verify(&msg, &twin).unwrap();
            assert_eq!(
                k.verifying_key().verify_canonical(&msg, &twin),
                Err(CryptoError::NonCanonicalSignature)
            );
        }
    }

    #[test]
    fn seal_opens_only_for_recipient_and_context() {
        let mut rng = InsecureSeededRng::insecure_seeded_for_tests(2);
        let k = SigningKey::generate(&mut rng);
        let sealed = seal_to(&k.verifying_key(), b"purpose", b"aad", b"secret", &mut rng);
        assert_eq!(
            &**open_sealed(&k, b"purpose", b"aad", &sealed).unwrap(),
            b"secret"
        );
        assert!(open_sealed(&k, b"other", b"aad", &sealed).is_err());
        assert!(open_sealed(&k, b"purpose", b"aaX", &sealed).is_err());
        let other = SigningKey::generate(&mut rng);
        assert!(open_sealed(&other, b"purpose", b"aad", &sealed).is_err());
        assert!(open_sealed(&k, b"purpose", b"aad", &sealed[..70]).is_err());
    }

    #[test]
    fn wrap_is_bound_to_its_context() {
        let mut rng = InsecureSeededRng::insecure_seeded_for_tests(3);
        let sk = SymmetricKey::generate(&mut rng);
        let w = sk.wrap(b"card 1", b"private key", &mut rng);
        assert_eq!(&**sk.unwrap(b"card 1", &w).unwrap(), b"private key");
        assert!(sk.unwrap(b"card 2", &w).is_err());
        let mut bad = w.clone();
        bad[20] ^= 1;
        assert!(sk.unwrap(b"card 1", &bad).is_err());
        assert!(sk.unwrap(b"card 1", &w[..5]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = VerifyingKey::from_sec1(&data);
            let mut rng = InsecureSeededRng::insecure_seeded_for_tests(4);
            let k = SigningKey::generate(&mut rng);
            let _ = k.verifying_key().verify(b"m", &Signature(data.clone()));
            let _ = open_sealed(&k, b"i", b"a", &data);
            let _ = SymmetricKey::generate(&mut rng).unwrap(b"", &data);
        }
    }
}

#[cfg(test)]
mod op_count_tests {
    use super::*;

    #[test]
    fn signing_and_verifying_are_counted() {
        let key = SigningKey::generate(&mut InsecureSeededRng::insecure_seeded_for_tests(9));
        let (s0, v0) = op_counts::snapshot();
        let sig = key.sign(b"counted");
        key.verifying_key()
            .verify_canonical(b"counted", &sig)
            .unwrap();
        key.verifying_key().verify(b"counted", &sig).unwrap();
        let (s1, v1) = op_counts::snapshot();
        // Other tests in this process may sign too: at least ours are counted.
        assert!(s1 - s0 >= 1 && v1 - v0 >= 2, "{s0}->{s1}, {v0}->{v1}");
    }
}
