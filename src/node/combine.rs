//! Writes of different clients to one shard, proposed as one entry.
//!
//! Each of openraft's steps for an entry (the core loop, the log append, the commit, the
//! apply hand-off, the reply) costs about as much for one command as for many, so while a
//! shard has [`FLIGHTS_MAX`] proposals in flight, the writes that arrive for it wait, and
//! the next of them to lead proposes all of them together as one `EntryOp::Batch` (its own
//! first) when a flight lands. Apply runs a batch's commands in order, each atomically, so every client
//! gets the reply its write would have had alone. An idle shard's write is proposed at
//! once; under load the batches grow with the time a proposal takes (group commit).
//!
//! Only plain writes are combined (a command or one client's pipeline batch, with no origin
//! for client tracking); transactions, expiry, map changes and the rest are proposed alone.

use std::collections::VecDeque;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{apply, Node};
use crate::cluster::ShardId;
use crate::protocol::Reply;
use crate::raft::{Entry, EntryOp, ProposeError};

/// Proposals one shard has in flight before writes wait to be combined: two keep an append
/// overlapping a replication round in a cluster. (1, 2 and 4 measured the same within this
/// machine's noise, one node and three.)
const FLIGHTS_MAX: usize = 2;

/// The most commands one combined entry carries, and about the most argument bytes.
const COMMANDS_MAX: usize = 1024;
const BYTES_MAX: usize = 1 << 20;

/// Per shard: how many proposals are in flight, and the writes waiting for one to land.
pub(super) struct Combiner {
    queues: Vec<Mutex<Queue>>,
}

/// The waiting writes are bounded by the writers: each connection (at most `maxclients`)
/// and each peer request waits for one proposal round of its own at a time.
#[derive(Default)]
struct Queue {
    /// Proposals in flight (at most [`FLIGHTS_MAX`]).
    flights: usize,
    waiting: VecDeque<Waiter>,
}

struct Waiter {
    entry: Entry,
    turn: oneshot::Sender<Turn>,
}

/// What a waiting write learns: its reply, or that it leads the next proposal (with
/// these other writes).
enum Turn {
    Done(Result<Reply, ProposeError>),
    Lead(Vec<Waiter>),
}

impl Combiner {
    pub(super) fn new(shards: u16) -> Combiner {
        Combiner {
            queues: (0..shards).map(|_| Mutex::default()).collect(),
        }
    }

    /// Proposes `entry` to `shard`'s group, combined with other clients' writes when the
    /// shard is busy; the reply its apply gave.
    pub(super) async fn propose(
        &self,
        node: &Node,
        shard: ShardId,
        entry: &Entry,
    ) -> Result<Reply, ProposeError> {
        let Some(queue) = self
            .queues
            .get(usize::from(shard.0))
            .filter(|_| combinable(entry))
        else {
            return propose_alone(node, shard, entry).await;
        };
        let waiting = {
            let mut q = queue.lock();
            if q.flights >= FLIGHTS_MAX {
                let (turn, wait) = oneshot::channel();
                q.waiting.push_back(Waiter {
                    entry: entry.clone(),
                    turn,
                });
                Some(wait)
            } else {
                q.flights += 1;
                None
            }
        };
        let others = match waiting {
            None => Vec::new(),
            Some(wait) => match wait.await {
                Ok(Turn::Done(result)) => return result,
                Ok(Turn::Lead(others)) => others,
                Err(_) => return Err(abandoned()),
            },
        };
        let mut lead = Leading { queue, others };
        lead.propose(node, shard, entry).await
    }
}

/// The write leading a proposal, with the others it carries. However it ends — even
/// dropped mid-flight — the others get an answer and the next waiting write leads.
struct Leading<'a> {
    queue: &'a Mutex<Queue>,
    /// The companions not answered yet (all of them until the flight lands).
    others: Vec<Waiter>,
}

