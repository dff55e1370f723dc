//! docs/COMMANDS.md and docs/CONFIG.md are generated from the command table and the settings
//! table; this test fails when they are stale. `BASALT_BLESS=1 cargo test docs` rewrites them.

use basalt::commands::specs::SPECS;
use basalt::config::table::{self, Kind};

fn check_or_bless(path: &str, generated: &str) {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("BASALT_BLESS").is_some() {
        std::fs::write(&full, generated).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&full).unwrap_or_default();
    assert!(
        current == generated,
        "{path} is stale: run `BASALT_BLESS=1 cargo test --test integration docs`"
    );
}

fn commands_markdown() -> String {
    let mut out = String::from(
        "# Commands\n\nGenerated from the command table (`src/commands/specs.rs`, `table.rs`) by \
         `BASALT_BLESS=1 cargo test --test integration docs`. Every command listed here works \
         fully; any other name gets `ERR unknown command`. Arity, flags and key positions are \
         redis-server 7's (COMMAND INFO and COMMAND DOCS return the same).\n\n\
         | command | group | arity | flags | summary |\n|---|---|---:|---|---|\n",
    );
    for m in SPECS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            m.name.replace('|', " "),
            m.doc.group,
            m.arity,
            m.flags.join(", "),
            m.doc.summary
        ));
    }
    out
}

fn kind_text(kind: &Kind) -> String {
    match kind {
        Kind::Bool => "yes/no".into(),
        Kind::Int { min, max } => format!("integer {min}..{max}"),
        Kind::Memory { .. } => "bytes (units: kb mb gb)".into(),
        Kind::Enum(choices) => choices.join(" / "),
        Kind::Text => "text".into(),
        Kind::KeyspaceEvents => "event classes (`KEA`, `Ex`, ...)".into(),
        Kind::Percentiles => "percentiles 0..100, space-separated".into(),
    }
}

fn config_markdown() -> String {
    let mut out = String::from(
        "# Settings\n\nGenerated from the settings table (`src/config/params.rs`, `table.rs`) by \
         `BASALT_BLESS=1 cargo test --test integration docs`. Every redis.conf 7.0 directive is \
         accepted as a flag (`--name value`), in a config file, and by CONFIG GET/SET. \
         Basalt acts on the ones marked **yes**; the others are kept and reported but change \
         nothing (encoding thresholds, RDB/AOF tuning, replication, TLS…), so existing \
         configuration files load unchanged.\n\n\
         | setting | default | values | CONFIG SET | Basalt acts on it |\n|---|---|---|---|---|\n",
    );
    for p in table::all() {
        let effective = if table::EFFECTIVE.contains(&p.name)
            || table::TLS_AT_STARTUP.contains(&p.name)
            || table::TLS_RELOADABLE.contains(&p.name)
        {
            "**yes**"
        } else {
            "no"
        };
        let mutable = if table::settable(p) {
            "yes"
        } else {
            "no (start-up only)"
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            p.name,
            p.default.replace('|', "\\|"),
            kind_text(&p.kind),
            mutable,
            effective
        ));
    }
    out
}

#[test]
fn generated_docs_are_current() {
    check_or_bless("docs/COMMANDS.md", &commands_markdown());
    check_or_bless("docs/CONFIG.md", &config_markdown());
}
