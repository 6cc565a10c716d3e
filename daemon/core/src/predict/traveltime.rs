//! The JMA2001 travel-time table (Ueno et al. 2002): P and S first-arrival times from a
//! source at depth `h` to a surface point at epicentral distance `Δ`.
//!
//! Why a table and not a formula: it is the table JMA itself uses for hypocentres and for
//! the EEW arrival times, so the site countdown agrees with JMA's by construction.
//!
//! The table (`data/tjma2001.csv`, provenance in `data/README.md`) is compiled in and
//! parsed once, on first use, into a compact grid of 106 depths × 236 distances with the
//! times held as integer milliseconds (the table's own resolution). Lookups are bilinear:
//! linear in depth between the bracketing table depths, then linear in distance between
//! the bracketing table distances; there is no extrapolation — outside 0–700 km depth or
//! 0–2000 km distance the answer is `None`. Telegram depths are multiples of 10 km, which
//! are all table rows, so for real reports the depth step is exact.
//!
//! The inverse ([`wavefront_radius_km`]: elapsed time → radius of the P and S fronts on the
//! surface) searches the depth-interpolated row, which is monotone in distance (checked by
//! the tests), and interpolates linearly in time between adjacent distance nodes.

use std::sync::LazyLock;

const TABLE: &str = include_str!("../../data/tjma2001.csv");

/// Number of table depths (0–50 km every 2 km, 50–200 every 5, 200–700 every 10).
pub const DEPTH_COUNT: usize = 106;
/// Number of table distances (0–50 km every 2 km, 50–200 every 5, 200–2000 every 10).
pub const DISTANCE_COUNT: usize = 236;
/// Deepest source in the table (km).
pub const MAX_DEPTH_KM: f64 = 700.0;
/// Farthest epicentral distance in the table (km).
pub const MAX_DISTANCE_KM: f64 = 2000.0;

/// Which wave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wave {
    /// Primary (initial tremor, 初期微動).
    P,
    /// Secondary (main motion, 主要動).
    S,
}

/// The parsed table: axes in km, times in ms, depth-major (`depth_index * 236 + distance_index`).
#[derive(Debug)]
struct Grid {
    depths: Vec<u16>,
    distances: Vec<u16>,
    p_ms: Vec<u32>,
    s_ms: Vec<u32>,
}

static GRID: LazyLock<Grid> = LazyLock::new(|| {
    Grid::parse(TABLE).expect(
        "the compiled-in JMA2001 table is a complete 106 × 236 grid (checked by the unit tests)",
    )
});

/// A position between two table nodes: `lo`, `lo + 1` and the weight of `lo + 1`.
#[derive(Clone, Copy, Debug)]
struct Bracket {
    lo: usize,
    weight: f64,
}

impl Grid {
    fn parse(text: &str) -> Result<Self, String> {
        let mut depths: Vec<u16> = Vec::with_capacity(DEPTH_COUNT);
        let mut distances: Vec<u16> = Vec::with_capacity(DISTANCE_COUNT);
        let mut p_ms = Vec::with_capacity(DEPTH_COUNT * DISTANCE_COUNT);
        let mut s_ms = Vec::with_capacity(DEPTH_COUNT * DISTANCE_COUNT);
        let mut lines = text.lines();
        if lines.next() != Some("depth_km,distance_km,p_time_s,s_time_s") {
            return Err("unexpected header".into());
        }
        for (n, line) in lines.filter(|l| !l.trim().is_empty()).enumerate() {
            let mut cols = line.split(',');
            let mut next = || {
                cols.next()
                    .ok_or_else(|| format!("row {n}: too few columns"))
            };
            let depth: u16 = next()?.parse().map_err(|e| format!("row {n}: depth {e}"))?;
            let distance: u16 = next()?
                .parse()
                .map_err(|e| format!("row {n}: distance {e}"))?;
            let p = parse_ms(next()?).ok_or_else(|| format!("row {n}: p time"))?;
            let s = parse_ms(next()?).ok_or_else(|| format!("row {n}: s time"))?;
            let (row, col) = (n / DISTANCE_COUNT, n % DISTANCE_COUNT);
            if col == 0 {
                if depths.last().is_some_and(|&d| d >= depth) {
                    return Err(format!("row {n}: depths not increasing"));
                }
                depths.push(depth);
            } else if depths.last() != Some(&depth) {
                return Err(format!("row {n}: depth changes within a row"));
            }
            if row == 0 {
                if distances.last().is_some_and(|&d| d >= distance) {
                    return Err(format!("row {n}: distances not increasing"));
                }
                distances.push(distance);
            } else if distances.get(col) != Some(&distance) {
                return Err(format!("row {n}: distance {distance} off the grid"));
            }
            p_ms.push(p);
            s_ms.push(s);
        }
        if depths.len() != DEPTH_COUNT
            || distances.len() != DISTANCE_COUNT
            || p_ms.len() != DEPTH_COUNT * DISTANCE_COUNT
        {
            return Err(format!(
                "grid is {} × {} with {} nodes",
                depths.len(),
                distances.len(),
                p_ms.len()
            ));
        }
        Ok(Self {
            depths,
            distances,
            p_ms,
            s_ms,
        })
    }

