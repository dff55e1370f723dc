//! LCS: longest common subsequence of two strings, with Redis's reply shapes and its exact
//! back-tracking order (so IDX ranges match redis-server's).

use super::error::CmdError;
use crate::protocol::Reply;

/// Bytes the dynamic-programming table may use (Redis refuses larger inputs too).
const TABLE_BYTES_MAX: u64 = 512 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct LcsOptions {
    pub len: bool,
    pub idx: bool,
    pub min_match_len: usize,
    pub with_match_len: bool,
}

pub fn lcs_reply(a: &[u8], b: &[u8], opts: &LcsOptions) -> Result<Reply, CmdError> {
    let (alen, blen) = (a.len(), b.len());
    if (alen as u64 + 1) * (blen as u64 + 1) * 4 > TABLE_BYTES_MAX {
        return Err(CmdError::msg(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let width = blen + 1;
    let mut table = vec![0u32; (alen + 1) * width];
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let lcs = |i: usize, j: usize| table[i * width + j];
    let total = lcs(alen, blen) as usize;
    if opts.len {
        return Ok(Reply::Integer(total as i64));
    }
    let mut result = vec![0u8; total];
    let mut idx = total;
    let mut matches = Vec::new();
    let (mut i, mut j) = (alen, blen);
    // Current range; `arange_start == alen` means none is open.
    let (mut arange_start, mut arange_end, mut brange_start, mut brange_end) = (alen, 0, 0, 0);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if arange_start == alen {
                arange_start = i - 1;
                arange_end = i - 1;
                brange_start = j - 1;
                brange_end = j - 1;
            } else if arange_start == i && brange_start == j {
                arange_start -= 1;
                brange_start -= 1;
            } else {
                emit = true;
            }
            if arange_start == 0 || brange_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if lcs(i - 1, j) > lcs(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
            if arange_start != alen {
                emit = true;
            }
        }
        if emit {
            let match_len = arange_end - arange_start + 1;
            if opts.min_match_len == 0 || match_len >= opts.min_match_len {
                let pair = |s: usize, e: usize| {
                    Reply::Array(vec![Reply::Integer(s as i64), Reply::Integer(e as i64)])
                };
                let mut m = vec![
                    pair(arange_start, arange_end),
                    pair(brange_start, brange_end),
                ];
                if opts.with_match_len {
                    m.push(Reply::Integer(match_len as i64));
                }
                matches.push(Reply::Array(m));
            }
            arange_start = alen;
        }
    }
    if opts.idx {
        Ok(Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(matches)),
            (Reply::bulk("len"), Reply::Integer(total as i64)),
        ]))
    } else {
        Ok(Reply::bulk(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_doc_example() {
        let opts = LcsOptions::default();
        assert_eq!(
            lcs_reply(b"ohmytext", b"mynewtext", &opts).unwrap(),
            Reply::bulk("mytext")
        );
        let opts = LcsOptions {
            idx: true,
            min_match_len: 4,
            with_match_len: true,
            ..Default::default()
        };
        let expected = Reply::Map(vec![
            (
                Reply::bulk("matches"),
                Reply::Array(vec![Reply::Array(vec![
                    Reply::Array(vec![Reply::Integer(4), Reply::Integer(7)]),
                    Reply::Array(vec![Reply::Integer(5), Reply::Integer(8)]),
                    Reply::Integer(4),
                ])]),
            ),
            (Reply::bulk("len"), Reply::Integer(6)),
        ]);
        assert_eq!(
            lcs_reply(b"ohmytext", b"mynewtext", &opts).unwrap(),
            expected
        );
    }
}
