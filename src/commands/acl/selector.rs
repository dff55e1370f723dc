//! One ACL selector: the commands it allows (a bit per command of the catalog), the keys
//! (glob patterns, each for reading, writing or both) and the pub/sub channels. A user has
//! a root selector and any number of further ones (`(...)` rules); a command runs when one
//! selector allows all of it.
//!
//! Rules apply as Redis 7.0 applies them, and a selector describes itself back as the
//! shortest rule list Redis would print (categories chosen greedily, then single commands).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::catalog::{catalog, category_bit, CATEGORIES};
use super::RuleError;
use crate::glob::glob_match;

/// A key pattern and what it allows on matching keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Bytes,
    pub read: bool,
    pub write: bool,
}

impl KeyPattern {
    fn describe(&self) -> String {
        let prefix = match (self.read, self.write) {
            (true, true) => "~",
            (true, false) => "%R~",
            (false, true) => "%W~",
            (false, false) => "%~",
        };
        format!("{prefix}{}", String::from_utf8_lossy(&self.pattern))
    }
}

/// Why a command was refused, in the order Redis ranks them (the most specific refusal of
/// all selectors is the one reported).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    /// The command itself.
    Command,
    /// The key at this argument index.
    Key(usize),
    /// The channel at this argument index.
    Channel(usize),
}

/// What the permission check needs to know of one call.
pub struct Call<'a> {
    /// The command's catalog id (the subcommand's, for a container).
    pub id: usize,
    pub args: &'a [Bytes],
    /// Keys: argument index, whether the command reads it, whether it writes it.
    pub keys: &'a [(usize, bool, bool)],
    /// Channels: argument index, and whether the argument is a pattern (PSUBSCRIBE), which
    /// must then be one of the selector's patterns literally.
    pub channels: &'a [(usize, bool)],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    allowed: Vec<u64>,
    /// Redis's reserved "future commands" bit: set by `+@all`, cleared only by `-@all`.
    future: bool,
    /// Every command allowed, nothing taken away since `+@all`.
    all_commands: bool,
    /// Commands allowed only with one of these first arguments (`+select|0`).
    first_args: BTreeMap<usize, Vec<String>>,
    keys: Vec<KeyPattern>,
    all_keys: bool,
    channels: Vec<Bytes>,
    all_channels: bool,
}

impl Selector {
    /// A selector allowing nothing; every channel when `acl-pubsub-default` is
    /// `allchannels`.
    pub fn empty(all_channels: bool) -> Selector {
        Selector {
            allowed: vec![0; catalog().count().div_ceil(64)],
            future: false,
            all_commands: false,
            first_args: BTreeMap::new(),
            keys: Vec::new(),
            all_keys: false,
            channels: Vec::new(),
            all_channels,
        }
    }

    /// Allows everything: `~* &* +@all`.
    pub fn everything() -> Selector {
        let mut s = Selector::empty(true);
        s.all_keys = true;
        s.set_all(true);
        s
    }

    /// Whether this selector allows every command, key and channel (checks can be skipped).
    pub fn unrestricted(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }

