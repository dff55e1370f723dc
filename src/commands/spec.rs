//! Command metadata types and their rendering as COMMAND INFO and COMMAND DOCS replies.
//!
//! The data itself is generated into `specs.rs`; the rendering follows redis-server 7.0's reply
//! layout field for field, so clients that read COMMAND (redis-cli, redis-py) see Redis.

use crate::protocol::Reply;

/// How COMMAND INFO locates the first key of a key spec.
#[derive(Debug, Clone, Copy)]
pub enum BeginSearch {
    Index(i64),
    Keyword(&'static str, i64),
    Unknown,
}

/// How COMMAND INFO finds the keys after the first.
#[derive(Debug, Clone, Copy)]
pub enum FindKeys {
    Range {
        lastkey: i64,
        keystep: i64,
        limit: i64,
    },
    Keynum {
        keynumidx: i64,
        firstkey: i64,
        keystep: i64,
    },
    Unknown,
}

#[derive(Debug)]
pub struct KeySpec {
    pub notes: Option<&'static str>,
    pub flags: &'static [&'static str],
    pub begin_search: BeginSearch,
    pub find_keys: FindKeys,
}

/// One argument in COMMAND DOCS.
#[derive(Debug)]
pub struct Arg {
    pub name: &'static str,
    pub kind: &'static str,
    pub display_text: Option<&'static str>,
    pub key_spec_index: Option<i64>,
    pub token: Option<&'static str>,
    pub summary: Option<&'static str>,
    pub since: Option<&'static str>,
    pub flags: &'static [&'static str],
    pub deprecated_since: Option<&'static str>,
    pub value: Option<&'static str>,
    pub arguments: &'static [Arg],
}

#[derive(Debug)]
pub struct Doc {
    pub summary: &'static str,
    pub since: &'static str,
    pub group: &'static str,
    pub complexity: Option<&'static str>,
    pub doc_flags: &'static [&'static str],
    pub deprecated_since: Option<&'static str>,
    pub replaced_by: Option<&'static str>,
    pub history: &'static [(&'static str, &'static str)],
    pub arguments: &'static [Arg],
}

/// Documentation of a command Redis itself does not document (Basalt's DEBUG).
pub const NO_DOC: Doc = Doc {
    summary: "A container for debugging commands",
    since: "1.0.0",
    group: "server",
    complexity: Some("Depends on subcommand."),
    doc_flags: &["syscmd"],
    deprecated_since: None,
    replaced_by: None,
    history: &[],
    arguments: &[],
};

/// Everything COMMAND reports about one command or subcommand (`name` is `parent|sub`).
#[derive(Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    pub arity: i64,
    pub flags: &'static [&'static str],
    pub first_key: i64,
    pub last_key: i64,
    pub step: i64,
    pub acl_categories: &'static [&'static str],
    pub tips: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    pub doc: Doc,
}

impl CommandSpec {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// Whether `argc` arguments (the name included) fit the command's arity: exactly it,
    /// or at least its absolute value when it is negative.
    pub fn arity_allows(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc as i64 == self.arity
        } else {
            argc as i64 >= -self.arity
        }
    }
}

fn bulk(s: &str) -> Reply {
    Reply::bulk(s.to_owned())
}

fn set_of(items: &[&str]) -> Reply {
    Reply::Set(
        items
            .iter()
            .map(|s| Reply::Status((*s).to_owned()))
            .collect(),
    )
}

fn pair(k: &str, v: Reply) -> (Reply, Reply) {
    (bulk(k), v)
}

/// COMMAND INFO's 10-element description; `subcommands` are the implemented subcommands.
pub fn info_reply(meta: &CommandSpec, subcommands: &[&CommandSpec]) -> Reply {
    Reply::Array(vec![
        bulk(meta.name),
        Reply::Integer(meta.arity),
        set_of(meta.flags),
        Reply::Integer(meta.first_key),
        Reply::Integer(meta.last_key),
        Reply::Integer(meta.step),
        set_of(meta.acl_categories),
        Reply::Set(meta.tips.iter().map(|t| bulk(t)).collect()),
        Reply::Set(meta.key_specs.iter().map(key_spec_reply).collect()),
        Reply::Set(subcommands.iter().map(|s| info_reply(s, &[])).collect()),
    ])
}