impl Leading<'_> {
    async fn propose(
        &mut self,
        node: &Node,
        shard: ShardId,
        own: &Entry,
    ) -> Result<Reply, ProposeError> {
        if self.others.is_empty() {
            return propose_alone(node, shard, own).await;
        }
        let members: Vec<&Entry> = std::iter::once(own)
            .chain(self.others.iter().map(|w| &w.entry))
            .collect();
        let (combined, spans) = combine(&members);
        let result = propose_alone(node, shard, &combined).await;
        let mut replies = split(result, &spans).into_iter();
        let own_reply = replies.next().unwrap_or_else(|| Err(abandoned()));
        for (waiter, reply) in self.others.drain(..).zip(replies) {
            // A waiter whose client left needs no answer.
            let _ = waiter.turn.send(Turn::Done(reply));
        }
        own_reply
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        for waiter in self.others.drain(..) {
            let _ = waiter.turn.send(Turn::Done(Err(abandoned())));
        }
        hand_on(self.queue);
    }
}

/// A flight landed: the first waiting write (whose client still waits) leads the next
/// proposal, with the writes that can share its entry; or the shard has one flight less.
fn hand_on(queue: &Mutex<Queue>) {
    let mut q = queue.lock();
    while let Some(first) = q.waiting.pop_front() {
        let others = take_companions(&mut q.waiting, &first.entry);
        match first.turn.send(Turn::Lead(others)) {
            Ok(()) => return,
            // Its client is gone: the others wait for the next leader.
            Err(Turn::Lead(others)) => {
                for w in others.into_iter().rev() {
                    q.waiting.push_front(w);
                }
            }
            Err(Turn::Done(_)) => {}
        }
    }
    q.flights -= 1;
}

/// The waiting writes that go in one entry with `lead`'s (the same database), in order,
/// within the entry's limits; the rest stay waiting.
fn take_companions(waiting: &mut VecDeque<Waiter>, lead: &Entry) -> Vec<Waiter> {
    let (mut commands, mut bytes) = (commands_of(lead), bytes_of(lead));
    let mut taken = Vec::new();
    let mut kept = VecDeque::new();
    while let Some(w) = waiting.pop_front() {
        let fits = commands + commands_of(&w.entry) <= COMMANDS_MAX
            && bytes + bytes_of(&w.entry) <= BYTES_MAX;
        if w.entry.db == lead.db && fits {
            commands += commands_of(&w.entry);
            bytes += bytes_of(&w.entry);
            taken.push(w);
        } else {
            kept.push_back(w);
        }
    }
    *waiting = kept;
    taken
}

async fn propose_alone(node: &Node, shard: ShardId, entry: &Entry) -> Result<Reply, ProposeError> {
    node.groups()
        .propose(shard, entry)
        .await
        .map(apply::reply_of)
}

fn abandoned() -> ProposeError {
    ProposeError::Fatal("the write was abandoned by the proposal carrying it".into())
}

fn combinable(entry: &Entry) -> bool {
    entry.origin.is_none() && matches!(entry.op, EntryOp::Command(_) | EntryOp::Batch(_))
}

fn commands_of(entry: &Entry) -> usize {
    match &entry.op {
        EntryOp::Batch(commands) => commands.len(),
        _ => 1,
    }
}

fn bytes_of(entry: &Entry) -> usize {
    let args = |a: &[bytes::Bytes]| a.iter().map(|b| b.len()).sum::<usize>();
    match &entry.op {
        EntryOp::Command(a) => args(a),
        EntryOp::Batch(commands) => commands.iter().map(|a| args(a)).sum(),
        _ => 0,
    }
}

/// Where a member's commands lie in the combined batch, and whether it was a batch (its
/// reply is then an array of theirs).
struct Span {
    start: usize,
    len: usize,
    batch: bool,
}

