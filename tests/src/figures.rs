//! Figures as the benches print them: nearest-rank percentiles and the `bench: NAME VALUE UNIT`
//! lines `make bench` collects. One copy for every bench (each had its own).

/// Nearest-rank percentile `p` (0-100) of `sorted` (ascending); NaN when empty.
pub fn percentile_sorted(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) * p + 50) / 100;
    sorted[rank.min(sorted.len() - 1)]
}

/// Nearest-rank percentile `p` (0-100) of `values` (sorted in place); NaN when empty.
pub fn percentile(values: &mut [f64], p: usize) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile_sorted(values, p)
}

/// Prints `bench: NAME_p50` and `NAME_p99` of `values` in `unit`; with the environment variable
/// `raw_env` set, every sample (sorted) goes to stderr first.
pub fn report(name: &str, values: &mut [f64], unit: &str, raw_env: &str) {
    values.sort_by(f64::total_cmp);
    if std::env::var_os(raw_env).is_some() {
        let text: Vec<String> = values.iter().map(|v| format!("{v:.1}")).collect();
        eprintln!("{name} ({unit}): {}", text.join(" "));
    }
    println!(
        "bench: {name}_p50 {:.1} {unit}",
        percentile_sorted(values, 50)
    );
    println!(
        "bench: {name}_p99 {:.1} {unit}",
        percentile_sorted(values, 99)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut values = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&mut values, 50), 3.0);
        assert_eq!(percentile(&mut values, 99), 5.0);
        assert_eq!(percentile(&mut values, 0), 1.0);
        assert!(percentile(&mut [], 50).is_nan());
    }
}
