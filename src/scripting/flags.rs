//! A script's flags: from its `#!lua flags=...` shebang line (EVAL), or from
//! `redis.register_function` (functions), with redis-server 7.0's names and errors.

/// What a script declares about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// A script without a shebang: no flags, and Redis's older rules (it may write and
    /// runs under EVAL_RO, where writes then fail).
    pub compat: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot_keys: bool,
}

impl ScriptFlags {
    /// Sets the flag named `name`; false for a name Redis does not know.
    pub fn set(&mut self, name: &[u8]) -> bool {
        let flag = match name {
            b"no-writes" => &mut self.no_writes,
            b"allow-oom" => &mut self.allow_oom,
            b"allow-stale" => &mut self.allow_stale,
            b"no-cluster" => &mut self.no_cluster,
            b"allow-cross-slot-keys" => &mut self.allow_cross_slot_keys,
            _ => return false,
        };
        *flag = true;
        true
    }

    /// The flags' names, in Redis's order (FUNCTION LIST).
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.no_writes, "no-writes"),
            (self.allow_oom, "allow-oom"),
            (self.allow_stale, "allow-stale"),
            (self.no_cluster, "no-cluster"),
            (self.allow_cross_slot_keys, "allow-cross-slot-keys"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// A script body's flags and where its code starts: after the shebang line, keeping its
/// line end so that line numbers in errors count from the shebang as redis-server's do.
/// The error is the reply's text.
pub fn parse_shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((
            ScriptFlags {
                compat: true,
                ..ScriptFlags::default()
            },
            0,
        ));
    }
    let Some(end) = body.iter().position(|b| *b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = &body[..end];
    let mut parts = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or_default();
    if engine != b"#!lua" {
        return Err(format!(
            "ERR Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(engine)
        ));
    }
    let mut flags = ScriptFlags::default();
    for part in parts {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "ERR Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        for name in list.split(|b| *b == b',').filter(|n| !n.is_empty()) {
            if !flags.set(name) {
                return Err(format!(
                    "ERR Unexpected flag in script shebang: {}",
                    String::from_utf8_lossy(name)
                ));
            }
        }
    }
    Ok((flags, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_parse_as_redis_server_parses_them() {
        let (flags, at) = parse_shebang(b"return 1").unwrap();
        assert!(flags.compat);
        assert_eq!(at, 0);
        let (flags, at) = parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(flags.no_writes && flags.allow_oom && !flags.compat && !flags.no_cluster);
        assert_eq!(at, 31);
        let (flags, _) = parse_shebang(b"#!lua flags=\nreturn 1").unwrap();
        assert_eq!(flags, ScriptFlags::default());
        for (body, error) in [
            (
                &b"#!lua flags=bogus\nreturn 1"[..],
                "ERR Unexpected flag in script shebang: bogus",
            ),
            (
                b"#!python\nreturn 1",
                "ERR Unexpected engine in script shebang: #!python",
            ),
            (
                b"#!lua name=x\nreturn 1",
                "ERR Unknown lua shebang option: name=x",
            ),
            (b"#!lua", "ERR Invalid script shebang"),
        ] {
            assert_eq!(parse_shebang(body).unwrap_err(), error);
        }
    }
}
