//! Content hashes of migration files.
//!
//! A migration's identity on disk is the SHA-256 of its content after two
//! normalisations: a leading UTF-8 byte-order mark is dropped, and line endings
//! (CRLF and lone CR) become LF. A Windows checkout or an editor that adds a
//! BOM therefore never looks like drift. The hash is stored with an algorithm
//! tag (`sha256-lf:<hex>`) so the algorithm can change later without making
//! every recorded hash look drifted.

use sha2::{Digest, Sha256};
use std::fmt;

/// The tag of the only algorithm envgate writes today.
pub const SHA256_LF: &str = "sha256-lf";

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The value of each ASCII hex digit; 0xff for anything else.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// SHA-256 of a file's normalised content.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// Hashes `bytes` after dropping a leading BOM and normalising line
    /// endings, without copying the content.
    pub fn of(bytes: &[u8]) -> Self {
        let mut rest = bytes.strip_prefix(BOM).unwrap_or(bytes);
        let mut hasher = Sha256::new();
        while let Some(cr) = memchr::memchr(b'\r', rest) {
            hasher.update(&rest[..cr]);
            if rest.get(cr + 1) == Some(&b'\n') {
                // CRLF: the LF starts the next chunk.
                rest = &rest[cr + 1..];
            } else {
                hasher.update(b"\n");
                rest = &rest[cr + 1..];
            }
        }
        hasher.update(rest);
        ContentHash(hasher.finalize().into())
    }

    /// The 32 bytes of the digest.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ContentHash(bytes)
    }

    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The form stored in envgate's ledger: `sha256-lf:<hex>`.
    pub fn tagged(&self) -> String {
        format!("{SHA256_LF}:{}", self.hex())
    }

    /// Parses the 64 hex digits of a hash (either case). Ledgers hold one
    /// per row, so this is a table lookup rather than a general decoder.
    pub fn from_hex(hex_digits: &str) -> Option<Self> {
        let digits = hex_digits.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let (hi, lo) = (HEX_VALUE[pair[0] as usize], HEX_VALUE[pair[1] as usize]);
            if (hi | lo) & 0xf0 != 0 {
                return None;
            }
            *byte = hi << 4 | lo;
        }
        Some(ContentHash(out))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.tagged())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hex on the stack: a status report writes tens of thousands.
        let mut buf = [0u8; 64];
        hex::encode_to_slice(self.0, &mut buf).expect("64 hex digits for 32 bytes");
        f.write_str(std::str::from_utf8(&buf).expect("hex is ASCII"))
    }
}

/// A hash as a ledger recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordedHash {
    /// `sha256-lf:<hex>`: comparable with [`ContentHash`].
    Sha256Lf(ContentHash),
    /// Another tool's checksum, in the canonical text its layout computes
    /// too (Flyway's signed CRC-32, sqlx's SHA-384 hex, …).
    Tool(String),
    /// A checksum the tool recorded that envgate cannot recompute (an older
    /// Liquibase algorithm, a Java migration's): never reported as drift.
    Unverifiable(String),
    /// The tool records no checksum.
    None,
    /// In envgate's ledger, a value of an algorithm this version does not
    /// know, or a damaged one. Kept verbatim so it can be shown.
    Unknown(String),
}

impl RecordedHash {
    pub fn parse(stored: &str) -> Self {
        stored
            .strip_prefix(SHA256_LF)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|hex_digits| ContentHash::from_hex(hex_digits.trim()))
            .map(RecordedHash::Sha256Lf)
            .unwrap_or_else(|| RecordedHash::Unknown(stored.to_owned()))
    }

    /// Whether today's content still has this hash (envgate's algorithm).
    pub fn matches(&self, today: &ContentHash) -> bool {
        matches!(self, RecordedHash::Sha256Lf(h) if h == today)
    }

    /// The value shown to users: bare hex for envgate's algorithm, the
    /// stored text otherwise, empty when there is none.
    pub fn display(&self) -> String {
        match self {
            RecordedHash::Sha256Lf(h) => h.hex(),
            RecordedHash::Tool(s) | RecordedHash::Unverifiable(s) | RecordedHash::Unknown(s) => {
                s.clone()
            }
            RecordedHash::None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LF: &[u8] = b"CREATE TABLE users (\n  id bigint\n);\n";

    #[test]
    fn known_vector() {
        // sha256 of the empty string.
        assert_eq!(
            ContentHash::of(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // `printf 'CREATE TABLE users (\n  id bigint\n);\n' | sha256sum`
        assert_eq!(
            ContentHash::of(LF).hex(),
            "df914ceb9e2b0d8a4e4eb11154bb64508874bc7a2b5a52a93d3a279e9777a226"
        );
    }

    #[test]
    fn crlf_bom_and_lone_cr_hash_like_lf() {
        let lf = ContentHash::of(LF);
        assert_eq!(
            ContentHash::of(b"CREATE TABLE users (\r\n  id bigint\r\n);\r\n"),
            lf
        );
        assert_eq!(
            ContentHash::of(b"\xEF\xBB\xBFCREATE TABLE users (\n  id bigint\n);\n"),
            lf
        );
        assert_eq!(
            ContentHash::of(b"\xEF\xBB\xBFCREATE TABLE users (\r\n  id bigint\r\n);\r\n"),
            lf
        );
        assert_eq!(
            ContentHash::of(b"CREATE TABLE users (\r  id bigint\r);\r"),
            lf
        );
        // A CR at the very end and mixed endings.
        assert_eq!(
            ContentHash::of(b"a\r\nb\rc\n"),
            ContentHash::of(b"a\nb\nc\n")
        );
        assert_eq!(ContentHash::of(b"a\r"), ContentHash::of(b"a\n"));
    }

    #[test]
    fn real_changes_change_the_hash() {
        let lf = ContentHash::of(LF);
        assert_ne!(ContentHash::of(b"CREATE TABLE users (\n  id int\n);\n"), lf);
        // Trailing whitespace and a missing final newline are content.
        assert_ne!(
            ContentHash::of(b"CREATE TABLE users (\n  id bigint\n);"),
            lf
        );
        // Only a *leading* BOM is dropped.
        assert_ne!(
            ContentHash::of(b"CREATE TABLE users (\n  id bigint\n);\n\xEF\xBB\xBF"),
            lf
        );
    }

    #[test]
    fn recorded_hash_round_trip() {
        let h = ContentHash::of(LF);
        let rec = RecordedHash::parse(&h.tagged());
        assert_eq!(rec, RecordedHash::Sha256Lf(h));
        assert!(rec.matches(&h));
        assert_eq!(rec.display(), h.hex());
        let other = RecordedHash::parse("md5:abc");
        assert!(!other.matches(&h));
        assert_eq!(other.display(), "md5:abc");
        assert_eq!(
            RecordedHash::parse("sha256-lf:zz"),
            RecordedHash::Unknown("sha256-lf:zz".into())
        );
    }
}
