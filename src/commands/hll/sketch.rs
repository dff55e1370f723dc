//! Redis's HyperLogLog representation, byte for byte, so a sketch moves between Redis and
//! Basalt as a plain string (GET/SET, DUMP/RESTORE) and keeps counting.
//!
//! ## Format
//! A 16-byte header — `"HYLL"`, encoding (0 dense, 1 sparse), three zero bytes, and the
//! cached cardinality as u64 LE whose top bit set means "stale" — then 16,384 registers of
//! 6 bits. Dense packs them LSB-first into 12,288 bytes. Sparse run-length codes them:
//! `00xxxxxx` (1–64 zero registers), `01xxxxxx yyyyyyyy` (1–16,384 zero registers),
//! `1vvvvvxx` (1–4 registers of value 1–32). A sparse sketch turns dense when a value
//! exceeds 32 or it would grow past 3,000 bytes. Updates follow Redis's in-place algorithm
//! (split the covering opcode, then merge neighbouring equal values), so the bytes match.
//! The estimate is Ertl's improved estimator over the register histogram, as in Redis 7.

pub const HEADER: usize = 16;
const REGISTERS: usize = 1 << 14;
const P: u32 = 14;
const Q: usize = 64 - P as usize;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
pub const DENSE_LEN: usize = HEADER + (REGISTERS * BITS).div_ceil(8);
const ENCODING_DENSE: u8 = 0;
const ENCODING_SPARSE: u8 = 1;
/// Redis's default `hll-sparse-max-bytes`.
const SPARSE_MAX_BYTES: usize = 3000;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// A damaged sketch (Redis: "INVALIDOBJ Corrupted HLL object detected").
#[derive(Debug, PartialEq, Eq)]
pub struct Corrupt;

/// Why a string is not a sketch.
#[derive(Debug, PartialEq, Eq)]
pub struct NotSketch;

/// Redis's `isHLLObjectOrReply` check of a string value.
pub fn check(value: &[u8]) -> Result<(), NotSketch> {
    if value.len() < HEADER || &value[..4] != b"HYLL" || value[4] > ENCODING_SPARSE {
        return Err(NotSketch);
    }
    if value[4] == ENCODING_DENSE && value.len() != DENSE_LEN {
        return Err(NotSketch);
    }
    Ok(())
}

/// A new, empty sparse sketch.
pub fn empty() -> Vec<u8> {
    let mut s = vec![0u8; HEADER];
    s[..4].copy_from_slice(b"HYLL");
    s[4] = ENCODING_SPARSE;
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(XZERO_MAX_LEN);
        s.extend(xzero(run));
        left -= run;
    }
    s
}

/// MurmurHash64A with Redis's seed.
fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the run length of zeros it brings (1..=Q+1).
fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | 1 << Q;
    (index, rest.trailing_zeros() as u8 + 1)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let (byte, fb) = (i * BITS / 8, i * BITS % 8);
    let b0 = u16::from(regs[byte]);
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & u16::from(REGISTER_MAX)) as u8
}

fn dense_set(regs: &mut [u8], i: usize, value: u8) {
    let (byte, fb) = (i * BITS / 8, i * BITS % 8);
    let v = u16::from(value);
    let max = u16::from(REGISTER_MAX);
    regs[byte] &= !((max << fb) as u8);
    regs[byte] |= (v << fb) as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        *next &= !((max >> (8 - fb)) as u8);
        *next |= (v >> (8 - fb)) as u8;
    }
}

fn is_zero(op: u8) -> bool {
    op & 0xc0 == 0
}

fn is_xzero(op: u8) -> bool {
    op & 0xc0 == 0x40
}

fn is_val(op: u8) -> bool {
    op & 0x80 != 0
}

fn val(value: u8, len: usize) -> u8 {
    ((value - 1) << 2 | (len as u8 - 1)) | 0x80
}

fn val_value(op: u8) -> u8 {
    ((op >> 2) & 0x1f) + 1
}

fn val_len(op: u8) -> usize {
    usize::from(op & 0x3) + 1
}

fn xzero(len: usize) -> [u8; 2] {
    let l = len - 1;
    [(l >> 8) as u8 | 0x40, (l & 0xff) as u8]
}