    fn bit(&self, id: usize) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
            self.all_commands = false;
        }
    }

    fn set_all(&mut self, on: bool) {
        let fill = if on { u64::MAX } else { 0 };
        self.allowed.iter_mut().for_each(|w| *w = fill);
        self.future = on;
        self.all_commands = on;
        self.first_args.clear();
    }

    /// Allows or forbids a command, and with a container all its subcommands.
    fn change(&mut self, id: usize, on: bool) {
        self.set_bit(id, on);
        self.first_args.remove(&id);
        for &child in &catalog().entries[id].children {
            self.set_bit(child, on);
        }
    }

    fn change_category(&mut self, bit: u32, on: bool) {
        let ids: Vec<usize> = catalog().in_category(bit).collect();
        for id in ids {
            self.change(id, on);
        }
    }

    /// Applies one rule that selectors understand (keys, channels, commands).
    pub fn apply(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        let text = String::from_utf8_lossy(rule);
        let lower = text.to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" => return self.add_key_pattern(b"~*"),
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
                return Ok(());
            }
            "allchannels" => return self.add_channel(b"&*"),
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
                return Ok(());
            }
            "allcommands" | "+@all" => {
                self.set_all(true);
                return Ok(());
            }
            "nocommands" | "-@all" => {
                self.set_all(false);
                return Ok(());
            }
            _ => {}
        }
        match rule.first() {
            Some(b'~' | b'%') => self.add_key_pattern(rule),
            Some(b'&') => self.add_channel(rule),
            Some(&sign @ (b'+' | b'-')) => {
                let on = sign == b'+';
                if let Some(category) = lower.strip_prefix(if on { "+@" } else { "-@" }) {
                    let bit = category_bit(category).ok_or(RuleError::Unknown)?;
                    self.change_category(bit, on);
                    return Ok(());
                }
                self.command_rule(&lower[1..], on)
            }
            _ => Err(RuleError::Syntax),
        }
    }

    fn command_rule(&mut self, name: &str, on: bool) -> Result<(), RuleError> {
        let catalog = catalog();
        let Some((command, first_arg)) = name.split_once('|') else {
            let id = catalog.id(name).ok_or(RuleError::Unknown)?;
            self.change(id, on);
            return Ok(());
        };
        if !on {
            let id = catalog.id(name).ok_or(RuleError::Unknown)?;
            self.change(id, false);
            return Ok(());
        }
        let id = catalog.id(command).ok_or(RuleError::Unknown)?;
        if first_arg.is_empty() {
            return Err(RuleError::Syntax);
        }
        if first_arg.contains('|') {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        if catalog.entries[id].children.is_empty() {
            let args = self.first_args.entry(id).or_default();
            if !args.iter().any(|a| a == first_arg) {
                args.push(first_arg.to_string());
            }
        } else {
            let sub = catalog.id(name).ok_or(RuleError::Unknown)?;
            self.change(sub, true);
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::AfterAllKeys);
        }
        let (read, write, at) = if rule[0] == b'%' {
            let (mut read, mut write) = (false, false);
            let mut at = rule.len();
            for (i, c) in rule.iter().enumerate().skip(1) {
                match c.to_ascii_uppercase() {
                    b'R' if !read => read = true,
                    b'W' if !write => write = true,
                    b'~' => {
                        at = i + 1;
                        break;
                    }
                    _ => return Err(RuleError::Syntax),
                }
            }
            if !read && !write {
                return Err(RuleError::Syntax);
            }
            (read, write, at)
        } else {
            (true, true, 1)
        };
        let pattern = Bytes::copy_from_slice(&rule[at..]);
        if &pattern[..] == b"*" && read && write {
            self.all_keys = true;
            self.keys.clear();
        } else if let Some(known) = self.keys.iter_mut().find(|k| k.pattern == pattern) {
            known.read |= read;
            known.write |= write;
        } else {
            self.keys.push(KeyPattern {
                pattern,
                read,
                write,
            });
        }
        Ok(())
    }

    fn add_channel(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        if self.all_channels {
            return Err(RuleError::AfterAllChannels);
        }
        let pattern = Bytes::copy_from_slice(&rule[1..]);
        if &pattern[..] == b"*" {
            self.all_channels = true;
            self.channels.clear();
        } else if !self.channels.contains(&pattern) {
            self.channels.push(pattern);
        }
        Ok(())
    }

    /// Whether this selector allows the call, or why not.
    pub fn check(&self, call: &Call) -> Result<(), Denied> {
        if !self.allows_command(call.id, call.args) {
            return Err(Denied::Command);
        }
        if !self.all_keys {
            for &(at, read, write) in call.keys {
                if !self.allows_key(&call.args[at], read, write) {
                    return Err(Denied::Key(at));
                }
            }
        }
        if !self.all_channels {
            for &(at, literal) in call.channels {
                if !self.allows_channel(&call.args[at], literal) {
                    return Err(Denied::Channel(at));
                }
            }
        }
        Ok(())
    }

    fn allows_command(&self, id: usize, args: &[Bytes]) -> bool {
        if self.all_commands || catalog().entries[id].no_auth || self.bit(id) {
            return true;
        }
        match (self.first_args.get(&id), args.get(1)) {
            (Some(allowed), Some(first)) => allowed
                .iter()
                .any(|a| a.as_bytes().eq_ignore_ascii_case(first)),
            _ => false,
        }
    }

    /// Whether the selector lets commands read any key (Redis's check of the key `*`,
    /// which SORT's BY and GET patterns need).
    pub fn reads_every_key(&self) -> bool {
        self.all_keys || self.allows_key(b"*", true, false)
    }

    fn allows_key(&self, key: &[u8], read: bool, write: bool) -> bool {
        self.keys
            .iter()
            .any(|p| (p.read || !read) && (p.write || !write) && glob_match(&p.pattern, key, false))
    }

    /// Whether the selector's channel rules allow `channel` (a pattern subscription when
    /// `literal`: then it must be one of the selector's patterns as written).
    pub fn allows_channel(&self, channel: &[u8], literal: bool) -> bool {
        if self.all_channels {
            return true;
        }
        self.channels.iter().any(|p| {
            if literal {
                &p[..] == channel
            } else {
                glob_match(p, channel, false)
            }
        })
    }

    /// The key patterns as ACL GETUSER shows them (`~*` for every key).
    pub fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let patterns: Vec<String> = self.keys.iter().map(KeyPattern::describe).collect();
        patterns.join(" ")
    }

    /// The channel patterns as ACL GETUSER shows them (`&*` for every channel).
    pub fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        let patterns: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        patterns.join(" ")
    }

    /// The selector as rules, as ACL LIST prints it: keys, channels, commands.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.all_keys {
            parts.push("~*".to_string());
        } else {
            parts.extend(self.keys.iter().map(KeyPattern::describe));
        }
        if self.all_channels {
            parts.push("&*".into());
        } else {
            parts.push("resetchannels".into());
            parts.extend(
                self.channels
                    .iter()
                    .map(|c| format!("&{}", String::from_utf8_lossy(c))),
            );
        }
        parts.push(self.describe_commands());
        parts.join(" ")
    }

    /// The command rules: `+@all` or `-@all`, then the categories that fit best, then
    /// single commands for what remains — the rules Redis 7.0 prints for these bits.
    pub fn describe_commands(&self) -> String {
        let catalog = catalog();
        let additive = !self.future;
        let mut rules = vec![if additive { "-@all" } else { "+@all" }.to_string()];
        let mut fake = Selector::empty(false);
        fake.set_all(!additive);
        let mut temp = self.clone();
        let mut applied = [false; CATEGORIES.len()];
        loop {
            let mut best: Option<(usize, usize, usize)> = None;
            for (j, _) in CATEGORIES.iter().enumerate().filter(|(j, _)| !applied[*j]) {
                let (mut on, mut off) = (0, 0);
                for id in catalog.in_category(1 << j) {
                    if temp.bit(id) {
                        on += 1;
                    } else {
                        off += 1;
                    }
                }
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                let better = match best {
                    None => true,
                    Some((_, min_diff, max_same)) => {
                        diff < min_diff || (diff == min_diff && same > max_same)
                    }
                };
                if same > diff && better {
                    best = Some((j, diff, same));
                }
            }
            let Some((j, _, _)) = best else { break };
            fake.change_category(1 << j, additive);
            temp.change_category(1 << j, !additive);
            rules.push(format!(
                "{}@{}",
                if additive { '+' } else { '-' },
                CATEGORIES[j]
            ));
            applied[j] = true;
        }
        for id in catalog.top_level() {
            self.describe_single(id, &mut fake, &mut rules);
            for &child in &catalog.entries[id].children {
                self.describe_single(child, &mut fake, &mut rules);
            }
            if !self.bit(id) {
                for arg in self.first_args.get(&id).into_iter().flatten() {
                    rules.push(format!("+{}|{arg}", catalog.name(id)));
                }
            }
        }
        rules.join(" ")
    }

    fn describe_single(&self, id: usize, fake: &mut Selector, rules: &mut Vec<String>) {
        let mine = self.bit(id);
        if mine != fake.bit(id) {
            rules.push(format!(
                "{}{}",
                if mine { '+' } else { '-' },
                catalog().name(id)
            ));
            fake.change(id, mine);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(rules: &[&str]) -> Selector {
        let mut s = Selector::empty(false);
        for r in rules {
            s.apply(r.as_bytes()).unwrap();
        }
        s
    }

    fn reapplied(s: &Selector) -> Selector {
        let mut again = Selector::empty(false);
        for rule in s.describe().split(' ') {
            again.apply(rule.as_bytes()).unwrap();
        }
        again
    }

    #[test]
    fn descriptions_apply_back_to_the_same_selector() {
        for rules in [
            &["+@all"][..],
            &["+@read", "-@dangerous", "+config|get", "+set"],
            &["+@all", "-get", "-config|set", "~a*", "%R~b*", "&c*"],
            &["+select|0", "+select|1", "+@hash", "-hset"],
            &["+@slow", "-@admin", "allkeys", "allchannels"],
        ] {
            let s = selector(rules);
            assert_eq!(reapplied(&s), s, "{rules:?}: {}", s.describe());
        }
        assert_eq!(selector(&["+@all"]).describe_commands(), "+@all");
        assert_eq!(
            selector(&["+@read", "-@dangerous", "+config|get", "+set"]).describe_commands(),
            // Redis prints the single commands in its hash table order; Basalt in name order.
            "-@all +@read +config|get -keys +set -sort_ro"
        );
    }

    #[test]
    fn checks_follow_commands_keys_and_channels() {
        let catalog = catalog();
        let s = selector(&["+get", "+set", "%R~r*", "~rw*", "&news.*", "+publish"]);
        let args =
            |v: &[&str]| -> Vec<Bytes> { v.iter().map(|a| Bytes::from(a.to_string())).collect() };
        let get = catalog.id("get").unwrap();
        let set = catalog.id("set").unwrap();
        fn call<'a>(id: usize, args: &'a [Bytes], keys: &'a [(usize, bool, bool)]) -> Call<'a> {
            Call {
                id,
                args,
                keys,
                channels: &[],
            }
        }
        let a = args(&["get", "r1"]);
        assert_eq!(s.check(&call(get, &a, &[(1, true, false)])), Ok(()));
        let a = args(&["set", "r1", "v"]);
        assert_eq!(
            s.check(&call(set, &a, &[(1, false, true)])),
            Err(Denied::Key(1))
        );
        let a = args(&["set", "rw1", "v"]);
        assert_eq!(s.check(&call(set, &a, &[(1, false, true)])), Ok(()));
        let del = catalog.id("del").unwrap();
        assert_eq!(s.check(&call(del, &a, &[])), Err(Denied::Command));
        let p = args(&["publish", "news.x", "m"]);
        let publish = catalog.id("publish").unwrap();
        let c = Call {
            id: publish,
            args: &p,
            keys: &[],
            channels: &[(1, false)],
        };
        assert_eq!(s.check(&c), Ok(()));
        let c = Call {
            id: publish,
            args: &p,
            keys: &[],
            channels: &[(1, true)],
        };
        assert_eq!(s.check(&c), Err(Denied::Channel(1)));
    }

    #[test]
    fn rule_errors_are_redis_errors() {
        let mut s = Selector::empty(false);
        assert_eq!(s.apply(b"+nosuch"), Err(RuleError::Unknown));
        assert_eq!(s.apply(b"+@nosuch"), Err(RuleError::Unknown));
        assert_eq!(s.apply(b"+get|"), Err(RuleError::Syntax));
        assert_eq!(s.apply(b"-get|x"), Err(RuleError::Unknown));
        assert_eq!(
            s.apply(b"+config|get|x"),
            Err(RuleError::FirstArgOfSubcommand)
        );
        assert_eq!(s.apply(b"%~x"), Err(RuleError::Syntax));
        assert_eq!(s.apply(b"%X~x"), Err(RuleError::Syntax));
        s.apply(b"~*").unwrap();
        assert_eq!(s.apply(b"~a"), Err(RuleError::AfterAllKeys));
        s.apply(b"&*").unwrap();
        assert_eq!(s.apply(b"&a"), Err(RuleError::AfterAllChannels));
        assert_eq!(s.apply(b"bogus"), Err(RuleError::Syntax));
    }
}
