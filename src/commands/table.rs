//! The command table: the single source of truth for what Basalt runs.
//!
//! Each entry pairs a command's metadata (arity, flags, key positions, ACL categories, docs,
//! generated into `specs.rs`) with its handler and, for writes, its apply function. COMMAND,
//! routing and arity checks all read from here.

use ahash::AHashMap;
use bytes::Bytes;

use super::key_specs;
use super::spec::CommandSpec;
use super::specs::SPECS;
use super::stats::CommandStats;
use super::{
    acl, bitmaps, cluster, connection, functions, geo, hashes, hll, keyevents, keys, latency,
    lists, lists_blocking, memory, monitor, pubsub, scripting, server, sets, sort, streams,
    strings, tracking, transactions, zsets, ApplyFn, Handler,
};

pub struct Command {
    pub spec: &'static CommandSpec,
    /// The command's id in the ACL catalog.
    pub acl_id: usize,
    pub run: Handler,
    pub apply: Option<ApplyFn>,
    pub subcommands: Vec<Command>,
    pub stats: CommandStats,
}

impl Command {
    pub fn subcommand(&self, name: &[u8]) -> Option<&Command> {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.subcommands
            .iter()
            .find(|c| c.spec.name.split('|').nth(1) == Some(lower.as_str()))
    }

    /// Indexes of the key arguments, from the command's key specs (`key_specs.rs`).
    pub fn key_positions<'a>(&self, args: &'a [Bytes]) -> impl Iterator<Item = usize> + 'a {
        key_specs::keys_of(self.spec, args).map(|k| k.index)
    }

    pub fn is_write(&self) -> bool {
        self.spec.has_flag("write")
    }

    /// Whether this call writes: the command's write flag, except for SORT without STORE,
    /// which Redis flags as a write for its STORE form but only reads.
    pub fn writes(&self, args: &[Bytes]) -> bool {
        if self.spec.name == "sort" {
            return args
                .iter()
                .skip(2)
                .any(|a| a.eq_ignore_ascii_case(b"store"));
        }
        self.is_write()
    }
}