/// A zero run as the shortest opcode.
fn zeros(len: usize, out: &mut Vec<u8>) {
    if len > ZERO_MAX_LEN {
        out.extend(xzero(len));
    } else {
        out.push(len as u8 - 1);
    }
}

/// One sparse opcode at `s[p]`: (registers covered, bytes).
fn opcode(s: &[u8], p: usize) -> Result<(usize, usize), Corrupt> {
    let op = s[p];
    Ok(if is_zero(op) {
        (usize::from(op & 0x3f) + 1, 1)
    } else if is_xzero(op) {
        let low = *s.get(p + 1).ok_or(Corrupt)?;
        ((usize::from(op & 0x3f) << 8 | usize::from(low)) + 1, 2)
    } else {
        (val_len(op), 1)
    })
}

/// Every register of a sketch (dense or sparse), checking a sparse one covers all.
fn registers(sketch: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let body = &sketch[HEADER..];
    if sketch[4] == ENCODING_DENSE {
        return Ok((0..REGISTERS).map(|i| dense_get(body, i)).collect());
    }
    let mut regs = vec![0u8; REGISTERS];
    let (mut p, mut idx) = (0, 0);
    while p < body.len() {
        let (span, len) = opcode(body, p)?;
        if is_val(body[p]) {
            if idx + span > REGISTERS {
                return Err(Corrupt);
            }
            regs[idx..idx + span].fill(val_value(body[p]));
        }
        idx += span;
        p += len;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    Ok(regs)
}

/// The sketch in dense form (the header, cached cardinality included, carried over).
fn to_dense(sketch: &[u8]) -> Result<Vec<u8>, Corrupt> {
    if sketch[4] == ENCODING_DENSE {
        return Ok(sketch.to_vec());
    }
    let regs = registers(sketch)?;
    let mut dense = vec![0u8; DENSE_LEN];
    dense[..HEADER].copy_from_slice(&sketch[..HEADER]);
    dense[4] = ENCODING_DENSE;
    for (i, &r) in regs.iter().enumerate() {
        if r != 0 {
            dense_set(&mut dense[HEADER..], i, r);
        }
    }
    Ok(dense)
}

/// Raises register `index` to `count`; true if it changed. May turn the sketch dense.
fn set_register(sketch: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    if sketch[4] == ENCODING_DENSE {
        let regs = &mut sketch[HEADER..];
        if dense_get(regs, index) >= count {
            return Ok(false);
        }
        dense_set(regs, index, count);
        return Ok(true);
    }
    if count > VAL_MAX_VALUE {
        return promote(sketch, index, count);
    }
    // Find the opcode covering the register.
    let (mut p, mut first, mut prev) = (HEADER, 0usize, None);
    let span = loop {
        if p >= sketch.len() {
            return Err(Corrupt);
        }
        let (span, len) = opcode(sketch, p)?;
        if index < first + span {
            break span;
        }
        prev = Some(p);
        p += len;
        first += span;
    };
    let op = sketch[p];
    if is_val(op) {
        if val_value(op) >= count {
            return Ok(false);
        }
        if span == 1 {
            sketch[p] = val(count, 1);
            merge_values(sketch, prev);
            return Ok(true);
        }
    }
    if is_zero(op) && span == 1 {
        sketch[p] = val(count, 1);
        merge_values(sketch, prev);
        return Ok(true);
    }
    // Split the covering opcode around the register.
    let last = first + span - 1;
    let mut seq = Vec::with_capacity(5);
    if is_val(op) {
        let current = val_value(op);
        if index != first {
            seq.push(val(current, index - first));
        }
        seq.push(val(count, 1));
        if index != last {
            seq.push(val(current, last - index));
        }
    } else {
        if index != first {
            zeros(index - first, &mut seq);
        }
        seq.push(val(count, 1));
        if index != last {
            zeros(last - index, &mut seq);
        }
    }
    let old_len = if is_xzero(op) { 2 } else { 1 };
    if seq.len() > old_len && sketch.len() + seq.len() - old_len > SPARSE_MAX_BYTES {
        return promote(sketch, index, count);
    }
    sketch.splice(p..p + old_len, seq);
    merge_values(sketch, prev);
    Ok(true)
}

/// Redis's step 4: from the opcode before the change, up to five opcodes on, merges
/// neighbouring VAL opcodes of equal value whose runs fit one opcode.
fn merge_values(sketch: &mut Vec<u8>, prev: Option<usize>) {
    let mut p = prev.unwrap_or(HEADER);
    let mut scan = 5;
    while p < sketch.len() && scan > 0 {
        scan -= 1;
        let op = sketch[p];
        if is_xzero(op) {
            p += 2;
            continue;
        }
        if is_zero(op) {
            p += 1;
            continue;
        }
        if let Some(&next) = sketch.get(p + 1) {
            if is_val(next) && val_value(op) == val_value(next) {
                let len = val_len(op) + val_len(next);
                if len <= VAL_MAX_LEN {
                    sketch[p + 1] = val(val_value(op), len);
                    sketch.remove(p);
                    continue;
                }
            }
        }
        p += 1;
    }
}

fn promote(sketch: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    *sketch = to_dense(sketch)?;
    dense_set(&mut sketch[HEADER..], index, count);
    Ok(true)
}

/// Marks the cached cardinality stale.
pub fn invalidate_cache(sketch: &mut [u8]) {
    sketch[15] |= 0x80;
}

/// PFADD of `elements`: true if any register changed (the caller marks the cache stale).
pub fn add(sketch: &mut Vec<u8>, elements: &[bytes::Bytes]) -> Result<bool, Corrupt> {
    let mut changed = false;
    for e in elements {
        let (index, count) = pattern(e);
        changed |= set_register(sketch, index, count)?;
    }
    Ok(changed)
}

/// The cached cardinality, if it is fresh.
pub fn cached(sketch: &[u8]) -> Option<u64> {
    (sketch[15] & 0x80 == 0)
        .then(|| u64::from_le_bytes(sketch[8..16].try_into().unwrap_or_default()))
}

pub fn store_cache(sketch: &mut [u8], card: u64) {
    sketch[8..16].copy_from_slice(&card.to_le_bytes());
}

/// Raises `max` to each register of `sketch` (PFCOUNT of several keys, PFMERGE).
pub fn merge_into(max: &mut [u8], sketch: &[u8]) -> Result<(), Corrupt> {
    for (m, r) in max.iter_mut().zip(registers(sketch)?) {
        *m = (*m).max(r);
    }
    Ok(())
}

pub fn zero_registers() -> Vec<u8> {
    vec![0u8; REGISTERS]
}

/// PFMERGE's target: `dest` (or a new sketch), dense if any input was, raised to `max`.
pub fn merged(dest: Option<&[u8]>, max: &[u8], dense: bool) -> Result<Vec<u8>, Corrupt> {
    let mut sketch = dest.map_or_else(empty, <[u8]>::to_vec);
    if dense {
        sketch = to_dense(&sketch)?;
    }
    for (i, &m) in max.iter().enumerate() {
        if m != 0 {
            set_register(&mut sketch, i, m)?;
        }
    }
    invalidate_cache(&mut sketch);
    Ok(sketch)
}

pub fn is_dense(sketch: &[u8]) -> bool {
    sketch[4] == ENCODING_DENSE
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if before == z {
            return z / 3.0;
        }
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

/// The cardinality estimate of a set of registers.
pub fn estimate(regs: &[u8]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in regs {
        histo[usize::from(r)] += 1;
    }
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(histo[Q + 1])) / m);
    for j in (1..=Q).rev() {
        z += f64::from(histo[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// The estimate of one sketch.
pub fn count(sketch: &[u8]) -> Result<u64, Corrupt> {
    Ok(estimate(&registers(sketch)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sketch_matches_redis_bytes() {
        let s = empty();
        assert_eq!(s.len(), 18);
        assert_eq!(&s[..5], b"HYLL\x01");
        assert_eq!(&s[16..], &[0x7f, 0xff]);
        assert_eq!(count(&s), Ok(0));
    }

    #[test]
    fn estimates_stay_close_and_sparse_turns_dense() {
        let mut s = empty();
        let items: Vec<bytes::Bytes> = (0..20_000).map(|i| format!("e{i}").into()).collect();
        for chunk in items.chunks(100) {
            add(&mut s, chunk).unwrap();
        }
        assert!(is_dense(&s));
        let n = count(&s).unwrap() as f64;
        assert!((n - 20_000.0).abs() / 20_000.0 < 0.03, "{n}");
    }
}
