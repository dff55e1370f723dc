//! Reading one sorted set: [`ZView`] over the stored state (at the proposer) or over a write
//! transaction (at apply), so ranges are selected by the same code in reads and writes.

use std::ops::Bound;

use bytes::Bytes;

use crate::commands::error::CmdError;
use crate::commands::Node;
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

    /// The 0-based position of `member` (at `score`) in score order.
    fn rank(&mut self, score: f64, member: &[u8]) -> Result<u64, CmdError> {
        let before = SubRange {
            start: Bound::Unbounded,
            end: Bound::Excluded(encoding::score_sub(score, member)),
        };
        self.count(Space::Scores, &before)
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
    pub fn new(node: &'a Node, db: u8, key: &[u8], zset: Collection) -> Stored<'a> {
        Stored {
            ks: &node.keyspace,
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
