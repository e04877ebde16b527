//! Eight bytes read as one little-endian `u64` and tested all at once: the byte searches of
//! the string escaper and of the control-character check.

const ONES: u64 = u64::from_le_bytes([1; 8]);
/// The high bit of every byte.
pub(crate) const HIGH: u64 = ONES << 7;

/// The high bit of each byte of `word` below `n` (at most 0x80) is set. Above the lowest such
/// byte a bit may also be set wrongly (a borrow carries over), so the lowest set bit is exact
/// and the result is zero only when no byte is below `n`.
pub(crate) fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH
}

/// As [`below`], for the bytes of `word` equal to `byte`.
pub(crate) fn equal(word: u64, byte: u8) -> u64 {
    below(word ^ (ONES * u64::from(byte)), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every place, among bytes that match nothing: the lowest set bit
    /// is the place of the first match, and nothing is set without one.
    #[test]
    fn the_first_match_is_exact() {
        for place in 0..8 {
            for value in 0..=255u8 {
                let mut bytes = [b'a'; 8];
                bytes[place] = value;
                let word = u64::from_le_bytes(bytes);
                let first = |found: u64| (found != 0).then(|| found.trailing_zeros() / 8);
                let at = u32::try_from(place).unwrap();
                assert_eq!(first(below(word, 0x20)), (value < 0x20).then_some(at));
                assert_eq!(first(equal(word, b'"')), (value == b'"').then_some(at));
                assert_eq!(first(equal(word, 0xc2)), (value == 0xc2).then_some(at));
            }
        }
        // A match before another: the first one counts, whatever the borrow does above it.
        let word = u64::from_le_bytes([b'a', 0x00, 0x01, b'"', 0x1f, 0xff, 0x00, 0x20]);
        assert_eq!(below(word, 0x20).trailing_zeros() / 8, 1);
        assert_eq!(equal(word, b'"').trailing_zeros() / 8, 3);
    }
}
