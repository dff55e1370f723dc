//! Sending keyspace notifications (`commands::notify`): the node that applies an entry as
//! its shard's leader publishes the entry's events to its own subscribers and, through the
//! fan-out, to every other node's, so each event is sent once, from one node.

use super::apply::shard_of_group;
use super::Node;
use crate::commands::notify::Event;
use crate::commands::ClusterView;
use crate::raft::GroupId;

impl Node {
    /// Whether applying an entry of `group` here sends notifications: some are configured
    /// and this node leads the group's shard.
    pub(super) fn notifies(&self, group: GroupId) -> bool {
        group != 0
            && self.shared.config.keyspace_events() != 0
            && self.groups().is_leader(shard_of_group(group))
    }

    /// Publishes `events` here and to the other nodes.
    pub(super) fn send_events(&self, events: Vec<Event>) {
        let flags = self.shared.config.keyspace_events();
        let limit = self.shared.config.pubsub_output_limit();
        for event in events {
            for (channel, message) in event.messages(flags) {
                self.shared.pubsub.publish(&channel, &message, limit);
                self.publish_to_peers(false, channel, message);
            }
        }
    }
}
