//! GEO commands: points stored in a sorted set under their 52-bit geohash (`geohash.rs`).
//! GEOADD is proposed as the ZADD it amounts to; GEOPOS, GEODIST and GEOHASH read scores;
//! the searches (`search.rs`) walk the score ranges of the cells around the centre, as
//! Redis does, so results and their order match.

mod geohash;
mod search;

use bytes::Bytes;

use super::args::{self, eq};
use super::error::{syntax, CmdError};
use super::zsets::{self, ZView};
use super::{reply, ApplyFn, CmdResult, Ctx, Handler, Outcome};
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("geoadd", geoadd, Some(zsets::apply_zadd)),
    ("geopos", geopos, None),
    ("geodist", geodist, None),
    ("geohash", geohash_cmd, None),
    ("georadius", search::handle, Some(search::apply_store)),
    ("georadius_ro", search::handle, None),
    (
        "georadiusbymember",
        search::handle,
        Some(search::apply_store),
    ),
    ("georadiusbymember_ro", search::handle, None),
    ("geosearch", search::handle, None),
    ("geosearchstore", search::handle, Some(search::apply_store)),
];

/// `longitude latitude` as Redis checks them.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CmdError> {
    let (lon, lat) = (args::float(lon)?, args::float(lat)?);
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&lon)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat)
    {
        return Err(CmdError::msg(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok((lon, lat))
}

/// Metres per unit: m, km, ft, mi.
fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    match args::lower(arg).as_str() {
        "m" => Ok(1.0),
        "km" => Ok(1000.0),
        "ft" => Ok(0.3048),
        "mi" => Ok(1609.34),
        _ => Err(CmdError::msg(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        )),
    }
}

/// Redis's "human" long-double text: 17 decimals, trailing zeros dropped.
fn human(v: f64) -> Reply {
    let text = format!("{v:.17}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    Reply::DoubleText(if text == "-0" { "0" } else { text }.to_string())
}

fn coordinates(lon: f64, lat: f64) -> Reply {
    Reply::Array(vec![human(lon), human(lat)])
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [...] → `GEOADD key [flags] score
/// member ...`, applied as the ZADD it is.
fn geoadd(_: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while first < args.len() {
        let a = &args[first];
        if eq(a, "NX") {
            nx = true;
        } else if eq(a, "XX") {
            xx = true;
        } else if !eq(a, "CH") {
            break;
        }
        first += 1;
    }
    if !(args.len() - first).is_multiple_of(3) || (nx && xx) {
        return Err(syntax());
    }
    let mut zadd = vec![args[0].clone()];
    zadd.extend_from_slice(&args[1..first]);
    for point in args[first..].chunks(3) {
        let (lon, lat) = lon_lat(&point[0], &point[1])?;
        let score = geohash::score_of(lon, lat).ok_or_else(syntax)?;
        zadd.push(Bytes::from(score.to_string()));
        zadd.push(point[2].clone());
    }
    Ok(Outcome::Propose(zadd))
}

/// The position of each member (None for a missing member or key).
fn positions(
    ctx: &mut Ctx,
    key: &[u8],
    members: &[Bytes],
) -> Result<Vec<Option<(f64, f64)>>, CmdError> {
    let scores = match zsets::read(ctx, key)? {
        None => vec![None; members.len()],
        Some(z) => z.scores(members)?,
    };
    Ok(scores
        .into_iter()
        .map(|s| s.and_then(geohash::position))
        .collect())
}

fn geopos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let found = positions(ctx, &args[1], &args[2..])?;
    reply(Reply::Array(
        found
            .into_iter()
            .map(|p| p.map_or(Reply::NullArray, |(lon, lat)| coordinates(lon, lat)))
            .collect(),
    ))
}

/// GEODIST key member1 member2 [M|KM|FT|MI].
fn geodist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let to_m = match args.len() {
        4 => 1.0,
        5 => unit(&args[4])?,
        _ => return Err(syntax()),
    };
    let found = positions(ctx, &args[1], &args[2..4])?;
    reply(match (found[0], found[1]) {
        (Some(a), Some(b)) => distance_reply(geohash::distance(a.0, a.1, b.0, b.1) / to_m),
        _ => Reply::Null,
    })
}

/// A distance as Redis prints it: four decimals, a bulk string in both protocols.
fn distance_reply(d: f64) -> Reply {
    Reply::bulk(format!("{d:.4}"))
}

fn geohash_cmd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let scores = match zsets::read(ctx, &args[1])? {
        None => vec![None; args.len() - 2],
        Some(z) => z.scores(&args[2..])?,
    };
    reply(Reply::Array(
        scores
            .into_iter()
            .map(|s| {
                s.and_then(geohash::standard_hash)
                    .map_or(Reply::Null, Reply::bulk)
            })
            .collect(),
    ))
}

/// The score and position of `member` through any sorted-set view.
fn member_position(view: &mut impl ZView, member: &[u8]) -> Result<Option<(f64, f64)>, CmdError> {
    Ok(view.score(member)?.and_then(geohash::position))
}
