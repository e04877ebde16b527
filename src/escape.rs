//! The crate's one JSON string escaper: every JSON text this crate writes itself (the JSON
//! event format, the `to_message()` layout, the interchange line) escapes its strings here.
//! serde_json escapes only what serde_json serializes: a payload type's `Serialize`, and the
//! payload object of a `to_message()` line, whose member names it writes while it builds that
//! object's `RawValue` (`outbox_json::split`), the one way to make a `RawValue` without parsing
//! the text again.
//!
//! It writes what serde_json writes, byte for byte: `\"`, `\\`, the short forms `\b \f \n
//! \r \t`, `\u00xx` (lowercase hex) for the other control characters, and every other
//! character as it is. A unit test checks this against serde_json for every byte and for
//! random strings.
//!
//! It reads eight bytes at a time as one integer and finds the first byte to escape with
//! integer arithmetic on the whole word (the test serde_json's own reader uses to find the end
//! of a string); each word is copied whole and the length cut back. Most strings it writes are
//! short (header names and values, ids) or dense in quotes (a JSON value inside a JSON string),
//! so the cost per string and per escape matters more than the speed on long plain runs.
//! Measured on the CLI's binary-mode encode (callgrind, per line): the interchange line takes
//! 8,300 instructions with this escaper against 12,100 with serde_json writing it; a 16-byte
//! compare loop the compiler vectorizes, with a byte-at-a-time search for the place after it,
//! took 1,000 to 2,200 more than this one.

use crate::word::{HIGH, below, equal};

/// Whether JSON needs `byte` escaped in a string.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// For eight bytes read as one little-endian word: the lowest set bit is the high bit of the
/// first byte that stops the copy, one that [`needs_escape`] or, when `STOP_AT_NON_ASCII`,
/// one that is not ASCII (see [`crate::word`]).
fn stop_bits<const STOP_AT_NON_ASCII: bool>(word: u64) -> u64 {
    let non_ascii = if STOP_AT_NON_ASCII { word & HIGH } else { 0 };
    below(word, 0x20) | equal(word, b'"') | equal(word, b'\\') | non_ascii
}

/// Writes the escape of `byte`, one that [`needs_escape`].
fn push_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            let (high, low) = (usize::from(byte >> 4), usize::from(byte & 0xf));
            out.extend_from_slice(b"\\u00");
            out.extend(HEX.get(high).into_iter().chain(HEX.get(low)));
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// Writes the escaped `bytes`, without quotes, stopping at the first byte that is not ASCII
/// when `STOP_AT_NON_ASCII`; returns the bytes not written.
///
/// Eight bytes at a time: each word is written whole and the length cut back to its plain
/// bytes, which costs less than a copy of a length known only at run time.
fn write_escaped<'a, const STOP_AT_NON_ASCII: bool>(
    out: &mut Vec<u8>,
    mut bytes: &'a [u8],
) -> &'a [u8] {
    loop {
        let (word, len) = match bytes.first_chunk::<8>() {
            Some(word) => (*word, 8),
            None => {
                // The last few bytes, padded with spaces, which never stop the copy.
                let mut word = [b' '; 8];
                word.iter_mut()
                    .zip(bytes)
                    .for_each(|(to, &from)| *to = from);
                (word, bytes.len())
            }
        };
        let bits = stop_bits::<STOP_AT_NON_ASCII>(u64::from_le_bytes(word));
        // No bit set: 64 trailing zeros, 8 bytes.
        let plain = len.min((bits.trailing_zeros() / 8) as usize);
        let written = out.len() + plain;
        out.extend_from_slice(&word);
        out.truncate(written);
        let (_, rest) = bytes.split_at(plain);
        match rest.split_first() {
            Some((&byte, tail)) if needs_escape(byte) => {
                push_escape(out, byte);
                bytes = tail;
            }
            Some(_) if plain == 8 => bytes = rest,
            _ => return rest,
        }
    }
}

/// Writes `text` as a JSON string.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    write_escaped::<false>(out, text.as_bytes());
    out.push(b'"');
}

#[cfg(feature = "interchange")]
/// Writes `bytes` as a JSON string when they are UTF-8 and returns `true`; writes nothing
/// and returns `false` when they are not. The UTF-8 check is part of the escaping pass for
/// ASCII, the common case: a separate `str::from_utf8` first cost 7% of a binary-mode line.
pub(crate) fn write_utf8(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let start = out.len();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let rest = write_escaped::<true>(out, bytes);
    if !rest.is_empty() {
        let Ok(text) = std::str::from_utf8(rest) else {
            out.truncate(start);
            return false;
        };
        write_escaped::<false>(out, text.as_bytes());
    }
    out.push(b'"');
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_json_str(text: &str) -> Vec<u8> {
        serde_json::to_vec(text).unwrap()
    }

    fn ours(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_str(&mut out, text);
        out
    }

    #[test]
    fn every_character_is_written_as_serde_json_writes_it() {
        for c in (0..=0x800)
            .filter_map(char::from_u32)
            .chain(['\u{ffff}', '\u{10ffff}'])
        {
            // At the start, inside and at the edges of the eight-byte words, and in the
            // padded last word.
            for at in [0, 5, 15, 16, 17, 31, 40] {
                let text = format!("{}{c}{}", "a".repeat(at), "b".repeat(40 - at));
                assert_eq!(ours(&text), serde_json_str(&text), "{c:?} at {at}");
            }
        }
    }

    #[test]
    fn random_strings_are_written_as_serde_json_writes_them() {
        // A fixed xorshift sequence: strings of up to 47 pieces, dense in quotes,
        // backslashes, controls and multi-byte characters.
        let pieces = [
            "\"", "\\", "\n", "\u{1}", "\u{1f}", "a", "bc", "é", "漢", "😀", "\u{7f}",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for _ in 0..state % 48 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            assert_eq!(ours(&text), serde_json_str(&text), "{text:?}");
            #[cfg(feature = "interchange")]
            {
                let mut out = vec![b'x'];
                assert!(write_utf8(&mut out, text.as_bytes()));
                assert_eq!(out[1..], serde_json_str(&text), "{text:?}");
            }
        }
    }

    #[cfg(feature = "interchange")]
    #[test]
    fn bytes_that_are_not_utf8_write_nothing() {
        for bytes in [
            &b"\xff"[..],
            b"abc\xc3",
            b"0123456789abcdef0123\xe2\x82",
            b"\"quoted\" then \xed\xa0\x80",
            b"caf\xc3\xa9 \xc3",
        ] {
            let mut out = b"kept".to_vec();
            assert!(!write_utf8(&mut out, bytes), "{bytes:?}");
            assert_eq!(out, b"kept");
        }
        let mut out = Vec::new();
        assert!(write_utf8(&mut out, "café \"x\"".as_bytes()));
        assert_eq!(out, r#""café \"x\"""#.as_bytes());
    }
}
