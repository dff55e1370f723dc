-- The sandbox scripts run in (loaded once per Lua state by sandbox.rs, as chunk "=basalt").
--
-- Stock Lua 5.1 has no read-only tables, so every table a script can reach from its
-- globals (the globals themselves, the libraries, the string metatable) is a proxy: an
-- empty table whose metatable reads through to the table behind it and refuses writes with
-- Redis's "Attempt to modify a readonly table". The functions that would see through a
-- proxy's emptiness or write around its metatable (next, pairs, ipairs, rawget, rawset,
-- setmetatable, getmetatable, table.insert/remove/sort) are wrapped to act on the table
-- behind it, or to refuse. Reading a global that does not exist is an error, as in Redis.
-- loadstring and load give the chunks they make the same environment and refuse bytecode.
--
-- Takes the library tables to expose (name -> table) and the table through which a run
-- reaches the server (`hooks.run` runs a command, `hooks.acl_check` asks the ACL; both
-- are set from Rust for the length of a run and answer `value, failed`), and returns the
-- environment scripts run in (the read-only view) and the table behind it (where KEYS and
-- ARGV are set) and `protected_call`, xpcall with arguments.

local libraries, hooks = ...

local error, type, tostring, select, unpack = error, type, tostring, select, unpack
local raw_setmetatable, raw_getmetatable = setmetatable, getmetatable
local raw_next, raw_pairs, raw_ipairs = next, pairs, ipairs
local raw_rawget, raw_rawset = rawget, rawset
local raw_loadstring, raw_load, raw_setfenv = loadstring, load, setfenv
local concat = table.concat

local READONLY = 'Attempt to modify a readonly table'

-- proxy -> the table it shows (weak keys: a proxy is kept alive by whoever holds it).
local behind = raw_setmetatable({}, { __mode = 'k' })

local function refuse_write()
  error(READONLY, 2)
end

local function readonly(t, index)
  local proxy = raw_setmetatable({}, {
    __index = index or t,
    __newindex = refuse_write,
  })
  behind[proxy] = t
  return proxy
end

local function unproxied(t)
  return behind[t] or t
end

-- While a function library loads (`hooks.loading`), `redis` is the loading API:
-- register_function, log and the constants; anything else in it is an error, as Redis has it.
local load_redis_lib = {
  register_function = function(...)
    return hooks.register(...)
  end,
}
for _, name in ipairs({
  'log', 'LOG_DEBUG', 'LOG_VERBOSE', 'LOG_NOTICE', 'LOG_WARNING', 'REDIS_VERSION',
  'REDIS_VERSION_NUM',
}) do
  load_redis_lib[name] = libraries.redis[name]
end
local load_redis = readonly(load_redis_lib, function(_, name)
  local value = load_redis_lib[name]
  if value == nil then
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end
  return value
end)

local globals = {}
local env = readonly(globals, function(_, name)
  if name == 'redis' and hooks.loading then
    return load_redis
  end
  local value = globals[name]
  if value == nil then
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end
  return value
end)

-- What getmetatable answers for the globals (Redis's globals have a metatable) and for a
-- string (the string metatable, whose __index is the read-only string library).
local globals_meta_view = readonly({})
local string_meta_view

for _, name in raw_ipairs({
  'assert', 'collectgarbage', 'error', 'gcinfo', 'rawequal', 'select',
  'tonumber', 'tostring', 'type', 'unpack', '_VERSION',
}) do
  globals[name] = _G[name]
end

globals.next = function(t, k)
  return raw_next(unproxied(t), k)
end
globals.pairs = function(t)
  return raw_pairs(unproxied(t))
end
globals.ipairs = function(t)
  return raw_ipairs(unproxied(t))
end
globals.rawget = function(t, k)
  return raw_rawget(unproxied(t), k)
end
globals.rawset = function(t, k, v)
  if behind[t] then
    error(READONLY, 0)
  end
  return raw_rawset(t, k, v)
end
globals.setmetatable = function(t, mt)
  if behind[t] then
    error(READONLY, 0)
  end
  return raw_setmetatable(t, mt)
end
globals.getmetatable = function(v)
  if v == env then
    return globals_meta_view
  end
  if behind[v] then
    return nil
  end
  if type(v) == 'string' then
    return string_meta_view
  end
  return raw_getmetatable(v)
end

local function in_sandbox(f, message)
  if f then
    raw_setfenv(f, env)
  end
  return f, message
end

globals.loadstring = function(code, name)
  if type(code) == 'string' and code:byte(1) == 27 then
    return nil, 'Bytecode not supported'
  end
  return in_sandbox(raw_loadstring(code, name))
end
globals.load = function(reader, name)
  if type(reader) ~= 'function' then
    return raw_load(reader, name)
  end
  local parts = {}
  while true do
    local part = reader()
    if part == nil or part == '' then
      break
    end
    if type(part) ~= 'string' then
      return nil, 'reader function must return a string'
    end
    parts[#parts + 1] = part
  end
  return globals.loadstring(concat(parts), name)
end

-- redis.call raises a command's error reply as an error table (a C function, set from
-- Rust); redis.pcall returns it.
libraries.redis.pcall = function(...)
  return (hooks.run(...))
end

-- pcall hands back an error table's message rather than the table, as redis-server's does.
local raw_pcall = pcall
local function packed(...)
  return select('#', ...), { ... }
end
-- Once a run is stopping (SCRIPT KILL, `hooks.stopping` set from Rust), nothing catches
-- its error: pcall, xpcall and coroutine.resume raise it on.
globals.pcall = function(...)
  local n, results = packed(raw_pcall(...))
  if results[1] then
    return unpack(results, 1, n)
  end
  local raised = results[2]
  if hooks.stopping then
    error(raised, 0)
  end
  if type(raised) == 'table' and type(raw_rawget(raised, 'err')) == 'string' then
    return false, raw_rawget(raised, 'err')
  end
  return false, raised
end
local function unless_stopping(ok, ...)
  if not ok and hooks.stopping then
    error((...), 0)
  end
  return ok, ...
end
local raw_xpcall_for_scripts = xpcall
globals.xpcall = function(f, handler)
  return unless_stopping(raw_xpcall_for_scripts(f, handler))
end
local coroutine_lib = {}
for name, f in raw_pairs(coroutine) do
  coroutine_lib[name] = f
end
local raw_resume = coroutine.resume
coroutine_lib.resume = function(...)
  return unless_stopping(raw_resume(...))
end
libraries.coroutine = coroutine_lib

-- table's functions that write into their argument refuse a read-only one.
local table_lib = {}
for name, f in raw_pairs(table) do
  table_lib[name] = f
end
for _, name in raw_ipairs({ 'insert', 'remove', 'sort', 'setn' }) do
  local f = table[name]
  if f then
    table_lib[name] = function(t, ...)
      if behind[t] then
        error(READONLY, 0)
      end
      return f(t, ...)
    end
  end
end
libraries.table = table_lib

for name, lib in raw_pairs(libraries) do
  globals[name] = readonly(lib)
end
globals._G = env

-- A string's methods come from the read-only library too.
local string_meta = raw_getmetatable('')
string_meta.__index = globals.string
string_meta_view = readonly(string_meta)

-- xpcall with arguments (Lua 5.1's passes none to the function it calls).
local raw_xpcall = xpcall
local function protected_call(f, handler, ...)
  local n, args = select('#', ...), { ... }
  return raw_xpcall(function()
    return f(unpack(args, 1, n))
  end, handler)
end

return env, globals, protected_call
