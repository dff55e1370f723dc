//! GEORADIUS, GEORADIUSBYMEMBER (and their _RO forms), GEOSEARCH and GEOSEARCHSTORE: one
//! parser and one search, following redis-server 7.0's argument order, error precedence,
//! cell walk and sorting. Searches that store run at apply; the others at the proposer.

use std::ops::Bound;

use bytes::Bytes;

use super::geohash::{self, Search, Shape};
use super::{coordinates, distance_reply, lon_lat, member_position, unit};
use crate::commands::args::{self, eq};
use crate::commands::error::{syntax, CmdError};
use crate::commands::zsets::{self, ZView, ZWrite};
use crate::commands::{reply, CmdResult, Ctx, Outcome};
use crate::keyspace::{encoding, SubRange, Txn};
use crate::protocol::Reply;

/// Which command of the family, and where its arguments are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS key lon lat radius unit.
    Coords,
    /// GEORADIUSBYMEMBER key member radius unit.
    Member,
    /// GEOSEARCH key FROM… BY… (GEOSEARCHSTORE dst key …).
    Search,
}

struct Kind {
    form: Form,
    /// The _RO forms: no STORE.
    read_only: bool,
    /// GEOSEARCHSTORE.
    search_store: bool,
    /// The command's name as sent (error texts quote it).
    sent: String,
}

fn kind(sent: &[u8]) -> Kind {
    let name = args::lower(sent);
    let form = if name.starts_with("georadiusbymember") {
        Form::Member
    } else if name.starts_with("georadius") {
        Form::Coords
    } else {
        Form::Search
    };
    Kind {
        form,
        read_only: name.ends_with("_ro"),
        search_store: name == "geosearchstore",
        sent: args::text(&Bytes::copy_from_slice(sent)),
    }
}

impl Kind {
    fn source(&self) -> usize {
        if self.search_store {
            2
        } else {
            1
        }
    }
}