fn key_spec_reply(spec: &KeySpec) -> Reply {
    let mut map = Vec::with_capacity(4);
    if let Some(notes) = spec.notes {
        map.push(pair("notes", bulk(notes)));
    }
    map.push(pair("flags", set_of(spec.flags)));
    let (kind, detail) = match spec.begin_search {
        BeginSearch::Index(i) => ("index", vec![pair("index", Reply::Integer(i))]),
        BeginSearch::Keyword(k, from) => (
            "keyword",
            vec![
                pair("keyword", bulk(k)),
                pair("startfrom", Reply::Integer(from)),
            ],
        ),
        BeginSearch::Unknown => ("unknown", vec![]),
    };
    map.push(pair(
        "begin_search",
        Reply::Map(vec![
            pair("type", bulk(kind)),
            pair("spec", Reply::Map(detail)),
        ]),
    ));
    let (kind, detail) = match spec.find_keys {
        FindKeys::Range {
            lastkey,
            keystep,
            limit,
        } => (
            "range",
            vec![
                pair("lastkey", Reply::Integer(lastkey)),
                pair("keystep", Reply::Integer(keystep)),
                pair("limit", Reply::Integer(limit)),
            ],
        ),
        FindKeys::Keynum {
            keynumidx,
            firstkey,
            keystep,
        } => (
            "keynum",
            vec![
                pair("keynumidx", Reply::Integer(keynumidx)),
                pair("firstkey", Reply::Integer(firstkey)),
                pair("keystep", Reply::Integer(keystep)),
            ],
        ),
        FindKeys::Unknown => ("unknown", vec![]),
    };
    map.push(pair(
        "find_keys",
        Reply::Map(vec![
            pair("type", bulk(kind)),
            pair("spec", Reply::Map(detail)),
        ]),
    ));
    Reply::Map(map)
}

/// COMMAND DOCS' map for one command.
pub fn docs_reply(meta: &CommandSpec, subcommands: &[&CommandSpec]) -> Reply {
    let doc = &meta.doc;
    let mut map = vec![
        pair("summary", bulk(doc.summary)),
        pair("since", bulk(doc.since)),
        pair("group", bulk(doc.group)),
    ];
    if let Some(c) = doc.complexity {
        map.push(pair("complexity", bulk(c)));
    }
    if !doc.doc_flags.is_empty() {
        map.push(pair("doc_flags", set_of(doc.doc_flags)));
    }
    if let Some(d) = doc.deprecated_since {
        map.push(pair("deprecated_since", bulk(d)));
    }
    if let Some(r) = doc.replaced_by {
        map.push(pair("replaced_by", bulk(r)));
    }
    if !doc.history.is_empty() {
        let history = doc
            .history
            .iter()
            .map(|(v, d)| Reply::Array(vec![bulk(v), bulk(d)]));
        map.push(pair("history", Reply::Set(history.collect())));
    }
    if !doc.arguments.is_empty() {
        map.push(pair("arguments", args_reply(doc.arguments)));
    }
    if !subcommands.is_empty() {
        let subs = subcommands
            .iter()
            .map(|s| (bulk(s.name), docs_reply(s, &[])));
        map.push(pair("subcommands", Reply::Map(subs.collect())));
    }
    Reply::Map(map)
}

fn args_reply(args: &[Arg]) -> Reply {
    Reply::Array(
        args.iter()
            .map(|a| {
                let mut map = vec![pair("name", bulk(a.name)), pair("type", bulk(a.kind))];
                if let Some(t) = a.display_text {
                    map.push(pair("display_text", bulk(t)));
                }
                if let Some(i) = a.key_spec_index {
                    map.push(pair("key_spec_index", Reply::Integer(i)));
                }
                let optional = [
                    ("token", a.token),
                    ("summary", a.summary),
                    ("since", a.since),
                ];
                for (name, value) in optional {
                    if let Some(v) = value {
                        map.push(pair(name, bulk(v)));
                    }
                }
                if let Some(d) = a.deprecated_since {
                    map.push(pair("deprecated_since", bulk(d)));
                }
                if !a.flags.is_empty() {
                    map.push(pair("flags", set_of(a.flags)));
                }
                if let Some(v) = a.value {
                    map.push(pair("value", bulk(v)));
                }
                if !a.arguments.is_empty() {
                    map.push(pair("arguments", args_reply(a.arguments)));
                }
                Reply::Map(map)
            })
            .collect(),
    )
}
