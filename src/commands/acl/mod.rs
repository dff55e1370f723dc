//! Access control (Redis 7.0's ACL): users, their rules and the check every command passes.
//!
//! Users live in the cluster map (group 0), as the rules `User::rules` writes, so a user
//! set through any node exists on every node; [`Acl`] holds them compiled, and the node
//! hands it the map's users whenever the map changes. The `default` user is the map's when
//! ACL SETUSER has written one, otherwise `on nopass ~* &* +@all` with `requirepass`'s
//! password (this node's setting) when that is set.

mod catalog;
mod commands;
pub mod file;
pub mod log;
mod redis_commands;
mod selector;
mod user;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::RwLock;

pub use catalog::{catalog, Catalog};
pub use commands::COMMANDS;
pub use selector::{Call, Denied};
pub use user::{merge_selector_args, User};

use super::key_specs;
use super::table::Command;
use super::{Session, Shared};

/// Why a rule of ACL SETUSER was refused (Redis's texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Syntax error")]
    Syntax,
    #[error("Unknown command or category name in ACL")]
    Unknown,
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    #[error("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")]
    BadHash,
    #[error("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")]
    AfterAllKeys,
    #[error("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")]
    AfterAllChannels,
    #[error("Allowing first-arg of a subcommand is not supported")]
    FirstArgOfSubcommand,
}

/// Users as the cluster map keeps them: name → rules.
pub type StoredUsers = BTreeMap<Bytes, Vec<Bytes>>;

#[derive(Default)]
struct State {
    stored: StoredUsers,
    requirepass: String,
    users: BTreeMap<Bytes, Arc<User>>,
}

/// The node's users, compiled, and the ACL log.
#[derive(Default)]
pub struct Acl {
    state: RwLock<State>,
    /// Counts changes to the users: a session re-reads its user when it moved.
    generation: AtomicU64,
    default_needs_auth: AtomicBool,
    pub log: log::AclLog,
}

impl Acl {
    pub fn new(requirepass: &str) -> Acl {
        let acl = Acl::default();
        acl.set_requirepass(requirepass);
        acl
    }

    /// The users of the cluster map (called whenever the map changes).
    pub fn set_stored(&self, stored: &StoredUsers) {
        let mut state = self.state.write();
        if state.stored != *stored {
            state.stored = stored.clone();
            self.rebuild(&mut state);
        }
    }

    /// `requirepass` changed: the default user's password, unless the map has a default
    /// user.
    pub fn set_requirepass(&self, password: &str) {
        let mut state = self.state.write();
        state.requirepass = password.to_string();
        self.rebuild(&mut state);
    }

