//! Statistics of a paired comparison (issue 15): the ABBA order of the slices and the median and
//! quartiles of the per-pair ratios. Shared by the `load` example (`load --compare`); its unit
//! tests run with `cargo test --example load`.
#![allow(dead_code)]

/// One side of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// The order of the two slices of pair `index` (from 0): A B, B A, A B, B A... so that the
/// slices run A B B A A B B A: each side goes first in half the pairs, and a drift that is
/// linear over two pairs cancels.
pub fn abba(index: usize) -> [Side; 2] {
    if index.is_multiple_of(2) {
        [Side::A, Side::B]
    } else {
        [Side::B, Side::A]
    }
}

/// The median of `values` (`None` when empty or when a value is NaN).
pub fn median(values: &[f64]) -> Option<f64> {
    quantile(values, 0.5)
}

/// The `q` quantile of `values`, interpolated linearly between order statistics (the usual
/// "type 7" definition: the median of 1..=4 is 2.5, its first quartile 1.75). `None` when
/// `values` is empty, holds a NaN, or `q` is outside 0..=1.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = q * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    let fraction = rank - low as f64;
    Some(sorted[low] + (sorted[high] - sorted[low]) * fraction)
}

/// First quartile, median and third quartile of `values`.
pub fn quartiles(values: &[f64]) -> Option<(f64, f64, f64)> {
    Some((
        quantile(values, 0.25)?,
        quantile(values, 0.5)?,
        quantile(values, 0.75)?,
    ))
}

/// The ratio `a / b` of each pair, skipping pairs whose `b` is zero or not finite.
pub fn ratios(pairs: &[(f64, f64)]) -> Vec<f64> {
    pairs
        .iter()
        .filter(|(a, b)| b.is_finite() && *b != 0.0 && a.is_finite())
        .map(|(a, b)| a / b)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_run_in_abba_order() {
        let order: Vec<Side> = (0..4).flat_map(abba).collect();
        use Side::{A, B};
        assert_eq!(order, [A, B, B, A, A, B, B, A]);
        // Each side goes first in half the pairs.
        let a_first = (0..24).filter(|&i| abba(i)[0] == A).count();
        assert_eq!(a_first, 12);
    }

    #[test]
    fn quartiles_interpolate_between_order_statistics() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(quartiles(&[1.0, 2.0, 3.0, 4.0]), Some((1.75, 2.5, 3.25)));
        let nine: Vec<f64> = (1..=9).map(f64::from).rev().collect();
        assert_eq!(quartiles(&nine), Some((3.0, 5.0, 7.0)));
        assert_eq!(quartiles(&[0.9]), Some((0.9, 0.9, 0.9)));
    }

    #[test]
    fn degenerate_inputs_give_none_not_a_panic() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
        assert_eq!(quantile(&[1.0], 1.5), None);
    }

    #[test]
    fn ratios_skip_pairs_without_a_baseline() {
        assert_eq!(ratios(&[(9.0, 10.0), (5.0, 0.0), (1.0, f64::NAN)]), [0.9]);
    }
}
