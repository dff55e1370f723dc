//! Reading one sorted set: [`ZView`] over the stored state (at the proposer) or over a write
//! transaction (at apply), so ranges are selected by the same code in reads and writes.

use std::ops::Bound;

use bytes::Bytes;

use crate::commands::error::CmdError;
use crate::keyspace::{encoding, Collection, Keyspace, Space, SubRange, Txn};

/// One sorted set's records.
pub trait ZView {
    /// Its member count.
    fn len(&self) -> u64;

    /// Up to `limit` records of `space` in `range`, in sub-key order (descending when
    /// `reverse`).
    fn scan(
        &mut self,
        space: Space,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, CmdError>;

    /// How many records of `space` lie in `range`.
    fn count(&mut self, space: Space, range: &SubRange) -> Result<u64, CmdError>;

    /// The member record of `member`.
    fn member_record(&mut self, member: &[u8]) -> Result<Option<Bytes>, CmdError>;

    fn score(&mut self, member: &[u8]) -> Result<Option<f64>, CmdError> {
        self.member_record(member)?
            .map(|raw| decode(&raw))
            .transpose()
    }

    /// The 0-based position of `member` (at `score`) in score order. The index is walked
    /// from both ends a page at a time, so the cost follows the member's distance from the
    /// nearer end (ZREVRANK of a leader reads a page, not the whole set).
    fn rank(&mut self, score: f64, member: &[u8]) -> Result<u64, CmdError> {
        // Pages grow from small (a member near an end costs a block or two) to large.
        let mut page_len = 32usize;
        let at = encoding::score_sub(score, member);
        let mut before = SubRange {
            start: Bound::Unbounded,
            end: Bound::Excluded(at.clone()),
        };
        let mut after = SubRange {
            start: Bound::Excluded(at),
            end: Bound::Unbounded,
        };
        let (mut counted_before, mut counted_after) = (0u64, 0u64);
        loop {
            let page = self.scan(Space::Scores, &before, page_len, false)?;
            counted_before += page.len() as u64;
            match page.last() {
                Some((sub, _)) if page.len() == page_len => {
                    before.start = Bound::Excluded(sub.clone())
                }
                _ => return Ok(counted_before),
            }
            let page = self.scan(Space::Scores, &after, page_len, true)?;
            counted_after += page.len() as u64;
            match page.last() {
                Some((sub, _)) if page.len() == page_len => {
                    after.end = Bound::Excluded(sub.clone())
                }
                _ => return Ok(self.len() - 1 - counted_after),
            }
            page_len = (page_len * 2).min(4096);
        }
    }

    /// Members with scores from the score index, in score order (descending when
    /// `reverse`).
    fn scan_scores(
        &mut self,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, f64)>, CmdError> {
        self.scan(Space::Scores, range, limit, reverse)?
            .into_iter()
            .map(|(sub, _)| split(&sub))
            .collect()
    }

    /// Members with scores from the member records, in member order (descending when
    /// `reverse`).
    fn scan_members(
        &mut self,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, f64)>, CmdError> {
        self.scan(Space::Elements, range, limit, reverse)?
            .into_iter()
            .map(|(member, raw)| Ok((member, decode(&raw)?)))
            .collect()
    }

    /// Every member with its score, in score order.
    fn by_score(&mut self) -> Result<Vec<(Bytes, f64)>, CmdError> {
        self.scan_scores(&SubRange::all(), usize::MAX, false)
    }

    /// Every member with its score, in member order.
    fn members_by_name(&mut self) -> Result<Vec<(Bytes, f64)>, CmdError> {
        self.scan_members(&SubRange::all(), usize::MAX, false)
    }
}

fn decode(raw: &[u8]) -> Result<f64, CmdError> {
    encoding::decode_score(raw).ok_or_else(|| CmdError::Internal("bad score record".into()))
}

fn split(sub: &Bytes) -> Result<(Bytes, f64), CmdError> {
    encoding::split_score_sub(sub)
        .map(|(score, member)| (member, score))
        .ok_or_else(|| CmdError::Internal("bad score index record".into()))
}

/// A sorted set as stored (reads at the proposer).
pub struct Stored<'a> {
    ks: &'a Keyspace,
    db: u8,
    key: Bytes,
    zset: Collection,
}

impl<'a> Stored<'a> {
    pub fn new(ks: &'a Keyspace, db: u8, key: &[u8], zset: Collection) -> Stored<'a> {
        Stored {
            ks,
            db,
            key: Bytes::copy_from_slice(key),
            zset,
        }
    }

    /// The scores of several members, read from one consistent state.
    pub fn scores(&self, members: &[Bytes]) -> Result<Vec<Option<f64>>, CmdError> {
        self.ks
            .multi_get_elements(self.db, &self.key, self.zset.version, members)?
            .into_iter()
            .map(|raw| raw.map(|r| decode(&r)).transpose())
            .collect()
    }
}

impl ZView for Stored<'_> {
    fn len(&self) -> u64 {
        self.zset.count
    }

    fn scan(
        &mut self,
        space: Space,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
        Ok(self.ks.scan_space(
            space,
            self.db,
            &self.key,
            self.zset.version,
            range,
            limit,
            reverse,
        )?)
    }

    fn count(&mut self, space: Space, range: &SubRange) -> Result<u64, CmdError> {
        Ok(self
            .ks
            .count_space(space, self.db, &self.key, self.zset.version, range)?)
    }

    fn member_record(&mut self, member: &[u8]) -> Result<Option<Bytes>, CmdError> {
        Ok(self
            .ks
            .get_element(self.db, &self.key, self.zset.version, member)?)
    }
}

/// A sorted set inside a write (reads see the write's own changes).
pub struct InTxn<'t, 'k> {
    pub txn: &'t mut Txn<'k>,
    pub db: u8,
    pub key: Bytes,
    pub zset: Collection,
}

impl ZView for InTxn<'_, '_> {
    fn len(&self) -> u64 {
        self.zset.count
    }

    fn scan(
        &mut self,
        space: Space,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
        Ok(self.txn.scan_space(
            space,
            self.db,
            &self.key,
            self.zset.version,
            range,
            limit,
            reverse,
        )?)
    }

    fn count(&mut self, space: Space, range: &SubRange) -> Result<u64, CmdError> {
        Ok(self.scan(space, range, usize::MAX, false)?.len() as u64)
    }

    fn member_record(&mut self, member: &[u8]) -> Result<Option<Bytes>, CmdError> {
        Ok(self
            .txn
            .get_element(self.db, &self.key, self.zset.version, member)?)
    }
}
