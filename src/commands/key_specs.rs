//! Finding a command's keys in its arguments from its key specs, as redis-server 7.0 does:
//! each spec says where its first key is (an index, or the argument after a keyword) and
//! how far its keys go (a range, or a count read from the arguments — ZUNIONSTORE's
//! `numkeys`). Routing, blocking wake-ups, access tracking and COMMAND GETKEYS all use it,
//! so commands whose keys move (ZUNIONSTORE, LMPOP, SINTERCARD, GEORADIUS … STORE) are
//! routed by every key they touch.

use bytes::Bytes;

use super::args::eq;
use super::spec::{BeginSearch, CommandSpec, FindKeys, KeySpec};

/// Key spec flags, as COMMAND INFO names them (`RW`, `access`, `update`…).
pub type KeyFlags = &'static [&'static str];

/// One key: its argument index and the flags of the spec that found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAt {
    pub index: usize,
    pub flags: KeyFlags,
}

/// Every key of `args` (the whole command line, name first), spec by spec, in the order
/// redis-server lists them. A spec whose keyword is missing contributes none; a `numkeys`
/// that is not a positive number or counts past the end makes the whole line keyless, as
/// in redis-server (the command then fails its own argument checks). Lazy: routing asks
/// for keys on every command, and most want only the first.
pub fn keys_of<'a>(
    spec: &'static CommandSpec,
    args: &'a [Bytes],
) -> impl Iterator<Item = KeyAt> + 'a {
    let valid = spec.key_specs.iter().all(|k| bounds(k, args).is_ok());
    let store = (spec.name == "sort")
        .then(|| sort_store_key(args))
        .flatten()
        .map(|index| KeyAt {
            index,
            flags: &["OW", "update"],
        });
    spec.key_specs
        .iter()
        .filter(move |_| valid)
        .filter_map(move |k| Some((k.flags, bounds(k, args).ok()??)))
        .flat_map(move |(flags, (first, last, step))| {
            (first..=last.min(args.len() - 1))
                .step_by(step)
                .map(move |index| KeyAt { index, flags })
        })
        .chain(store)
}

/// SORT's STORE key, which its key spec cannot place (the keyword may stand anywhere):
/// the last `STORE x`, skipping the arguments of LIMIT, GET and BY, as redis-server's
/// `sortGetKeys` does.
fn sort_store_key(args: &[Bytes]) -> Option<usize> {
    let mut found = None;
    let mut i = 2;
    while i < args.len() {
        if eq(&args[i], "limit") {
            i += 2;
        } else if eq(&args[i], "get") || eq(&args[i], "by") {
            i += 1;
        } else if eq(&args[i], "store") && i + 1 < args.len() {
            found = Some(i + 1);
        }
        i += 1;
    }
    found
}

/// The flags of `key` for this call: its spec's, except for the two commands whose spec
/// says `variable_flags` (SET reads its key only with GET; BITFIELD writes only with SET or
/// INCRBY), where redis-server looks at the arguments.
pub fn flags_of(spec: &CommandSpec, args: &[Bytes], key: KeyAt) -> KeyFlags {
    const READ_WRITE: KeyFlags = &["RW", "access", "update"];
    if !key.flags.contains(&"variable_flags") {
        return key.flags;
    }
    match spec.name {
        "set" if args.iter().skip(3).any(|a| eq(a, "get")) => READ_WRITE,
        "set" => &["OW", "update"],
        "bitfield" if bitfield_writes(args) => READ_WRITE,
        "bitfield" => &["RO", "access"],
        _ => key.flags,
    }
}

/// Whether BITFIELD's subcommands include a write (or something it cannot parse, which
/// it treats as one, as redis-server does).
fn bitfield_writes(args: &[Bytes]) -> bool {
    let mut i = 2;
    while i < args.len() {
        let rest = args.len() - i - 1;
        if eq(&args[i], "get") && rest >= 2 {
            i += 3;
        } else if eq(&args[i], "overflow") && rest >= 1 {
            i += 2;
        } else {
            return true;
        }
    }
    false
}

