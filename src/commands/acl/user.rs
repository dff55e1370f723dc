//! An ACL user: enabled or not, its passwords (SHA-256, hex) or `nopass`, and its
//! selectors. `User::apply` is ACL SETUSER's rule language; `User::rules` the user's
//! description, which applied to a fresh user gives the same user back (how users travel in
//! the cluster map and in the ACL file).

use bytes::Bytes;

use super::selector::{Call, Denied, Selector};
use super::RuleError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: Bytes,
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` (true) or `skip-sanitize-payload` (false), when given.
    pub sanitize: Option<bool>,
    /// SHA-256 of each password, lowercase hex.
    pub passwords: Vec<String>,
    /// The root selector first, then the `(...)` ones.
    pub selectors: Vec<Selector>,
}

/// SHA-256 of a password, as lowercase hex.
pub fn hash_password(password: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, password);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_hash(hash: &[u8]) -> bool {
    hash.len() == 64 && hash.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Compares two equal-length strings in time that does not depend on where they differ.
fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl User {
    /// A user as ACL SETUSER creates it: off, no password, nothing allowed.
    pub fn new(name: Bytes, all_channels: bool) -> User {
        User {
            name,
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::empty(all_channels)],
        }
    }

    /// The default user of a node without ACL rules: `on nopass ~* &* +@all`, or with
    /// `requirepass`'s password.
    pub fn default_user(requirepass: &str) -> User {
        let mut user = User::new(Bytes::from_static(b"default"), true);
        user.enabled = true;
        user.selectors[0] = Selector::everything();
        if requirepass.is_empty() {
            user.nopass = true;
        } else {
            user.passwords.push(hash_password(requirepass.as_bytes()));
        }
        user
    }

    /// Applies one rule of ACL SETUSER. `all_channels` is `acl-pubsub-default` (for `reset`
    /// and new selectors).
    pub fn apply(&mut self, rule: &[u8], all_channels: bool) -> Result<(), RuleError> {
        let lower = rule.to_ascii_lowercase();
        match &lower[..] {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"sanitize-payload" => self.sanitize = Some(true),
            b"skip-sanitize-payload" => self.sanitize = Some(false),
            b"clearselectors" => self.selectors.truncate(1),
            b"reset" => {
                let name = self.name.clone();
                *self = User::new(name, all_channels);
                self.sanitize = Some(true);
            }
            _ => match rule.first() {
                Some(b'>') => self.add_password(hash_password(&rule[1..])),
                Some(b'#') => {
                    if !valid_hash(&rule[1..]) {
                        return Err(RuleError::BadHash);
                    }
                    self.add_password(String::from_utf8_lossy(&rule[1..]).into_owned());
                }
                Some(b'<') => self.remove_password(&hash_password(&rule[1..]))?,
                Some(b'!') => {
                    if !valid_hash(&rule[1..]) {
                        return Err(RuleError::BadHash);
                    }
                    self.remove_password(&String::from_utf8_lossy(&rule[1..]))?;
                }
                Some(b'(') if rule.ends_with(b")") && rule.len() >= 2 => {
                    let mut selector = Selector::empty(all_channels);
                    let inner = &rule[1..rule.len() - 1];
                    for part in inner.split(|c| *c == b' ').filter(|p| !p.is_empty()) {
                        selector.apply(part)?;
                    }
                    self.selectors.push(selector);
                }
                _ => self.selectors[0].apply(rule)?,
            },
        }
        Ok(())
    }

    fn add_password(&mut self, hash: String) {
        self.nopass = false;
        if !self.passwords.contains(&hash) {
            self.passwords.push(hash);
        }
    }

    fn remove_password(&mut self, hash: &str) -> Result<(), RuleError> {
        let before = self.passwords.len();
        self.passwords.retain(|p| p != hash);
        if self.passwords.len() == before {
            return Err(RuleError::NoSuchPassword);
        }
        Ok(())
    }

    /// Whether `password` opens this user (an enabled one).
    pub fn accepts(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let hash = hash_password(password);
        self.passwords.iter().any(|p| same_hash(p, &hash))
    }

    /// Whether connections of this user skip permission checks.
    pub fn unrestricted(&self) -> bool {
        self.selectors.iter().any(Selector::unrestricted)
    }

    /// Whether a selector lets commands read any key (SORT's BY and GET patterns).
    pub fn reads_every_key(&self) -> bool {
        self.selectors.iter().any(Selector::reads_every_key)
    }

    /// Whether one selector allows the call; otherwise the most specific refusal.
    pub fn check(&self, call: &Call) -> Result<(), Denied> {
        let mut worst = Denied::Command;
        for selector in &self.selectors {
            match selector.check(call) {
                Ok(()) => return Ok(()),
                Err(denied) => worst = worst.max(denied),
            }
        }
        Err(worst)
    }

    /// Whether the user's channel rules still allow a subscription (Redis closes the
    /// connection of a subscriber whose channels a rule change took away).
    pub fn may_subscribe(&self, channel: &[u8], pattern: bool) -> bool {
        self.selectors
            .iter()
            .any(|s| s.allows_channel(channel, pattern))
    }

    /// The flags as ACL GETUSER lists them.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        match self.sanitize {
            Some(false) => flags.push("skip-sanitize-payload"),
            Some(true) => flags.push("sanitize-payload"),
            None => {}
        }
        flags
    }

    /// The user as rules (flags, password hashes, root selector, other selectors): ACL
    /// LIST's line without `user <name>`, one rule per element.
    pub fn rules(&self) -> Vec<String> {
        let mut rules: Vec<String> = self.flags().into_iter().map(String::from).collect();
        rules.extend(self.passwords.iter().map(|p| format!("#{p}")));
        rules.extend(self.selectors[0].describe().split(' ').map(String::from));
        rules.extend(
            self.selectors[1..]
                .iter()
                .map(|s| format!("({})", s.describe())),
        );
        rules
    }

    /// ACL LIST's line for this user.
    pub fn describe(&self) -> String {
        format!(
            "user {} {}",
            String::from_utf8_lossy(&self.name),
            self.rules().join(" ")
        )
    }

    /// Builds a user from its rules (as `rules` wrote them).
    pub fn from_rules(name: Bytes, rules: &[Bytes]) -> Result<User, RuleError> {
        let mut user = User::new(name, false);
        for rule in rules {
            user.apply(rule, false)?;
        }
        Ok(user)
    }
}

/// Joins ACL SETUSER's arguments so that a selector split over several arguments — `(~a`
/// `+get)` — is one rule, as Redis does; an unclosed `(` is an error naming where it began.
pub fn merge_selector_args(args: &[Bytes]) -> Result<Vec<Bytes>, String> {
    let mut out = Vec::new();
    let mut open: Option<Vec<u8>> = None;
    for arg in args {
        match open.as_mut() {
            Some(acc) => {
                acc.push(b' ');
                acc.extend_from_slice(arg);
                if arg.ends_with(b")") {
                    out.push(Bytes::from(open.take().unwrap_or_default()));
                }
            }
            None if arg.starts_with(b"(") && !arg.ends_with(b")") => open = Some(arg.to_vec()),
            None => out.push(arg.clone()),
        }
    }
    match open {
        Some(acc) => Err(format!(
            "ERR Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(&acc)
        )),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &[&str]) -> User {
        let mut u = User::new(Bytes::from_static(b"u"), false);
        for r in rules {
            u.apply(r.as_bytes(), false).unwrap();
        }
        u
    }

    #[test]
    fn passwords_and_flags() {
        let mut u = user(&["on", ">a", ">a", ">b", "<a"]);
        assert_eq!(u.passwords, vec![hash_password(b"b")]);
        assert!(u.accepts(b"b") && !u.accepts(b"a"));
        assert_eq!(u.apply(b"<zz", false), Err(RuleError::NoSuchPassword));
        assert_eq!(u.apply(b"#abc", false), Err(RuleError::BadHash));
        u.apply(b"nopass", false).unwrap();
        assert!(u.accepts(b"anything") && u.passwords.is_empty());
        u.apply(b"off", false).unwrap();
        assert!(!u.accepts(b"anything"));
        assert_eq!(
            hash_password(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn descriptions_round_trip() {
        let u = user(&[
            "on",
            ">p1",
            "~foo*",
            "%R~bar*",
            "&chan*",
            "+@read",
            "(+set ~x*)",
        ]);
        let rules: Vec<Bytes> = u.rules().into_iter().map(Bytes::from).collect();
        assert_eq!(User::from_rules(u.name.clone(), &rules).unwrap(), u);
        assert!(u.describe().starts_with("user u on #"));
        assert!(u.describe().ends_with("(~x* resetchannels -@all +set)"));
        assert_eq!(
            User::default_user("").describe(),
            "user default on nopass ~* &* +@all"
        );
    }

    #[test]
    fn selectors_merge_across_arguments() {
        let args: Vec<Bytes> = ["on", "(~a", "+get)", "(+set)"]
            .iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let merged = merge_selector_args(&args).unwrap();
        assert_eq!(merged, vec!["on", "(~a +get)", "(+set)"]);
        assert!(merge_selector_args(&[Bytes::from("(+get")]).is_err());
    }
}