/// Where results go when stored, and whether as distances.
struct Store {
    key: Bytes,
    dist: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A fully parsed request (the centre is known only when the source exists).
struct Request {
    search: Option<Search>,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    sort: Sort,
    count: u64,
    any: bool,
    store: Option<Store>,
}

fn radius(arg: &[u8], unit_arg: &[u8]) -> Result<(Shape, f64), CmdError> {
    let r = args::parse_float(arg).ok_or(CmdError::msg("ERR need numeric radius"))?;
    if r < 0.0 {
        return Err(CmdError::msg("ERR radius cannot be negative"));
    }
    Ok((Shape::Radius(r), unit(unit_arg)?))
}

const NO_MEMBER: &str = "ERR could not decode requested zset member";

/// Parses the request as Redis does, reading a member's position through `view` (None when
/// the source key is missing).
fn parse<V: ZView>(
    args: &[Bytes],
    k: &Kind,
    mut view: Option<&mut V>,
) -> Result<Request, CmdError> {
    let mut centre = None;
    let mut shape = None;
    let base = match k.form {
        Form::Coords => {
            centre = Some(lon_lat(&args[2], &args[3])?);
            shape = Some(radius(&args[4], &args[5])?);
            6
        }
        Form::Member => {
            if let Some(v) = view.as_deref_mut() {
                centre = Some(member_position(v, &args[2])?.ok_or(CmdError::msg(NO_MEMBER))?);
                shape = Some(radius(&args[3], &args[4])?);
            }
            5
        }
        Form::Search => k.source() + 1,
    };
    let mut r = Request {
        search: None,
        with_dist: false,
        with_hash: false,
        with_coord: false,
        sort: Sort::None,
        count: 0,
        any: false,
        store: None,
    };
    let searching = k.form == Form::Search;
    let (mut from_member, mut from_loc, mut by_radius, mut by_box) = (false, false, false, false);
    if k.search_store {
        r.store = Some(Store {
            key: args[1].clone(),
            dist: false,
        });
    }
    let rest = &args[base..];
    let mut i = 0;
    while i < rest.len() {
        let left = rest.len() - i - 1;
        let a = &rest[i];
        if eq(a, "WITHDIST") {
            r.with_dist = true;
        } else if eq(a, "WITHHASH") {
            r.with_hash = true;
        } else if eq(a, "WITHCOORD") {
            r.with_coord = true;
        } else if eq(a, "ANY") {
            r.any = true;
        } else if eq(a, "ASC") {
            r.sort = Sort::Asc;
        } else if eq(a, "DESC") {
            r.sort = Sort::Desc;
        } else if eq(a, "COUNT") && left >= 1 {
            let n = args::int(&rest[i + 1])?;
            if n <= 0 {
                return Err(CmdError::msg("ERR COUNT must be > 0"));
            }
            r.count = n as u64;
            i += 1;
        } else if (eq(a, "STORE") || eq(a, "STOREDIST")) && left >= 1 && !k.read_only && !searching
        {
            r.store = Some(Store {
                key: rest[i + 1].clone(),
                dist: eq(a, "STOREDIST"),
            });
            i += 1;
        } else if eq(a, "STOREDIST") && k.search_store {
            if let Some(s) = r.store.as_mut() {
                s.dist = true;
            }
        } else if eq(a, "FROMMEMBER") && left >= 1 && searching && !from_loc {
            if let Some(v) = view.as_deref_mut() {
                centre = Some(member_position(v, &rest[i + 1])?.ok_or(CmdError::msg(NO_MEMBER))?);
            }
            from_member = true;
            i += 1;
        } else if eq(a, "FROMLONLAT") && left >= 2 && searching && !from_member {
            centre = Some(lon_lat(&rest[i + 1], &rest[i + 2])?);
            from_loc = true;
            i += 2;
        } else if eq(a, "BYRADIUS") && left >= 2 && searching && !by_box {
            shape = Some(radius(&rest[i + 1], &rest[i + 2])?);
            by_radius = true;
            i += 2;
        } else if eq(a, "BYBOX") && left >= 3 && searching && !by_radius {
            let w =
                args::parse_float(&rest[i + 1]).ok_or(CmdError::msg("ERR need numeric width"))?;
            let h =
                args::parse_float(&rest[i + 2]).ok_or(CmdError::msg("ERR need numeric height"))?;
            if h < 0.0 || w < 0.0 {
                return Err(CmdError::msg("ERR height or width cannot be negative"));
            }
            shape = Some((
                Shape::Box {
                    width: w,
                    height: h,
                },
                unit(&rest[i + 3])?,
            ));
            by_box = true;
            i += 3;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    if r.store.is_some() && (r.with_dist || r.with_hash || r.with_coord) {
        let what = if k.search_store {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(CmdError::msg(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    if searching && !(from_member || from_loc) {
        return Err(CmdError::msg(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            k.sent
        )));
    }
    if searching && !(by_radius || by_box) {
        return Err(CmdError::msg(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            k.sent
        )));
    }
    if r.any && r.count == 0 {
        return Err(CmdError::msg(
            "ERR the ANY argument requires COUNT argument",
        ));
    }
    if r.count != 0 && r.sort == Sort::None && !r.any {
        r.sort = Sort::Asc;
    }
    r.search = centre.zip(shape).map(|((lon, lat), (shape, to_m))| Search {
        lon,
        lat,
        shape,
        to_m,
    });
    Ok(r)
}

/// One point found.
struct Point {
    member: Bytes,
    score: f64,
    /// Metres from the centre.
    dist: f64,
    lon: f64,
    lat: f64,
}

/// The points in the shape, cell by cell in Redis's order (stopping at `limit` when given).
fn find(view: &mut impl ZView, search: &Search, limit: u64) -> Result<Vec<Point>, CmdError> {
    let cells = search.cells();
    let mut found = Vec::new();
    let mut last: Option<usize> = None;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        if last.is_some_and(|l| cells[l] == *cell) {
            continue;
        }
        if limit != 0 && found.len() as u64 >= limit {
            break;
        }
        let (min, max) = geohash::score_range(*cell);
        let range = SubRange {
            start: Bound::Included(Bytes::copy_from_slice(&encoding::score_order(min as f64))),
            end: Bound::Excluded(Bytes::copy_from_slice(&encoding::score_order(max as f64))),
        };
        for (member, score) in view.scan_scores(&range, usize::MAX, false)? {
            if limit != 0 && found.len() as u64 >= limit {
                break;
            }
            let Some((lon, lat)) = geohash::position(score) else {
                continue;
            };
            if let Some(dist) = search.hit(lon, lat) {
                found.push(Point {
                    member,
                    score,
                    dist,
                    lon,
                    lat,
                });
            }
        }
        // Redis remembers the last cell searched only after the first one.
        if i > 0 {
            last = Some(i);
        }
    }
    Ok(found)
}

/// Runs a parsed request: the points to return, sorted and cut to COUNT.
fn run(view: Option<&mut impl ZView>, r: &Request) -> Result<Vec<Point>, CmdError> {
    let (Some(view), Some(search)) = (view, r.search.as_ref()) else {
        return Ok(Vec::new());
    };
    let mut points = find(view, search, if r.any { r.count } else { 0 })?;
    match r.sort {
        Sort::Asc => points.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Sort::Desc => points.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
        Sort::None => {}
    }
    if r.count != 0 {
        points.truncate(r.count as usize);
    }
    Ok(points)
}

fn results_reply(points: Vec<Point>, r: &Request, to_m: f64) -> Reply {
    let with = usize::from(r.with_dist) + usize::from(r.with_hash) + usize::from(r.with_coord);
    Reply::Array(
        points
            .into_iter()
            .map(|p| {
                if with == 0 {
                    return Reply::Bulk(p.member);
                }
                let mut item = vec![Reply::Bulk(p.member)];
                if r.with_dist {
                    item.push(distance_reply(p.dist / to_m));
                }
                if r.with_hash {
                    item.push(Reply::Integer(p.score as i64));
                }
                if r.with_coord {
                    item.push(coordinates(p.lon, p.lat));
                }
                Reply::Array(item)
            })
            .collect(),
    )
}

/// The handler of every command of the family.
pub fn handle(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let k = kind(&args[0]);
    let mut view = zsets::read(ctx, &args[k.source()])?;
    let r = parse(args, &k, view.as_mut())?;
    if r.store.is_some() {
        return Ok(Outcome::Propose(args.to_vec()));
    }
    let to_m = r.search.map_or(1.0, |s| s.to_m);
    let points = run(view.as_mut(), &r)?;
    reply(results_reply(points, &r, to_m))
}

/// A search that stores its results (STORE, STOREDIST, GEOSEARCHSTORE).
pub fn apply_store(txn: &mut Txn, db: u8, args: &[Bytes]) -> Result<Reply, CmdError> {
    let k = kind(&args[0]);
    let (r, points) = {
        let mut z = ZWrite::open(txn, db, &args[k.source()])?;
        let mut view = z.as_mut().map(|z| &mut z.view);
        let r = parse(args, &k, view.as_deref_mut())?;
        let points = run(view, &r)?;
        (r, points)
    };
    let Some(store) = r.store.as_ref() else {
        return Err(CmdError::Internal(
            "a geo search without STORE proposed".into(),
        ));
    };
    let to_m = r.search.map_or(1.0, |s| s.to_m);
    let items: Vec<(Bytes, f64)> = points
        .into_iter()
        .map(|p| {
            let score = if store.dist { p.dist / to_m } else { p.score };
            (p.member, score)
        })
        .collect();
    let count = zsets::replace_with(txn, db, &store.key, &items, 0)?;
    Ok(Reply::Integer(count as i64))
}