/// A spec that cannot describe this line (a bad `numkeys`).
struct Invalid;

/// A spec's first and last key index and the step between keys (`None`: it finds none).
fn bounds(spec: &KeySpec, args: &[Bytes]) -> Result<Option<(usize, usize, usize)>, Invalid> {
    let argc = args.len() as i64;
    let first = match spec.begin_search {
        BeginSearch::Index(i) => i,
        BeginSearch::Keyword(word, start) => {
            let found = if start >= 0 {
                (start..argc).find(|&i| eq(&args[i as usize], word))
            } else {
                (1..=argc + start)
                    .rev()
                    .find(|&i| eq(&args[i as usize], word))
            };
            match found {
                Some(i) => i + 1,
                None => return Ok(None),
            }
        }
        BeginSearch::Unknown => return Ok(None),
    };
    if first < 1 || first >= argc {
        return Ok(None);
    }
    let (first, last, step) = match spec.find_keys {
        FindKeys::Range {
            lastkey,
            keystep,
            limit,
        } => {
            let last = if lastkey >= 0 {
                first + lastkey
            } else if limit == 0 {
                argc + lastkey
            } else {
                first + (argc - first) / limit + lastkey
            };
            (first, last, keystep)
        }
        FindKeys::Keynum {
            keynumidx,
            firstkey,
            keystep,
        } => {
            let at = (first + keynumidx) as usize;
            let numkeys: i64 = args
                .get(at)
                .and_then(|n| std::str::from_utf8(n).ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let first = first + firstkey;
            // `numkeys` is the client's: a huge one must not overflow.
            let last = numkeys
                .checked_sub(1)
                .and_then(|n| n.checked_mul(keystep))
                .and_then(|n| n.checked_add(first))
                .filter(|last| numkeys >= 1 && *last < argc)
                .ok_or(Invalid)?;
            (first, last, keystep)
        }
        FindKeys::Unknown => return Ok(None),
    };
    if last < first || step < 1 {
        return Ok(None);
    }
    Ok(Some((first as usize, last as usize, step as usize)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::specs::SPECS;

    fn keys(line: &str) -> Vec<String> {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|a| Bytes::from(a.to_string()))
            .collect();
        let name = line.split(' ').next().unwrap().to_lowercase();
        let spec = SPECS.iter().find(|s| s.name == name).unwrap();
        keys_of(spec, &args)
            .map(|k| line.split(' ').nth(k.index).unwrap().to_string())
            .collect()
    }

    #[test]
    fn ranges_counts_and_keywords() {
        assert_eq!(keys("GET a"), ["a"]);
        assert_eq!(keys("MSET a 1 b 2"), ["a", "b"]);
        assert_eq!(keys("DEL a b c"), ["a", "b", "c"]);
        assert_eq!(keys("ZUNIONSTORE t 3 a b c"), ["t", "a", "b", "c"]);
        assert_eq!(keys("ZUNIONSTORE t 2 a b WEIGHTS 1 2"), ["t", "a", "b"]);
        assert_eq!(keys("LMPOP 2 la lb LEFT"), ["la", "lb"]);
        assert_eq!(keys("BLPOP a b 0"), ["a", "b"]);
        assert_eq!(keys("SINTERCARD 2 a b LIMIT 1"), ["a", "b"]);
        assert_eq!(
            keys("GEORADIUS g 0 0 1 km STORE dst"),
            ["g", "dst"],
            "a keyword spec"
        );
        assert_eq!(keys("GEORADIUS g 0 0 1 km"), ["g"]);
        // A count that is not a positive number, or runs past the end: no keys at all.
        assert!(keys("ZUNIONSTORE t x a").is_empty());
        assert!(keys("ZUNIONSTORE t 0 a").is_empty());
        assert!(keys("ZUNIONSTORE t 5 a").is_empty());
        assert!(keys("ZUNIONSTORE t 9223372036854775807 a").is_empty());
        assert!(keys("ZUNIONSTORE t -9223372036854775808 a").is_empty());
    }
}
