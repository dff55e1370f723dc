use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("basalt-raftlog-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn data(group: u32, index: u64, term: u64) -> Bytes {
    Bytes::from(format!(
        "g{group}-i{index}-t{term}-{}",
        "x".repeat((index % 7) as usize)
    ))
}

/// A log id whose leader is derived from the term (so it round-trips too).
fn id(index: u64, term: u64) -> LogId {
    LogId {
        index,
        term,
        leader: term % 3 + 1,
    }
}

fn entry(group: u32, index: u64, term: u64) -> LogEntry {
    LogEntry {
        id: id(index, term),
        data: data(group, index, term),
    }
}

/// `(index, term)` of a group's entries, checking each entry's bytes on the way.
fn ids(log: &RaftLog, group: u32, range: impl std::ops::RangeBounds<u64>) -> Vec<(u64, u64)> {
    log.entries(group, range)
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e.data, data(group, e.id.index, e.id.term));
            assert_eq!(e.id, id(e.id.index, e.id.term));
            (e.id.index, e.id.term)
        })
        .collect()
}

#[test]
fn groups_share_the_log_and_survive_reopen() {
    let d = dir("basic");
    {
        let log = RaftLog::open(&d, SEGMENT_BYTES_DEFAULT).unwrap();
        for i in 0..10 {
            log.append(1, &[entry(1, i, 1)]).unwrap();
            log.append(2, &[entry(2, i + 5, 2)]).unwrap();
        }
        log.sync().unwrap();
        assert!(
            log.append(1, &[entry(1, 20, 1)]).is_err(),
            "a gap is refused"
        );
    }
    let log = RaftLog::open(&d, SEGMENT_BYTES_DEFAULT).unwrap();
    let got = log.entries(1, 3..6).unwrap();
    assert_eq!(got, (3..6).map(|i| entry(1, i, 1)).collect::<Vec<_>>());
    assert_eq!(
        log.state(2),
        LogState {
            last_purged: None,
            last: Some(id(14, 2))
        }
    );
    assert_eq!(log.state(9).last, None);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn truncate_then_overwrite_and_purge_replay_in_order() {
    let d = dir("trunc");
    {
        let log = RaftLog::open(&d, SEGMENT_BYTES_DEFAULT).unwrap();
        let batch: Vec<_> = (0..10).map(|i| entry(1, i, 1)).collect();
        log.append(1, &batch).unwrap();
        log.truncate_after(1, Some(5)).unwrap();
        log.append(1, &[entry(1, 6, 2), entry(1, 7, 2)]).unwrap();
        log.purge(1, id(2, 1)).unwrap();
        log.sync().unwrap();
    }
    let log = RaftLog::open(&d, SEGMENT_BYTES_DEFAULT).unwrap();
    assert_eq!(
        ids(&log, 1, ..),
        vec![(3, 1), (4, 1), (5, 1), (6, 2), (7, 2)]
    );
    assert_eq!(
        log.state(1),
        LogState {
            last_purged: Some(id(2, 1)),
            last: Some(id(7, 2))
        }
    );
    log.truncate_after(1, None).unwrap();
    assert_eq!(
        log.state(1).last,
        Some(id(2, 1)),
        "the purged id stays the last"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn purged_segments_are_deleted_and_the_purged_id_outlives_them() {
    let d = dir("purge");
    let log = RaftLog::open(&d, 4096).unwrap();
    for i in 0..500 {
        log.append(1, &[entry(1, i, 3)]).unwrap();
        log.append(2, &[entry(2, i, 1)]).unwrap();
    }
    let many = log.segment_count();
    assert!(many > 10, "{many} segments");
    log.purge(1, id(499, 3)).unwrap();
    assert!(
        log.segment_count() >= many,
        "group 2 still holds every segment"
    );
    log.purge(2, id(450, 1)).unwrap();
    let few = log.segment_count();
    assert!(few < 5, "{few} segments left");
    drop(log);
    let log = RaftLog::open(&d, 4096).unwrap();
    assert_eq!(
        log.state(1),
        LogState {
            last_purged: Some(id(499, 3)),
            last: Some(id(499, 3))
        }
    );
    assert_eq!(ids(&log, 2, ..).len(), 49);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_torn_tail_is_cut_and_what_came_before_is_kept() {
    let d = dir("torn");
    {
        let log = RaftLog::open(&d, SEGMENT_BYTES_DEFAULT).unwrap();
        for i in 0..20 {
            log.append(1, &[entry(1, i, 1)]).unwrap();
        }
        log.sync().unwrap();
    }
    let seg = segment::path(&d, 1);
    let len = std::fs::metadata(&seg).unwrap().len();
    // Cut the last record in half, then append garbage: both are a torn tail.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 10).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"\x05\x00\x00\x00garbage", len - 10)
        .unwrap();
    drop(f);
    let log = RaftLog::open(&d, SEGMENT_BYTES_DEFAULT).unwrap();
    assert_eq!(log.state(1).last, Some(id(18, 1)));
    log.append(1, &[entry(1, 19, 2)]).unwrap();
    drop(log);
    let log = RaftLog::open(&d, SEGMENT_BYTES_DEFAULT).unwrap();
    assert_eq!(ids(&log, 1, 19..), vec![(19, 2)]);
    let _ = std::fs::remove_dir_all(&d);
}

#[derive(Debug, Clone)]
enum Op {
    Append(u32, u8),
    Truncate(u32, u8),
    Purge(u32, u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3u32, 1..6u8).prop_map(|(g, n)| Op::Append(g, n)),
        1 => (0..3u32, 0..8u8).prop_map(|(g, back)| Op::Truncate(g, back)),
        1 => (0..3u32, 0..8u8).prop_map(|(g, keep)| Op::Purge(g, keep)),
        1 => Just(Op::Reopen),
    ]
}

/// A group's expected log.
#[derive(Default, Debug)]
struct Model {
    entries: BTreeMap<u64, u64>,
    purged: Option<LogId>,
    term: u64,
}

impl Model {
    fn last(&self) -> Option<LogId> {
        self.entries
            .iter()
            .next_back()
            .map(|(&i, &t)| id(i, t))
            .or(self.purged)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn the_log_matches_a_model_through_reopens(ops in proptest::collection::vec(op(), 1..120)) {
        let d = dir("model");
        let mut log = RaftLog::open(&d, 2048).unwrap();
        let mut models: Vec<Model> = (0..3).map(|_| Model::default()).collect();
        for op in ops {
            match op {
                Op::Append(g, n) => {
                    let m = &mut models[g as usize];
                    m.term += 1;
                    let start = m.last().map_or(0, |l| l.index + 1);
                    let batch: Vec<_> = (start..start + u64::from(n))
                        .map(|i| entry(g, i, m.term))
                        .collect();
                    log.append(g, &batch).unwrap();
                    for e in batch {
                        m.entries.insert(e.id.index, e.id.term);
                    }
                }
                Op::Truncate(g, back) => {
                    let m = &mut models[g as usize];
                    let Some((last, _)) = m.entries.iter().next_back().map(|(&i, &t)| (i, t)) else { continue };
                    let floor = m.purged.map_or(0, |p| p.index + 1);
                    let after = last.saturating_sub(u64::from(back));
                    if after < floor { continue; }
                    log.truncate_after(g, Some(after)).unwrap();
                    m.entries.split_off(&(after + 1));
                }
                Op::Purge(g, keep) => {
                    let m = &mut models[g as usize];
                    let Some((last, _)) = m.entries.iter().next_back().map(|(&i, &t)| (i, t)) else { continue };
                    let upto = last.saturating_sub(u64::from(keep));
                    let Some(&term) = m.entries.get(&upto) else { continue };
                    log.purge(g, id(upto, term)).unwrap();
                    m.entries = m.entries.split_off(&(upto + 1));
                    m.purged = Some(id(upto, term));
                }
                Op::Reopen => {
                    log.sync().unwrap();
                    drop(log);
                    log = RaftLog::open(&d, 2048).unwrap();
                }
            }
            for (g, m) in models.iter().enumerate() {
                let g = g as u32;
                prop_assert_eq!(log.state(g), LogState { last_purged: m.purged, last: m.last() });
                let got = ids(&log, g, ..);
                let want: Vec<(u64, u64)> = m.entries.iter().map(|(&i, &t)| (i, t)).collect();
                prop_assert_eq!(got, want);
                let bytes: u64 = m.entries.iter().map(|(&i, &t)| data(g, i, t).len() as u64).sum();
                prop_assert_eq!(log.group_bytes(g), bytes);
            }
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// Crash test: a child process (this test binary, re-run) appends to two groups, syncing
/// each append and purging as it goes over tiny segments, and prints each acknowledged
/// entry; the parent kill -9s it at varied moments and finally checks every acknowledged
/// entry is present (or purged) with its bytes.
#[test]
fn crash_cycles_keep_every_acknowledged_entry() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    if let Ok(d) = std::env::var("BASALT_RAFTLOG_CHILD_DIR") {
        crash_child(PathBuf::from(d));
        return;
    }
    let d = dir("crash");
    let mut acked: Vec<(u32, u64)> = Vec::new();
    for cycle in 0..20u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "raft::log::tests::crash_cycles_keep_every_acknowledged_entry",
                "--nocapture",
            ])
            .env("BASALT_RAFTLOG_CHILD_DIR", &d)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let kill_after = (cycle * 53) % 400;
        for (seen, line) in lines.enumerate() {
            let Ok(line) = line else { break };
            let mut parts = line.split(' ');
            if parts.next() == Some("ack") {
                let g: u32 = parts.next().unwrap().parse().unwrap();
                let i: u64 = parts.next().unwrap().parse().unwrap();
                acked.push((g, i));
            }
            if seen as u64 > kill_after {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(acked.len() > 100, "{} acknowledged", acked.len());
    let log = RaftLog::open(&d, 8192).unwrap();
    for (g, i) in acked {
        let purged = log.state(g).last_purged.map_or(0, |p| p.index + 1);
        if i < purged {
            continue;
        }
        assert_eq!(
            ids(&log, g, i..=i),
            vec![(i, 1)],
            "group {g} entry {i} lost"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

fn crash_child(d: PathBuf) {
    use std::io::Write;
    let log = RaftLog::open(&d, 8192).unwrap();
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        let g = (n % 2) as u32;
        let next = log.state(g).last.map_or(0, |l| l.index + 1);
        log.append(g, &[entry(g, next, 1)]).unwrap();
        log.sync().unwrap();
        if next % 40 == 39 {
            log.purge(g, id(next - 20, 1)).unwrap();
        }
        if writeln!(out, "ack {g} {next}")
            .and_then(|_| out.flush())
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn reset_forgets_a_group_across_reopen() {
    let d = dir("reset");
    {
        let log = RaftLog::open(&d, SEGMENT_BYTES_DEFAULT).unwrap();
        for i in 1..=10 {
            log.append(1, &[entry(1, i, 1)]).unwrap();
            log.append(2, &[entry(2, i, 1)]).unwrap();
        }
        log.purge(1, id(4, 1)).unwrap();
        log.save_committed(1, id(8, 1)).unwrap();
        log.reset(1).unwrap();
        assert_eq!(log.state(1).last, None);
        assert_eq!(log.state(1).last_purged, None);
        assert_eq!(log.committed(1), None);
        // It starts over as a new replica would: from a later index.
        log.append(1, &[entry(1, 20, 3)]).unwrap();
        log.sync().unwrap();
    }
    let log = RaftLog::open(&d, SEGMENT_BYTES_DEFAULT).unwrap();
    assert_eq!(ids(&log, 1, ..), vec![(20, 3)]);
    assert_eq!(log.state(1).last_purged, None);
    assert_eq!(log.committed(1), None);
    assert_eq!(ids(&log, 2, ..).len(), 10, "other groups untouched");
    let _ = std::fs::remove_dir_all(&d);
}
