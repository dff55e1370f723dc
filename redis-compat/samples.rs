//! Sample argument lines made from a command's COMMAND DOCS argument tree, each argument
//! with the kind the tree gives it, so a test can fill the positions of one kind with the
//! values it wants (COMMAND GETKEYS lines, the hostile sweep).

use basalt::commands::spec::Arg;

/// One argument of a sample line.
#[derive(Clone, Debug)]
pub struct Slot {
    pub text: String,
    /// The argument's kind in the docs (`key`, `integer`, `double`, `pattern`, `string` …),
    /// or `token` for a literal keyword.
    pub kind: &'static str,
}

/// What a sample puts where the tree has a value of the given kind.
pub trait Fill {
    fn value(&mut self, kind: &'static str) -> String;
}

/// Appends `args` to `out`: the required ones, and with `optional` every optional one too
/// (the first choice of each `oneof`); repeated arguments twice.
pub fn sample(args: &[Arg], optional: bool, fill: &mut impl Fill, out: &mut Vec<Slot>) {
    for arg in args {
        if arg.flags.contains(&"optional") && !optional {
            continue;
        }
        let times = if arg.flags.contains(&"multiple") {
            2
        } else {
            1
        };
        for _ in 0..times {
            if let Some(token) = arg.token {
                out.push(Slot {
                    text: token.to_string(),
                    kind: "token",
                });
            }
            match arg.kind {
                "pure-token" => {}
                "oneof" => {
                    if let Some(first) = arg.arguments.first() {
                        sample(std::slice::from_ref(first), true, fill, out);
                    }
                }
                "block" => sample(arg.arguments, optional, fill, out),
                kind => out.push(Slot {
                    text: fill.value(kind),
                    kind,
                }),
            }
        }
    }
}
