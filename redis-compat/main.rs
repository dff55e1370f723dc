//! Differential tests: the same commands go to a real redis-server and to Basalt; replies
//! must match byte for byte, except where `allowlist.txt` names an intended difference.
//!
//! - `scripts/*.txt`: curated sequences per command family, every error path included.
//! - `random`: a seeded generator of thousands of commands over a small key set.
//! - `clients`: real client tools against Basalt (redis-py, redis-benchmark, redis-cli).

#[path = "../tests/support/mod.rs"]
mod support;

mod acl_log;
mod allowlist;
mod clients;
mod command_keys;
mod hostile;
mod monitor;
mod notifications;
mod pubsub;
mod random;
mod samples;
mod script;
mod tracking;

use support::{start_basalt, start_redis, Client, Process};

/// A Basalt and a redis-server side by side, each with one client connection.
pub struct Pair {
    pub redis: Process,
    pub basalt: Process,
    pub redis_client: Client,
    pub basalt_client: Client,
    /// A second client on each side (see `both_other`).
    pub other: Option<(Client, Client)>,
}

impl Pair {
    pub fn start() -> Pair {
        let redis = start_redis();
        let basalt = start_basalt(&[]);
        let redis_client = redis.client();
        let basalt_client = basalt.client();
        Pair {
            redis,
            basalt,
            redis_client,
            basalt_client,
            other: None,
        }
    }

    /// Sends one command to both; returns (redis reply, basalt reply).
    pub fn both(&mut self, args: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
        (
            self.redis_client.call_bytes(args),
            self.basalt_client.call_bytes(args),
        )
    }

    /// Sends several commands in one write to each server and reads all replies.
    pub fn both_pipelined(&mut self, commands: &[Vec<String>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut wire = Vec::new();
        for cmd in commands {
            let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
            wire.extend(support::encode_command(&args));
        }
        self.redis_client.send_raw(&wire);
        self.basalt_client.send_raw(&wire);
        let redis = commands
            .iter()
            .map(|_| self.redis_client.read_reply())
            .collect();
        let basalt = commands
            .iter()
            .map(|_| self.basalt_client.read_reply())
            .collect();
        (redis, basalt)
    }

    /// Sends one command to both on a second connection to each (opened on first use, as
    /// another client would: WATCH tests write through it).
    pub fn both_other(&mut self, args: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
        let (redis, basalt) = (&self.redis, &self.basalt);
        let (r, b) = self
            .other
            .get_or_insert_with(|| (redis.client(), basalt.client()));
        (r.call_bytes(args), b.call_bytes(args))
    }

    /// Fresh connections on both sides (after QUIT, RESET tests and the like).
    pub fn reconnect(&mut self) {
        self.redis_client = self.redis.client();
        self.basalt_client = self.basalt.client();
    }
}