    fn times(&self, wave: Wave) -> &[u32] {
        match wave {
            Wave::P => &self.p_ms,
            Wave::S => &self.s_ms,
        }
    }

    /// Time at a node, in seconds (`None` only off the grid).
    fn node_s(&self, wave: Wave, depth_index: usize, distance_index: usize) -> Option<f64> {
        self.times(wave)
            .get(depth_index * DISTANCE_COUNT + distance_index)
            .map(|&ms| f64::from(ms) / 1000.0)
    }

    /// Time at a distance node, interpolated in depth.
    fn row_s(&self, wave: Wave, depth: Bracket, distance_index: usize) -> Option<f64> {
        let a = self.node_s(wave, depth.lo, distance_index)?;
        if depth.weight == 0.0 {
            return Some(a);
        }
        let b = self.node_s(wave, depth.lo + 1, distance_index)?;
        Some(lerp(a, b, depth.weight))
    }

    fn time_s(&self, wave: Wave, depth: Bracket, distance: Bracket) -> Option<f64> {
        let a = self.row_s(wave, depth, distance.lo)?;
        if distance.weight == 0.0 {
            return Some(a);
        }
        let b = self.row_s(wave, depth, distance.lo + 1)?;
        Some(lerp(a, b, distance.weight))
    }

    /// Distance (km) at which the depth-interpolated `wave` time reaches `elapsed_s`;
    /// `Some(0.0)` before the wave reaches the surface, `None` past the last node.
    fn radius_km(&self, wave: Wave, depth: Bracket, elapsed_s: f64) -> Option<f64> {
        let time = |j: usize| self.row_s(wave, depth, j);
        if elapsed_s <= time(0)? {
            return Some(0.0);
        }
        if elapsed_s > time(DISTANCE_COUNT - 1)? {
            return None;
        }
        // First node whose time is >= elapsed (exists: the last node's is); the row is
        // non-decreasing, so binary search applies. Node 0 is < elapsed.
        let (mut lo, mut hi) = (0usize, DISTANCE_COUNT - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if time(mid)? >= elapsed_s {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let (t1, t2) = (time(lo)?, time(hi)?);
        let d1 = f64::from(*self.distances.get(lo)?);
        let d2 = f64::from(*self.distances.get(hi)?);
        if t2 <= t1 {
            return Some(d2);
        }
        Some(d1 + (elapsed_s - t1) / (t2 - t1) * (d2 - d1))
    }
}

/// Parses a table time (`"12.345"`, seconds with up to 3 decimals) into milliseconds.
fn parse_ms(text: &str) -> Option<u32> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let mut ms: u32 = 0;
    for i in 0..3 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| u32::from(b - b'0'));
        ms = ms * 10 + digit;
    }
    whole.checked_mul(1000)?.checked_add(ms)
}