    fn rebuild(&self, state: &mut State) {
        let mut users = BTreeMap::new();
        for (name, rules) in &state.stored {
            let user = User::from_rules(name.clone(), rules).unwrap_or_else(|e| {
                tracing::warn!(user = %String::from_utf8_lossy(name), error = %e,
                    "a user's rules in the cluster map do not apply here; the user is off");
                User::new(name.clone(), false)
            });
            users.insert(name.clone(), Arc::new(user));
        }
        users
            .entry(Bytes::from_static(b"default"))
            .or_insert_with(|| Arc::new(User::default_user(&state.requirepass)));
        let default = &users[&b"default"[..]];
        self.default_needs_auth
            .store(!(default.nopass && default.enabled), Ordering::Relaxed);
        state.users = users;
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a new connection must AUTH (the default user has a password or is off).
    pub fn default_needs_auth(&self) -> bool {
        self.default_needs_auth.load(Ordering::Relaxed)
    }

    pub fn user(&self, name: &[u8]) -> Option<Arc<User>> {
        self.state.read().users.get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.user(b"default")
            .unwrap_or_else(|| Arc::new(User::default_user("")))
    }

    /// Every user, in name order.
    pub fn users(&self) -> Vec<Arc<User>> {
        self.state.read().users.values().cloned().collect()
    }

    /// Whether the cluster map holds a default user (ACL SETUSER default ran).
    pub fn default_is_stored(&self) -> bool {
        self.state.read().stored.contains_key(&b"default"[..])
    }
}

/// A user allowed everything: sessions that run what another node already checked
/// (forwarded commands) and internal work.
pub fn internal_user() -> Arc<User> {
    static USER: OnceLock<Arc<User>> = OnceLock::new();
    USER.get_or_init(|| Arc::new(User::default_user("")))
        .clone()
}

/// The commands whose arguments are pub/sub channels: (first channel, all the rest too,
/// patterns). UNSUBSCRIBE and its kin are never refused.
fn channel_args(name: &str) -> Option<(usize, bool, bool)> {
    match name {
        "publish" | "spublish" => Some((1, false, false)),
        "subscribe" | "ssubscribe" => Some((1, true, false)),
        "psubscribe" => Some((1, true, true)),
        _ => None,
    }
}

/// Whether `user` may run `cmd` with `args` (the whole command line).
pub fn check(user: &User, cmd: &Command, args: &[Bytes]) -> Result<(), Denied> {
    if user.unrestricted() {
        return Ok(());
    }
    let keys: Vec<(usize, bool, bool)> = key_specs::keys_of(cmd.spec, args)
        .map(|k| {
            let flags = key_specs::flags_of(cmd.spec, args, k);
            let read = flags.contains(&"access");
            let write = flags
                .iter()
                .any(|f| matches!(*f, "insert" | "delete" | "update"));
            (k.index, read, write)
        })
        .collect();
    let channels: Vec<(usize, bool)> = match channel_args(cmd.spec.name) {
        Some((first, rest, patterns)) => {
            let last = if rest {
                args.len()
            } else {
                (first + 1).min(args.len())
            };
            (first..last).map(|i| (i, patterns)).collect()
        }
        None => Vec::new(),
    };
    user.check(&Call {
        id: cmd.acl_id,
        args,
        keys: &keys,
        channels: &channels,
    })
}

/// Records a refusal of the session's client in ACL LOG: `username` is the user it ran
/// as, or the one a failed AUTH named; the context is MULTI's while a transaction is queued.
/// `in_script`: the command was a script's.
pub fn log_refusal(
    shared: &Shared,
    session: &Session,
    in_script: bool,
    reason: log::Reason,
    object: String,
    username: &[u8],
) {
    let context = if in_script {
        log::Context::Lua
    } else if session.multi.is_some() {
        log::Context::Multi
    } else {
        log::Context::Toplevel
    };
    let refusal = log::Refusal {
        reason,
        context,
        object,
        username: String::from_utf8_lossy(username).into_owned(),
        client_info: session.info.describe(),
    };
    let max_len = shared.config.get("acllog-max-len").parse().unwrap_or(128);
    shared.acl.log.record(refusal, max_len);
}

/// The error a refused command gets.
pub fn noperm(denied: &Denied, cmd: &Command) -> String {
    match denied {
        Denied::Command => format!(
            "NOPERM this user has no permissions to run the '{}' command",
            cmd.spec.name
        ),
        Denied::Key(_) => {
            "NOPERM this user has no permissions to access one of the keys used as arguments".into()
        }
        Denied::Channel(_) => {
            "NOPERM this user has no permissions to access one of the channels used as arguments"
                .into()
        }
    }
}

/// What a refusal names in ACL LOG (and ACL DRYRUN): the command, the key or the channel.
pub fn refused_object(denied: &Denied, cmd: &Command, args: &[Bytes]) -> (log::Reason, String) {
    match denied {
        Denied::Command => (log::Reason::Command, cmd.spec.name.to_string()),
        Denied::Key(at) => (
            log::Reason::Key,
            String::from_utf8_lossy(&args[*at]).into_owned(),
        ),
        Denied::Channel(at) => (
            log::Reason::Channel,
            String::from_utf8_lossy(&args[*at]).into_owned(),
        ),
    }
}
