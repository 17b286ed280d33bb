//! Pieces shared by the hand-written SVG plots (`tincan sim`'s HTML report and the ABR
//! lab's plots).

/// A "nice" axis top at or above `max` and its tick step.
pub fn axis(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

/// A tick label: at most two decimals, trailing zeros dropped.
pub fn tick_label(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round_and_cover_the_data() {
        assert_eq!(axis(2.6), (3.0, 1.0));
        assert_eq!(axis(52.0), (60.0, 20.0));
        assert_eq!(axis(87.0), (100.0, 20.0));
        assert_eq!(axis(100.0), (100.0, 20.0));
        assert_eq!(axis(1234.0), (1250.0, 250.0));
        assert_eq!(axis(0.0), (1.0, 0.2));
    }

    #[test]
    fn tick_labels_drop_trailing_zeros() {
        assert_eq!(tick_label(2.5), "2.5");
        assert_eq!(tick_label(20.0), "20");
        assert_eq!(tick_label(1.0 / 3.0), "0.33");
    }
}
