//! Redis's geohash arithmetic, computed the way redis-server computes it so scores,
//! positions, distances and search areas agree bit for bit: 26 steps (52 bits) of
//! interleaved latitude/longitude over latitudes ±85.05112878 (the Web Mercator limits),
//! cell centres as positions, haversine distances on a sphere of radius 6,372,797.560856 m.

pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.051_128_78;
pub const LAT_MAX: f64 = 85.051_128_78;
pub const STEP_MAX: u8 = 26;
const EARTH_RADIUS_M: f64 = 6_372_797.560_856;
const MERCATOR_MAX: f64 = 20_037_726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

/// A cell: `bits` interleaved (latitude on even bits, longitude on odd) over `step` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

/// The coordinate ranges of Redis's internal encoding.
pub const WGS84_LONG: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
pub const WGS84_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

#[derive(Debug, Clone, Copy)]
pub struct Area {
    pub longitude: Range,
    pub latitude: Range,
}

pub fn deg_rad(deg: f64) -> f64 {
    deg * D_R
}

fn rad_deg(rad: f64) -> f64 {
    rad / D_R
}

/// Spreads the 32 bits of `v` to the even bit positions.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bit positions of `v` into 32 bits.
fn squash(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    ((x | (x >> 16)) & 0x0000_0000_ffff_ffff) as u32
}

/// The cell of `step` levels holding a point; None outside the ranges (or Redis's limits).
pub fn encode(long_range: Range, lat_range: Range, lon: f64, lat: f64, step: u8) -> Option<Cell> {
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_range.min || lat > lat_range.max || lon < long_range.min || lon > long_range.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let long_offset = (lon - long_range.min) / (long_range.max - long_range.min) * scale;
    Some(Cell {
        bits: spread(lat_offset as u32) | spread(long_offset as u32) << 1,
        step,
    })
}

/// The area a cell covers.
pub fn decode(long_range: Range, lat_range: Range, cell: Cell) -> Option<Area> {
    if cell.is_zero() {
        return None;
    }
    let lat_bits = f64::from(squash(cell.bits));
    let lon_bits = f64::from(squash(cell.bits >> 1));
    let scale = (1u64 << cell.step) as f64;
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    Some(Area {
        latitude: Range {
            min: lat_range.min + (lat_bits / scale) * lat_scale,
            max: lat_range.min + ((lat_bits + 1.0) / scale) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (lon_bits / scale) * long_scale,
            max: long_range.min + ((lon_bits + 1.0) / scale) * long_scale,
        },
    })
}

/// The score GEOADD stores for a point.
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode(WGS84_LONG, WGS84_LAT, lon, lat, STEP_MAX).map(|c| c.bits)
}

/// C's `(uint64_t)` of a double as x86-64 code computes it (any score may be read as a
/// position, negative and infinite ones included, and must land where Redis's lands).
fn c_to_u64(d: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let truncate = |x: f64| -> u64 {
        if x.is_nan() || !(-TWO_63..TWO_63).contains(&x) {
            1 << 63
        } else {
            x as i64 as u64
        }
    };
    if d >= TWO_63 {
        truncate(d - TWO_63) ^ 1 << 63
    } else {
        truncate(d)
    }
}

/// A stored score's position: the centre of its cell, `(longitude, latitude)`.
pub fn position(score: f64) -> Option<(f64, f64)> {
    let cell = Cell {
        bits: c_to_u64(score),
        step: STEP_MAX,
    };
    let area = decode(WGS84_LONG, WGS84_LAT, cell)?;
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some((lon, lat))
}