/// One batch entry of the members' commands, in order (the latest clock of theirs).
fn combine(members: &[&Entry]) -> (Entry, Vec<Span>) {
    let mut commands = Vec::new();
    let mut spans = Vec::with_capacity(members.len());
    for member in members {
        let start = commands.len();
        let batch = match &member.op {
            EntryOp::Command(args) => {
                commands.push(args.clone());
                false
            }
            EntryOp::Batch(more) => {
                commands.extend(more.iter().cloned());
                true
            }
            _ => unreachable!("only combinable entries are members"),
        };
        spans.push(Span {
            start,
            len: commands.len() - start,
            batch,
        });
    }
    let now_ms = members.iter().map(|m| m.now_ms).max().unwrap_or_default();
    let db = members.first().map_or(0, |m| m.db);
    (Entry::new(db, now_ms, EntryOp::Batch(commands)), spans)
}

/// Each member's reply from the combined entry's: its commands' replies, or the whole
/// entry's error for every member when it failed as a whole.
fn split(result: Result<Reply, ProposeError>, spans: &[Span]) -> Vec<Result<Reply, ProposeError>> {
    let total: usize = spans.iter().map(|s| s.len).sum();
    match result {
        Ok(Reply::Array(replies)) if replies.len() == total => spans
            .iter()
            .map(|s| {
                let mine = &replies[s.start..s.start + s.len];
                Ok(match s.batch {
                    true => Reply::Array(mine.to_vec()),
                    false => mine[0].clone(),
                })
            })
            .collect(),
        other => spans.iter().map(|_| other.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn command(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn a_combined_entry_keeps_each_members_commands_and_replies() {
        let one = Entry::new(0, 5, EntryOp::Command(command(&["set", "a", "1"])));
        let pipeline = Entry::new(
            0,
            9,
            EntryOp::Batch(vec![command(&["incr", "b"]), command(&["del", "c"])]),
        );
        let (combined, spans) = combine(&[&one, &pipeline]);
        assert_eq!(combined.now_ms, 9);
        let EntryOp::Batch(commands) = &combined.op else {
            panic!("not a batch: {:?}", combined.op);
        };
        assert_eq!(commands.len(), 3);
        let replies = Reply::Array(vec![Reply::OK, Reply::Integer(1), Reply::Integer(0)]);
        let split = split(Ok(replies), &spans);
        assert_eq!(split[0].as_ref().unwrap(), &Reply::OK);
        assert_eq!(
            split[1].as_ref().unwrap(),
            &Reply::Array(vec![Reply::Integer(1), Reply::Integer(0)])
        );
        // An entry that failed as a whole fails every member.
        let failed = super::split(Err(ProposeError::NotLeader(3)), &spans);
        assert!(failed
            .iter()
            .all(|r| matches!(r, Err(ProposeError::NotLeader(3)))));
        let whole = super::split(Ok(Reply::error("ERR no such db")), &spans);
        assert!(whole.iter().all(|r| matches!(r, Ok(Reply::Error(_)))));
    }

    #[test]
    fn companions_share_the_leaders_database_and_the_entry_limits() {
        let lead = Entry::new(0, 1, EntryOp::Command(command(&["set", "a", "1"])));
        let mut waiting = VecDeque::new();
        let mut waits = Vec::new();
        for (db, size) in [(0, 10), (1, 10), (0, BYTES_MAX), (0, 10)] {
            let (turn, wait) = oneshot::channel();
            let value = "x".repeat(size);
            let entry = Entry::new(db, 1, EntryOp::Command(command(&["set", "k", &value])));
            waiting.push_back(Waiter { entry, turn });
            waits.push(wait);
        }
        let taken = take_companions(&mut waiting, &lead);
        let sizes = |ws: &mut dyn Iterator<Item = &Waiter>| -> Vec<(u8, usize)> {
            ws.map(|w| (w.entry.db, bytes_of(&w.entry))).collect()
        };
        assert_eq!(sizes(&mut taken.iter()), vec![(0, 14), (0, 14)]);
        assert_eq!(
            sizes(&mut waiting.iter()),
            vec![(1, 14), (0, BYTES_MAX + 4)]
        );
    }
}
