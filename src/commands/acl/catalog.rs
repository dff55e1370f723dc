//! The commands ACL rules name: every command and subcommand of redis-server 7.0
//! (`redis_commands.rs`, so that rules written for Redis — `+eval`, `-@stream` — apply here
//! too) and any of Basalt's table Redis 7.0 lacks, in name order. Each gets an id (its
//! place), its categories as a bit mask, its container or subcommands. Rules are compiled
//! against it; the describer walks it in id order.

use std::sync::OnceLock;

use ahash::AHashMap;

use super::redis_commands::REDIS_COMMANDS;
use crate::commands::specs::SPECS;

/// Redis 7.0's command categories, in its order (ACL CAT lists them so, and a user's
/// description tries them so).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// One command or subcommand as ACL rules see it.
pub struct Entry {
    pub name: &'static str,
    /// Runs before AUTH (AUTH, HELLO, QUIT, RESET): no rule forbids it.
    pub no_auth: bool,
    /// Bit `i` set: the command is in `CATEGORIES[i]`.
    pub categories: u32,
    /// The container of a subcommand.
    pub parent: Option<usize>,
    /// The subcommands of a container.
    pub children: Vec<usize>,
}

pub struct Catalog {
    pub entries: Vec<Entry>,
    by_name: AHashMap<&'static str, usize>,
}

/// The catalog of the command table, built once.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::build)
}

/// The bit of a category name (without `@`), if Redis has it.
pub fn category_bit(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    CATEGORIES.iter().position(|c| *c == lower).map(|i| 1 << i)
}

impl Catalog {
    fn build() -> Catalog {
        let mut rows: Vec<(&'static str, Vec<&'static str>, bool)> = REDIS_COMMANDS
            .iter()
            .map(|(name, cats, no_auth)| (*name, cats.to_vec(), *no_auth))
            .collect();
        for spec in SPECS {
            if !rows.iter().any(|(name, _, _)| *name == spec.name) {
                let cats = spec
                    .acl_categories
                    .iter()
                    .map(|c| c.trim_start_matches('@'))
                    .collect();
                rows.push((spec.name, cats, spec.has_flag("no_auth")));
            }
        }
        rows.sort_by_key(|(name, _, _)| *name);
        let by_name: AHashMap<&'static str, usize> = rows
            .iter()
            .enumerate()
            .map(|(i, (name, _, _))| (*name, i))
            .collect();
        let mut entries: Vec<Entry> = rows
            .iter()
            .map(|(name, cats, no_auth)| Entry {
                name,
                no_auth: *no_auth,
                categories: cats
                    .iter()
                    .filter_map(|c| category_bit(c))
                    .fold(0, |acc, bit| acc | bit),
                parent: name
                    .split_once('|')
                    .and_then(|(parent, _)| by_name.get(parent).copied()),
                children: Vec::new(),
            })
            .collect();
        for id in 0..entries.len() {
            if let Some(parent) = entries[id].parent {
                entries[parent].children.push(id);
            }
        }
        Catalog { entries, by_name }
    }

    /// How many commands and subcommands it names.
    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// A command's id by its full name (`get`, `config|get`), case-insensitively.
    pub fn id(&self, name: &str) -> Option<usize> {
        self.by_name
            .get(name.to_ascii_lowercase().as_str())
            .copied()
    }

    pub fn name(&self, id: usize) -> &'static str {
        self.entries[id].name
    }

    /// Top-level commands (containers included), in id order.
    pub fn top_level(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.count()).filter(|id| self.entries[*id].parent.is_none())
    }

    /// Commands and subcommands in `category`, in id order.
    pub fn in_category(&self, bit: u32) -> impl Iterator<Item = usize> + '_ {
        (0..self.count()).filter(move |id| self.entries[*id].categories & bit != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_of_the_table_is_known_and_subcommands_have_parents() {
        let catalog = catalog();
        for spec in SPECS {
            for cat in spec.acl_categories {
                assert!(category_bit(cat.trim_start_matches('@')).is_some(), "{cat}");
            }
            assert!(catalog.id(spec.name).is_some(), "{}", spec.name);
        }
        assert!(
            catalog.id("eval").is_some(),
            "Redis's commands Basalt lacks are named too"
        );
        let get = catalog.id("CONFIG|GET").unwrap();
        let config = catalog.id("config").unwrap();
        assert_eq!(catalog.entries[get].parent, Some(config));
        assert!(catalog.entries[config].children.contains(&get));
        assert!(catalog
            .in_category(category_bit("read").unwrap())
            .any(|id| id == catalog.id("get").unwrap()));
    }
}
