//! `notify-keyspace-events`: which keyspace notifications are sent, as Redis spells it
//! (`K`, `E`, `g`, `$`, `l`, `s`, `h`, `z`, `x`, `e`, `t`, `m`, `d`, `n`, and `A` for
//! `g$lshzxetd`), parsed to flags and written back in Redis's canonical order.

/// Event classes and channels, as bits.
pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 12;
pub const NEW: u32 = 1 << 13;
/// `A`: every class but key misses and new keys.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The letters of the classes `A` does not spell, in Redis's order.
const CLASSES: &[(char, u32)] = &[
    ('g', GENERIC),
    ('$', STRING),
    ('l', LIST),
    ('s', SET),
    ('h', HASH),
    ('z', ZSET),
    ('x', EXPIRED),
    ('e', EVICTED),
    ('t', STREAM),
    ('d', MODULE),
    ('n', NEW),
];

/// The flags a value spells; `None` for a character Redis does not know.
pub fn parse(value: &str) -> Option<u32> {
    let mut flags = 0;
    for c in value.chars() {
        flags |= match c {
            'A' => ALL,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            'm' => KEY_MISS,
            c => CLASSES.iter().find(|(l, _)| *l == c)?.1,
        };
    }
    Some(flags)
}

/// The flags in Redis's order, every one of them (`A` then `n` when both): how the value
/// is kept.
pub fn format(flags: u32) -> String {
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
        if flags & NEW != 0 {
            out.push('n');
        }
    } else {
        for (letter, bit) in CLASSES {
            if flags & bit != 0 {
                out.push(*letter);
            }
        }
    }
    for (letter, bit) in [('K', KEYSPACE), ('E', KEYEVENT), ('m', KEY_MISS)] {
        if flags & bit != 0 {
            out.push(letter);
        }
    }
    out
}

/// A kept value as Redis shows it (CONFIG GET): `n` is not written after `A`, though it
/// is in effect.
pub fn display(value: &str) -> String {
    value.replacen("An", "A", 1)
}

/// The error Redis gives for a bad value.
pub const INVALID: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_in_redis_order() {
        assert_eq!(format(parse("KEAx").unwrap()), "AKE");
        assert_eq!(format(parse("Elg$").unwrap()), "g$lE");
        assert_eq!(format(parse("nA").unwrap()), "An");
        assert_eq!(display(&format(parse("nAKE").unwrap())), "AKE");
        assert_eq!(format(parse("Kg$n").unwrap()), "g$nK");
        assert_eq!(format(parse("").unwrap()), "");
        assert_eq!(format(parse("mK").unwrap()), "Km");
        assert_eq!(parse("Kq"), None);
    }
}