fn lerp(a: f64, b: f64, w: f64) -> f64 {
    a + (b - a) * w
}

/// Where `x` falls on an increasing axis; `None` outside it or for a non-finite `x`.
fn bracket(axis: &[u16], x: f64) -> Option<Bracket> {
    let first = f64::from(*axis.first()?);
    let last = f64::from(*axis.last()?);
    if !x.is_finite() || x < first || x > last {
        return None;
    }
    // The node at or below x (exists: x >= first), and the weight of the next one.
    let lo = axis
        .partition_point(|&v| f64::from(v) <= x)
        .checked_sub(1)?;
    let a = f64::from(*axis.get(lo)?);
    if x == a {
        // Exactly on a node (always so for the last one): no neighbour needed.
        return Some(Bracket { lo, weight: 0.0 });
    }
    let b = f64::from(*axis.get(lo + 1)?);
    Some(Bracket {
        lo,
        weight: (x - a) / (b - a),
    })
}

/// JMA2001 travel time (s) of one wave; `None` outside 0–700 km depth / 0–2000 km distance
/// or for non-finite input.
pub fn travel_time_s(wave: Wave, depth_km: f64, distance_km: f64) -> Option<f64> {
    let grid = &*GRID;
    let depth = bracket(&grid.depths, depth_km)?;
    let distance = bracket(&grid.distances, distance_km)?;
    grid.time_s(wave, depth, distance)
}

/// JMA2001 `(P, S)` travel times (s) from a source at `depth_km` to a surface point
/// `distance_km` away (epicentral, great circle), bilinear. `None` outside 0–700 km depth
/// or 0–2000 km distance, or for non-finite input.
pub fn p_s_times(depth_km: f64, distance_km: f64) -> Option<(f64, f64)> {
    let grid = &*GRID;
    let depth = bracket(&grid.depths, depth_km)?;
    let distance = bracket(&grid.distances, distance_km)?;
    Some((
        grid.time_s(Wave::P, depth, distance)?,
        grid.time_s(Wave::S, depth, distance)?,
    ))
}

/// Epicentral radius (km) of one wave front `elapsed_s` after origin: `Some(0.0)` while the
/// wave has not reached the surface yet, `None` once it is past 2000 km, outside 0–700 km
/// depth, or for negative or non-finite input.
pub fn radius_km(wave: Wave, depth_km: f64, elapsed_s: f64) -> Option<f64> {
    if !elapsed_s.is_finite() || elapsed_s < 0.0 {
        return None;
    }
    let grid = &*GRID;
    let depth = bracket(&grid.depths, depth_km)?;
    grid.radius_km(wave, depth, elapsed_s)
}

