//! The ACL file (`aclfile`) and the config file's `user` directives: one `user <name>
//! <rules…>` per line, as ACL LIST prints users. Reading checks every line and reports
//! them all, as Redis does; nothing is taken from a file with an error.

use std::path::Path;

use bytes::Bytes;

use super::{merge_selector_args, StoredUsers, User};

/// Users from `user` lines (each line split into arguments, `user` first); `origin` names
/// the lines in errors.
pub fn parse_lines(lines: &[Vec<Bytes>], origin: &str) -> Result<StoredUsers, String> {
    let mut users = StoredUsers::new();
    let mut errors = Vec::new();
    for (number, args) in lines.iter().enumerate() {
        let line = number + 1;
        let Some((first, rest)) = args.split_first() else {
            continue;
        };
        if !first.eq_ignore_ascii_case(b"user") || rest.is_empty() {
            errors.push(format!("{origin}:{line}: should start with user keyword"));
            continue;
        }
        let name = rest[0].clone();
        if name.iter().any(|c| *c == b' ' || *c == 0) {
            errors.push(format!(
                "{origin}:{line}: Usernames can't contain spaces or null characters"
            ));
            continue;
        }
        if users.contains_key(&name) {
            errors.push(format!(
                "{origin}:{line}: Duplicate user '{}' found",
                String::from_utf8_lossy(&name)
            ));
            continue;
        }
        let rules = match merge_selector_args(&rest[1..]) {
            Ok(rules) => rules,
            Err(e) => {
                errors.push(format!("{origin}:{line}: {}", e.trim_start_matches("ERR ")));
                continue;
            }
        };
        let mut user = User::new(name.clone(), false);
        if let Some((rule, e)) = rules
            .iter()
            .find_map(|r| user.apply(r, false).err().map(|e| (r, e)))
        {
            errors.push(format!(
                "{origin}:{line}: Error in user declaration '{}': {e}",
                String::from_utf8_lossy(rule)
            ));
            continue;
        }
        users.insert(name, user.rules().into_iter().map(Bytes::from).collect());
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        Err(errors.join(" "))
    }
}

/// Reads an ACL file (blocking file I/O: callers keep it off async workers).
pub fn read(path: &Path) -> Result<StoredUsers, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("Error loading ACLs, opening file '{}': {e}", path.display()))?;
    let mut lines = Vec::new();
    for raw in text.split(|c| *c == b'\n') {
        let trimmed = raw.trim_ascii();
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            lines.push(Vec::new());
            continue;
        }
        let args = crate::protocol::decode::split_inline_args(trimmed)
            .ok_or_else(|| "Error loading ACLs: unbalanced quotes in the file".to_string())?;
        lines.push(args);
    }
    parse_lines(&lines, &path.display().to_string())
}

/// Writes the users to an ACL file, replacing it whole (written aside, synced, renamed).
pub fn write(path: &Path, users: &[std::sync::Arc<User>]) -> std::io::Result<()> {
    use std::io::Write;
    let mut text = String::new();
    for user in users {
        text.push_str(&user.describe());
        text.push('\n');
    }
    let tmp = path.with_extension("tmp-acl");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|a| Bytes::from(a.to_string())).collect()
    }

    #[test]
    fn lines_become_users_and_errors_name_their_line() {
        let users = parse_lines(
            &[
                line("user alice on >p ~* +@read"),
                line("user bob off (+get ~a)"),
            ],
            "f",
        )
        .unwrap();
        assert_eq!(users.len(), 2);
        let err = parse_lines(
            &[
                line("user a on"),
                line("nope x"),
                line("user a on"),
                line("user c +nosuch"),
            ],
            "f",
        )
        .unwrap_err();
        assert!(err.contains("f:2: should start with user keyword"), "{err}");
        assert!(err.contains("f:3: Duplicate user 'a' found"), "{err}");
        assert!(
            err.contains("f:4: Error in user declaration '+nosuch'"),
            "{err}"
        );
    }
}
