//! ACL users and function libraries through the cluster map: installing a map (the node's
//! ACL follows its users, and connections of a user the map no longer has are closed, as
//! Redis closes those of a deleted user; the Lua state follows its libraries), carrying ACL
//! SETUSER / DELUSER / LOAD and FUNCTION LOAD / DELETE / FLUSH / RESTORE through group 0,
//! and seeding the map from the ACL file or the config file's `user` lines when the
//! cluster has no users.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Node;
use crate::cluster::{ClusterMap, MapChange};
use crate::commands::acl::file;
use crate::commands::acl::StoredUsers;
use crate::commands::{LibrariesChange, UsersChange};

/// How long a user change may take to reach this node once group 0 has it.
const SEEN_TIMEOUT: Duration = Duration::from_secs(10);

impl Node {
    /// Makes `map` the node's cluster map.
    pub(super) fn install_map(&self, map: ClusterMap) {
        let gone: Vec<bytes::Bytes> = {
            let old = self.map.read();
            old.users
                .keys()
                // The default user always exists (built from requirepass when the map has
                // none).
                .filter(|name| !map.users.contains_key(*name) && &name[..] != b"default")
                .cloned()
                .collect()
        };
        self.shared.scripts.set_libraries(&map.libraries);
        let generation = self.shared.acl.generation();
        self.shared.acl.set_stored(&map.users);
        *self.map.write() = map;
        if self.shared.acl.generation() != generation {
            // Subscribers check their channels against their users' new rules.
            for client in self.shared.clients.all() {
                if client
                    .subscriptions
                    .iter()
                    .any(|n| n.load(Ordering::Relaxed) > 0)
                {
                    client.users_changed();
                }
            }
        }
        for name in gone {
            for client in self.shared.clients.all() {
                if *client.user.lock() == name {
                    client.kill();
                }
            }
        }
    }

    /// Carries a change to the users through group 0 and waits until this node has applied
    /// it (the map group's leader may be another node).
    pub(super) async fn change_users(&self, change: UsersChange) -> Result<(), String> {
        let op = match change {
            UsersChange::Set(name, rules) => MapChange::SetUser { name, rules },
            UsersChange::Delete(names) => MapChange::DelUsers { names },
            UsersChange::Replace(users) => MapChange::SetUsers { users },
        };
        self.change_map_and_see(op).await
    }

    /// Carries a change to the function libraries through group 0 and waits until this
    /// node has applied it.
    pub(super) async fn change_libraries(&self, change: LibrariesChange) -> Result<(), String> {
        let op = match change {
            LibrariesChange::Set(name, code) => MapChange::SetLibrary { name, code },
            LibrariesChange::Delete(name) => MapChange::DelLibrary { name },
            LibrariesChange::Replace(libraries) => MapChange::SetLibraries { libraries },
        };
        self.change_map_and_see(op).await
    }

    /// Proposes `op` to group 0 and waits until this node's map holds it.
    async fn change_map_and_see(&self, op: MapChange) -> Result<(), String> {
        self.change_meta(op.clone()).await?;
        let deadline = tokio::time::Instant::now() + SEEN_TIMEOUT;
        // Applying it again changes nothing once this node's map holds it.
        while self.map.read().clone().apply(&op) {
            if tokio::time::Instant::now() >= deadline {
                return Err("the change did not reach this node in time".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// At start-up: the users of `aclfile` or of the config file's `user` lines go into the
    /// cluster map when it holds none (a cluster's first node seeds it; afterwards the map,
    /// changed by ACL SETUSER, is what counts and survives restarts).
    pub async fn seed_users(&self, configured: Option<StoredUsers>) -> Result<(), String> {
        let Some(users) = configured else {
            return Ok(());
        };
        if !self.map.read().users.is_empty() || users.is_empty() {
            return Ok(());
        }
        self.change_users(UsersChange::Replace(users)).await
    }
}

/// The users the node's settings name: the ACL file's, or the config file's `user` lines
/// (Redis refuses both at once). Blocking file I/O: called before the runtime serves.
pub fn configured_users(
    aclfile: &str,
    user_lines: &[Vec<String>],
) -> Result<Option<StoredUsers>, String> {
    if !aclfile.is_empty() && !user_lines.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    if !aclfile.is_empty() {
        return file::read(std::path::Path::new(aclfile)).map(Some);
    }
    if user_lines.is_empty() {
        return Ok(None);
    }
    let lines: Vec<Vec<bytes::Bytes>> = user_lines
        .iter()
        .map(|line| {
            std::iter::once("user")
                .chain(line.iter().map(String::as_str))
                .map(|a| bytes::Bytes::from(a.to_string()))
                .collect()
        })
        .collect();
    file::parse_lines(&lines, "config file").map(Some)
}
