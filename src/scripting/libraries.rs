//! The function libraries loaded in a Lua state: loading a library's code (it runs once,
//! registering its functions), and the registry FCALL finds functions in. The cluster map
//! holds the libraries' code; each node's state follows it (`Scripts::set_libraries`).

use std::collections::BTreeMap;

use ahash::AHashMap;
use bytes::Bytes;
use mlua::{Function, Value, Variadic};

use super::engine::RunControl;
use super::functions::{parse_metadata, FunctionInfo, Registrations};
use super::sandbox::{Sandbox, FUNCTION_CHUNK};

/// A library as loaded: its code and its functions.
#[derive(Clone)]
pub struct Library {
    pub code: Bytes,
    pub functions: Vec<FunctionInfo>,
}

/// A function FCALL can call.
#[derive(Clone)]
pub struct Callable {
    pub library: String,
    pub info: FunctionInfo,
    pub function: Function,
}

#[derive(Default)]
pub struct Libraries {
    pub loaded: BTreeMap<String, Library>,
    pub functions: AHashMap<String, Callable>,
    /// The generation of the wanted set this state holds (see `Scripts::set_libraries`).
    pub generation: u64,
}

impl Libraries {
    /// Makes the loaded set `wanted` (name → code): libraries whose code changed are
    /// loaded again, those gone are dropped. A library the map holds but this state cannot
    /// load (it loaded where FUNCTION LOAD ran) is logged and left out.
    pub fn follow(
        &mut self,
        sandbox: &Sandbox,
        control: &RunControl,
        wanted: &BTreeMap<Bytes, Bytes>,
    ) {
        let mut next = BTreeMap::new();
        let mut functions = AHashMap::new();
        for (name, code) in wanted {
            let name = String::from_utf8_lossy(name).into_owned();
            let registered = match self.loaded.get(&name) {
                Some(library) if library.code == *code => self
                    .functions
                    .values()
                    .filter(|c| c.library == name)
                    .map(|c| (c.info.clone(), c.function.clone()))
                    .collect(),
                _ => match load(sandbox, control, code) {
                    Ok((_, registered)) => registered,
                    Err(e) => {
                        tracing::error!(library = %name, error = %e, "cannot load a function library");
                        continue;
                    }
                },
            };
            let mut infos = Vec::with_capacity(registered.len());
            for (info, function) in registered {
                infos.push(info.clone());
                functions.insert(
                    info.name.clone(),
                    Callable {
                        library: name.clone(),
                        info,
                        function,
                    },
                );
            }
            infos.sort_by(|a, b| a.name.cmp(&b.name));
            next.insert(
                name,
                Library {
                    code: code.clone(),
                    functions: infos,
                },
            );
        }
        self.loaded = next;
        self.functions = functions;
    }

    /// FUNCTION LOAD's checks of `code` against the libraries loaded: its name, or the
    /// error reply's text.
    pub fn check(
        &self,
        sandbox: &Sandbox,
        control: &RunControl,
        code: &[u8],
        replace: bool,
    ) -> Result<String, String> {
        let (name, _) = parse_metadata(code)?;
        if self.loaded.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let (_, registered) = load(sandbox, control, code)?;
        for (info, _) in &registered {
            let clash = self
                .functions
                .get(&info.name)
                .is_some_and(|c| c.library != name);
            if clash {
                return Err(format!("ERR Function {} already exists", info.name));
            }
        }
        Ok(name)
    }
}

/// Loads a library's code in `sandbox`: its name and the functions it registered, or the
/// error reply's text. The code has `control`'s load time to run.
pub fn load(
    sandbox: &Sandbox,
    control: &RunControl,
    code: &[u8],
) -> Result<(String, Vec<(FunctionInfo, Function)>), String> {
    let (name, code_at) = parse_metadata(code)?;
    let chunk = sandbox
        .compile(&code[code_at..], FUNCTION_CHUNK)
        .map_err(|e| format!("ERR Error compiling function: {e}"))?;
    let registrations = Registrations::default();
    let lua = &sandbox.lua;
    let ran = lua.scope(|scope| {
        let register = scope
            .create_function(|lua, args: Variadic<Value>| registrations.register(lua, args))?;
        sandbox.hooks.raw_set("register", register)?;
        sandbox.hooks.raw_set("loading", true)?;
        sandbox.hooks.raw_set("stopping", Value::Nil)?;
        control.begin_load();
        let result = sandbox.call(&chunk, ());
        control.end_load();
        sandbox.hooks.raw_set("loading", Value::Nil)?;
        sandbox.hooks.raw_set("register", Value::Nil)?;
        Ok(result)
    });
    match ran {
        Ok(Ok(_)) => {}
        Ok(Err(raised)) => {
            let err: String = raised
                .raw_get::<mlua::String>("err")
                .map(|s| s.to_string_lossy())
                .unwrap_or_default();
            return Err(format!("ERR Error registering functions: {err}"));
        }
        Err(e) => return Err(format!("ERR Error registering functions: {e}")),
    }
    let registered = registrations.0.into_inner();
    if registered.is_empty() {
        return Err("ERR No functions registered".into());
    }
    Ok((name, registered))
}
