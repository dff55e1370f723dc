//! The allowlist of intended differences: `allowlist.txt`, one `command: reason` per line.
//! A script may compare a command's reply loosely (`!type`, `!error`) only if the command
//! is listed here with its reason.

use std::collections::BTreeMap;

pub fn load() -> BTreeMap<String, String> {
    let text = include_str!("allowlist.txt");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, reason) = line
            .split_once(':')
            .expect("allowlist line is `command: reason`");
        assert!(
            !reason.trim().is_empty(),
            "allowlist entry {name} has no reason"
        );
        out.insert(name.trim().to_ascii_lowercase(), reason.trim().to_string());
    }
    out
}

#[test]
fn every_entry_has_a_reason() {
    assert!(!load().is_empty());
}