/// GEOHASH's standard 11-character geohash of a stored score.
pub fn standard_hash(score: f64) -> Option<String> {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = position(score)?;
    let standard_lat = Range {
        min: -90.0,
        max: 90.0,
    };
    let bits = encode(WGS84_LONG, standard_lat, lon, lat, STEP_MAX)?.bits;
    Some(
        (0..11)
            .map(|i| {
                let idx = if i == 10 {
                    0
                } else {
                    (bits >> (52 - (i + 1) * 5)) & 0x1f
                };
                ALPHABET[idx as usize] as char
            })
            .collect(),
    )
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in metres.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((deg_rad(lon2) - deg_rad(lon1)) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// A search shape, its sizes in the request's unit (`to_m` converts them to metres).
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search: a centre `(lon, lat)`, a shape and its unit.
#[derive(Debug, Clone, Copy)]
pub struct Search {
    pub lon: f64,
    pub lat: f64,
    pub shape: Shape,
    pub to_m: f64,
}

impl Search {
    /// The distance (metres) to a point if the point lies in the shape.
    pub fn hit(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.shape {
            Shape::Radius(r) => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= r * self.to_m).then_some(d)
            }
            Shape::Box { width, height } => {
                let (w, h) = (width * self.to_m, height * self.to_m);
                if lat_distance(lat, self.lat) > h / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > w / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }

    /// `[min_lon, min_lat, max_lon, max_lat]` around the shape.
    fn bounds(&self) -> [f64; 4] {
        let (half_h, half_w) = match self.shape {
            Shape::Radius(r) => (r, r),
            Shape::Box { width, height } => (height / 2.0, width / 2.0),
        };
        let (height, width) = (self.to_m * half_h, self.to_m * half_w);
        let lat_delta = rad_deg(height / EARTH_RADIUS_M);
        let long_delta_top = rad_deg(width / EARTH_RADIUS_M / deg_rad(self.lat + lat_delta).cos());
        let long_delta_bottom =
            rad_deg(width / EARTH_RADIUS_M / deg_rad(self.lat - lat_delta).cos());
        let delta = if self.lat < 0.0 {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [
            self.lon - delta,
            self.lat - lat_delta,
            self.lon + delta,
            self.lat + lat_delta,
        ]
    }

    fn radius_m(&self) -> f64 {
        let r = match self.shape {
            Shape::Radius(r) => r,
            Shape::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        };
        r * self.to_m
    }

    /// The cells to search, in Redis's order: the centre cell, then north, south, east,
    /// west, north-east, north-west, south-east, south-west (zero cells skipped by the
    /// caller).
    pub fn cells(&self) -> [Cell; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounds();
        let mut steps = estimate_steps(self.radius_m(), self.lat);
        let around = |steps: u8| {
            let cell = encode(WGS84_LONG, WGS84_LAT, self.lon, self.lat, steps).unwrap_or_default();
            (cell, neighbours(cell))
        };
        let (mut cell, mut n) = around(steps);
        let area_of = |c: Cell| decode(WGS84_LONG, WGS84_LAT, c);
        let edge_too_near = match (area_of(n[0]), area_of(n[1]), area_of(n[2]), area_of(n[3])) {
            (Some(north), Some(south), Some(east), Some(west)) => {
                north.latitude.max < max_lat
                    || south.latitude.min > min_lat
                    || east.longitude.max < max_lon
                    || west.longitude.min > min_lon
            }
            _ => false,
        };
        if steps > 1 && edge_too_near {
            steps -= 1;
            (cell, n) = around(steps);
        }
        let [mut north, mut south, mut east, mut west, mut ne, mut nw, mut se, mut sw] = n;
        if steps >= 2 {
            if let Some(area) = area_of(cell) {
                let zero = Cell::default();
                if area.latitude.min < min_lat {
                    (south, sw, se) = (zero, zero, zero);
                }
                if area.latitude.max > max_lat {
                    (north, ne, nw) = (zero, zero, zero);
                }
                if area.longitude.min < min_lon {
                    (west, sw, nw) = (zero, zero, zero);
                }
                if area.longitude.max > max_lon {
                    (east, se, ne) = (zero, zero, zero);
                }
            }
        }
        [cell, north, south, east, west, ne, nw, se, sw]
    }
}

fn estimate_steps(range_m: f64, lat: f64) -> u8 {
    if range_m == 0.0 {
        return STEP_MAX;
    }
    let (mut range, mut step) = (range_m, 1i32);
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, i32::from(STEP_MAX)) as u8
}

const ODD_BITS: u64 = 0xaaaa_aaaa_aaaa_aaaa;
const EVEN_BITS: u64 = 0x5555_5555_5555_5555;

/// Steps one cell along the axis whose bits are `axis` (odd bits: longitude, even bits:
/// latitude), up for `d > 0`, down otherwise, wrapping around as Redis's geohash does.
fn step_along(cell: Cell, axis: u64, d: i8) -> Cell {
    let shift = 64 - u32::from(cell.step) * 2;
    let mut moving = cell.bits & axis;
    let fixed = cell.bits & !axis;
    // The other axis' bits, as a carry chain through the moving ones.
    let zz = !axis >> shift;
    if d > 0 {
        moving = moving.wrapping_add(zz + 1);
    } else {
        moving = (moving | zz).wrapping_sub(zz + 1);
    }
    moving &= axis >> shift;
    Cell {
        bits: moving | fixed,
        ..cell
    }
}

/// North, south, east, west, north-east, north-west, south-east, south-west.
fn neighbours(c: Cell) -> [Cell; 8] {
    let at = |dx: i8, dy: i8| {
        let moved = if dx != 0 {
            step_along(c, ODD_BITS, dx)
        } else {
            c
        };
        if dy != 0 {
            step_along(moved, EVEN_BITS, dy)
        } else {
            moved
        }
    };
    [
        at(0, 1),
        at(0, -1),
        at(1, 0),
        at(-1, 0),
        at(1, 1),
        at(-1, 1),
        at(1, -1),
        at(-1, -1),
    ]
}

/// The range of stored scores inside a cell: `[min, max)`.
pub fn score_range(cell: Cell) -> (u64, u64) {
    let shift = 52 - u32::from(cell.step) * 2;
    (cell.bits << shift, (cell.bits + 1) << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palermo_scores_and_decodes_as_redis_does() {
        let score = score_of(13.361389, 38.115556).unwrap();
        assert_eq!(score, 3479099956230698);
        let (lon, lat) = position(score as f64).unwrap();
        assert_eq!(format!("{lon:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
        assert_eq!(standard_hash(score as f64).unwrap(), "sqc8b49rny0");
        let catania = position(score_of(15.087269, 37.502669).unwrap() as f64).unwrap();
        assert_eq!(
            format!("{:.4}", distance(lon, lat, catania.0, catania.1)),
            "166274.1516"
        );
    }
}