/// Epicentral radii `(P, S)` (km) of the wave fronts `elapsed_s` after origin, for the
/// map's circles. Each is `0.0` while that wave has not reached the surface. `None` outside
/// 0–700 km depth, for negative or non-finite input, or once the P front is past 2000 km
/// (use [`radius_km`] for the S front alone then).
pub fn wavefront_radius_km(depth_km: f64, elapsed_s: f64) -> Option<(f64, f64)> {
    Some((
        radius_km(Wave::P, depth_km, elapsed_s)?,
        radius_km(Wave::S, depth_km, elapsed_s)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_a_complete_monotone_grid_of_25016_nodes() {
        let grid = Grid::parse(TABLE).expect("the table parses");
        assert_eq!(grid.depths.len(), DEPTH_COUNT);
        assert_eq!(grid.distances.len(), DISTANCE_COUNT);
        assert_eq!(grid.p_ms.len(), 25_016);
        assert_eq!(grid.s_ms.len(), 25_016);
        assert_eq!(
            TABLE.lines().skip(1).filter(|l| !l.is_empty()).count(),
            25_016
        );
        assert_eq!(grid.depths[..3], [0, 2, 4]);
        assert_eq!(*grid.depths.last().unwrap(), 700);
        assert_eq!(*grid.distances.last().unwrap(), 2000);
        // Every row is non-decreasing in distance, for both waves, and S is never before P.
        for d in 0..DEPTH_COUNT {
            let row = |t: &[u32]| t[d * DISTANCE_COUNT..(d + 1) * DISTANCE_COUNT].to_vec();
            let (p, s) = (row(&grid.p_ms), row(&grid.s_ms));
            assert!(p.windows(2).all(|w| w[0] <= w[1]), "P row at depth {d}");
            assert!(s.windows(2).all(|w| w[0] <= w[1]), "S row at depth {d}");
            assert!(
                p.iter().zip(&s).all(|(p, s)| p <= s),
                "S before P at depth {d}"
            );
        }
        // Every node is returned exactly by the lookup.
        for (i, &depth) in grid.depths.iter().enumerate() {
            for (j, &dist) in grid.distances.iter().enumerate() {
                let (p, s) = p_s_times(f64::from(depth), f64::from(dist)).unwrap();
                assert_eq!(p, f64::from(grid.p_ms[i * DISTANCE_COUNT + j]) / 1000.0);
                assert_eq!(s, f64::from(grid.s_ms[i * DISTANCE_COUNT + j]) / 1000.0);
            }
        }
    }

    #[test]
    fn known_values_and_the_edges() {
        assert_eq!(p_s_times(10.0, 0.0), Some((1.773, 3.007)));
        assert_eq!(p_s_times(0.0, 0.0), Some((0.0, 0.0)));
        assert!(p_s_times(700.0, 2000.0).is_some());
        assert_eq!(p_s_times(700.1, 10.0), None);
        assert_eq!(p_s_times(10.0, 2000.1), None);
        assert_eq!(p_s_times(-0.1, 10.0), None);
        assert_eq!(p_s_times(10.0, -1.0), None);
        assert_eq!(p_s_times(f64::NAN, 10.0), None);
        assert_eq!(p_s_times(10.0, f64::INFINITY), None);
        assert_eq!(travel_time_s(Wave::S, 10.0, 0.0), Some(3.007));
    }

    #[test]
    fn the_inverse_undoes_the_forward_lookup() {
        for depth in [0.0, 10.0, 24.0, 55.0, 150.0, 333.0, 700.0] {
            for dist in [1.0, 7.5, 50.0, 137.5, 373.0, 1234.0, 1999.0] {
                let (p, s) = p_s_times(depth, dist).unwrap();
                let rp = radius_km(Wave::P, depth, p).unwrap();
                let rs = radius_km(Wave::S, depth, s).unwrap();
                // Near the epicentre of deep sources the rows are flat to the millisecond,
                // so the radius is checked through the time it gives back.
                let (p2, _) = p_s_times(depth, rp).unwrap();
                let (_, s2) = p_s_times(depth, rs).unwrap();
                assert!((p2 - p).abs() < 1e-9, "P depth {depth} dist {dist}: {rp}");
                assert!((s2 - s).abs() < 1e-9, "S depth {depth} dist {dist}: {rs}");
                if dist > 10.0 {
                    assert!(
                        (rp - dist).abs() < 1e-6,
                        "P depth {depth} dist {dist}: {rp}"
                    );
                    assert!(
                        (rs - dist).abs() < 1e-6,
                        "S depth {depth} dist {dist}: {rs}"
                    );
                }
            }
        }
        assert_eq!(wavefront_radius_km(20.0, 1.0), Some((0.0, 0.0)));
        assert_eq!(wavefront_radius_km(20.0, -1.0), None);
        assert_eq!(wavefront_radius_km(20.0, 1e6), None);
        assert_eq!(wavefront_radius_km(800.0, 10.0), None);
    }

    #[test]
    fn milliseconds_parse_exactly() {
        assert_eq!(parse_ms("0.416"), Some(416));
        assert_eq!(parse_ms("12.3"), Some(12_300));
        assert_eq!(parse_ms("7"), Some(7000));
        assert_eq!(parse_ms("1.2345"), None);
        assert_eq!(parse_ms("-1.0"), None);
        assert_eq!(parse_ms("a.b"), None);
    }
}