/// Handlers by command name; `None` apply for commands that never write.
type Binding = (&'static str, Handler, Option<ApplyFn>);

fn bindings() -> Vec<Binding> {
    let mut all = Vec::new();
    all.extend(strings::COMMANDS.iter().copied());
    all.extend(bitmaps::COMMANDS.iter().copied());
    all.extend(hashes::COMMANDS.iter().copied());
    all.extend(hll::COMMANDS.iter().copied());
    all.extend(lists::COMMANDS.iter().copied());
    all.extend(lists_blocking::COMMANDS.iter().copied());
    all.extend(sets::COMMANDS.iter().copied());
    all.extend(zsets::COMMANDS.iter().copied());
    all.extend(streams::COMMANDS.iter().copied());
    all.extend(sort::COMMANDS.iter().copied());
    all.extend(geo::COMMANDS.iter().copied());
    all.extend(keys::COMMANDS.iter().copied());
    all.extend(keyevents::COMMANDS.iter().copied());
    all.extend(transactions::COMMANDS.iter().copied());
    all.extend(scripting::COMMANDS.iter().copied());
    all.extend(functions::COMMANDS.iter().copied());
    all.extend(pubsub::COMMANDS.iter().copied());
    all.extend(connection::COMMANDS.iter().copied());
    all.extend(acl::COMMANDS.iter().copied());
    all.extend(tracking::COMMANDS.iter().copied());
    all.extend(server::COMMANDS.iter().copied());
    all.extend(latency::COMMANDS.iter().copied());
    all.extend(memory::COMMANDS.iter().copied());
    all.extend(monitor::COMMANDS.iter().copied());
    all.extend(cluster::COMMANDS.iter().copied());
    all
}

pub struct Table {
    by_name: AHashMap<&'static str, Command>,
}

impl Table {
    /// Joins every binding with its metadata. Panics at start-up if the two lists disagree,
    /// which the unit test below catches first.
    pub fn build() -> Table {
        let handlers: AHashMap<&str, (Handler, Option<ApplyFn>)> = bindings()
            .into_iter()
            .map(|(n, h, a)| (n, (h, a)))
            .collect();
        let mut by_name: AHashMap<&'static str, Command> = AHashMap::new();
        for spec in SPECS {
            let (run, apply) = *handlers
                .get(spec.name)
                .unwrap_or_else(|| panic!("command {} has metadata but no handler", spec.name));
            let cmd = Command {
                spec,
                acl_id: acl::catalog().id(spec.name).unwrap_or_else(|| {
                    panic!("command {} missing from the ACL catalog", spec.name)
                }),
                run,
                apply,
                subcommands: Vec::new(),
                stats: Default::default(),
            };
            match spec.name.split_once('|') {
                None => {
                    by_name.insert(spec.name, cmd);
                }
                Some((parent, _)) => by_name
                    .get_mut(parent)
                    .unwrap_or_else(|| panic!("subcommand {} before its parent", spec.name))
                    .subcommands
                    .push(cmd),
            }
        }
        Table { by_name }
    }

    /// Looks a command up by name, case-insensitively.
    pub fn get(&self, name: &[u8]) -> Option<&Command> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        for (dst, src) in buf.iter_mut().zip(name) {
            *dst = src.to_ascii_lowercase();
        }
        let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
        self.by_name.get(lower)
    }

    /// Every top-level command, in name order.
    pub fn commands(&self) -> Vec<&Command> {
        let mut all: Vec<&Command> = self.by_name.values().collect();
        all.sort_by_key(|c| c.spec.name);
        all
    }

    /// Every command and subcommand (each container before its subcommands), in name order.
    pub fn every_command(&self) -> impl Iterator<Item = &Command> {
        self.commands()
            .into_iter()
            .flat_map(|cmd| std::iter::once(cmd).chain(cmd.subcommands.iter()))
    }

    /// A command by `name` or a subcommand by `parent|sub`, case-insensitively.
    pub fn find(&self, name: &[u8]) -> Option<&Command> {
        let text = String::from_utf8_lossy(name).to_ascii_lowercase();
        match text.split_once('|') {
            None => self.get(name),
            Some((parent, sub)) => self.get(parent.as_bytes())?.subcommand(sub.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handler_has_metadata_and_every_write_an_apply() {
        let table = Table::build();
        let names: Vec<&str> = SPECS.iter().map(|m| m.name).collect();
        for (name, _, apply) in bindings() {
            assert!(
                names.contains(&name),
                "{name} has a handler but no metadata"
            );
            let top = table
                .get(name.split('|').next().unwrap().as_bytes())
                .unwrap();
            let is_write = SPECS
                .iter()
                .any(|m| m.name == name && m.flags.contains(&"write"));
            // A read that may rewrite its key's representation (PFCOUNT refreshing its cached
            // count: a key spec flagged RW) may apply through the log too.
            let rewrites = SPECS
                .iter()
                .any(|m| m.name == name && m.key_specs.iter().any(|k| k.flags.contains(&"RW")));
            // A container whose subcommands write (XGROUP) applies them all through its
            // own apply function.
            let subcommand_writes = SPECS
                .iter()
                .any(|m| m.name.starts_with(&format!("{name}|")) && m.flags.contains(&"write"));
            if !name.contains('|') {
                assert!(
                    is_write == apply.is_some()
                        || (rewrites && apply.is_some())
                        || (subcommand_writes && apply.is_some()),
                    "{name}: write flag vs apply function"
                );
                assert_eq!(top.is_write(), is_write);
            }
        }
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        let table = Table::build();
        let args = |s: &str| {
            s.split(' ')
                .map(|a| Bytes::from(a.to_string()))
                .collect::<Vec<_>>()
        };
        let keys = |cmd: &str, line: &str| {
            table
                .get(cmd.as_bytes())
                .unwrap()
                .key_positions(&args(line))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys("mset", "mset a 1 b 2"), vec![1, 3]);
        assert_eq!(keys("del", "del a b c"), vec![1, 2, 3]);
        assert_eq!(keys("get", "get a"), vec![1]);
        assert_eq!(keys("rename", "rename a b"), vec![1, 2]);
        assert!(keys("flushall", "flushall").is_empty());
    }
}
