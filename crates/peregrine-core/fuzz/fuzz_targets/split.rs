//! Splitting one input into socket reads, shared by the targets that check that a
//! reader finds the same things however its bytes arrive.

/// A seed for [`random_split`] that depends only on the input, so runs reproduce.
pub fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Splits `data` into reads of pseudo-random lengths (1 to 16 bytes, or all the rest).
pub fn random_split<'a>(data: &'a [u8], seed: &mut u64) -> Vec<&'a [u8]> {
    let mut reads = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let n = if (*seed).is_multiple_of(7) {
            rest.len()
        } else {
            (*seed % 16 + 1).min(rest.len() as u64) as usize
        };
        let (read, tail) = rest.split_at(n);
        reads.push(read);
        rest = tail;
    }
    reads
}
