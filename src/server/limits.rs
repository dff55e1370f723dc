//! Per-connection output limit tracking (`client-output-buffer-limit`, normal class).

use std::time::{Duration, Instant};

use crate::config::Config;

/// Tracks how long a connection's pending output has been over the soft limit.
#[derive(Default)]
pub struct OutputWatch {
    over_soft_since: Option<Instant>,
}

impl OutputWatch {
    /// Whether `pending` bytes of output break the limit of the client's class (normal, or
    /// pubsub for a subscriber); the client is then closed.
    pub fn exceeded(&mut self, config: &Config, pending: u64, subscribed: bool) -> bool {
        let (hard_bytes, soft_bytes, soft_secs) = config.output_limit_for(subscribed);
        if hard_bytes > 0 && pending >= hard_bytes {
            return true;
        }
        if soft_bytes > 0 && pending >= soft_bytes {
            let since = *self.over_soft_since.get_or_insert_with(Instant::now);
            return since.elapsed() >= Duration::from_secs(soft_secs);
        }
        self.over_soft_since = None;
        false
    }
}
