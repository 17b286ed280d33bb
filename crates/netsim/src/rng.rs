//! Seeded randomness that is identical on every platform.
//!
//! Only IEEE-754 basic operations (`+ - * /`, `sqrt`, `round`) are exactly specified, so the
//! logarithm and exponential used by the samplers are written here with those operations
//! rather than taken from the platform's libm, whose last-ulp results may differ.

/// `ln 2` split so that `k * LN2_HI` is exact for the exponents we meet (fdlibm's split).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// `1 / (2k + 1)`: coefficients of the atanh series, computed at compile time by IEEE
/// division so they are the same everywhere.
const INV_ODD: [f64; 12] = {
    let mut t = [0.0; 12];
    let mut k = 0;
    while k < 12 {
        t[k] = 1.0 / (2 * k + 1) as f64;
        k += 1;
    }
    t
};

/// `1 / k!`: coefficients of the exponential series.
const INV_FACT: [f64; 23] = {
    let mut t = [1.0; 23];
    let mut k = 1;
    while k < 23 {
        t[k] = t[k - 1] / k as f64;
        k += 1;
    }
    t
};

/// splitmix64: turns one seed into well-mixed state words (the seeding xoshiro recommends).
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256**: small, fast and statistically strong enough for an emulator.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
    /// The polar method makes normals in pairs; the second waits here.
    spare_normal: Option<f64>,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut s = [0u64; 4];
        for word in &mut s {
            *word = splitmix64(&mut sm);
        }
        Self {
            s,
            spare_normal: None,
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p` (`p = 0` never, `p = 1` always, since `uniform() < 1`).
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal by Marsaglia's polar method (no trigonometry, so no libm).
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * ln(s) / s).sqrt();
                self.spare_normal = Some(v * f);
                return u * f;
            }
        }
    }

    /// Pareto type I with minimum `scale` and tail index `shape`: `scale * U^(-1/shape)`.
    pub(crate) fn pareto(&mut self, scale: f64, shape: f64) -> f64 {
        // 1 - uniform() is in (0, 1], so the logarithm is finite.
        let u = 1.0 - self.uniform();
        scale * exp(-ln(u) / shape)
    }
}

/// Natural logarithm from basic operations only (accurate to about 1 ulp).
pub(crate) fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let mut bits = x.to_bits();
    let mut e: i64 = 0;
    if bits >> 52 == 0 {
        // Subnormal: scale into the normal range first.
        bits = (x * (1u64 << 54) as f64).to_bits();
        e -= 54;
    }
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(s) with |s| <= 0.172, so 12 odd terms reach far below 1 ulp.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut poly = INV_ODD[11];
    for &c in INV_ODD[..11].iter().rev() {
        poly = poly * s2 + c;
    }
    let sum = s * poly;
    let e = e as f64;
    e * LN2_HI + (2.0 * sum + e * LN2_LO)
}

/// Exponential from basic operations only (accurate to a few ulp).
pub(crate) fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.78 {
        return f64::INFINITY;
    }
    if x < -745.2 {
        return 0.0;
    }
    let k = (x * std::f64::consts::LOG2_E).round();
    let r = x - k * LN2_HI - k * LN2_LO;
    // |r| <= 0.35: the Taylor series to degree 22 is far below 1 ulp.
    let mut sum = INV_FACT[22];
    for &c in INV_FACT[..22].iter().rev() {
        sum = sum * r + c;
    }
    let k = k as i64;
    if k < -1000 {
        sum * pow2(k + 600) * pow2(-600)
    } else if k > 1000 {
        sum * pow2(k - 100) * pow2(100)
    } else {
        sum * pow2(k)
    }
}

/// `2^k` for `k` in the normal exponent range, built from its bits.
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_and_exp_match_std() {
        let mut rng = Rng::new(7);
        for _ in 0..10_000 {
            let x = rng.uniform() * 1e3 + 1e-300;
            let rel = (ln(x) - x.ln()).abs() / x.ln().abs().max(1e-300);
            assert!(rel < 1e-14 || (ln(x) - x.ln()).abs() < 1e-15, "ln({x})");
            let y = rng.uniform() * 80.0 - 40.0;
            assert!((exp(y) - y.exp()).abs() / y.exp() < 1e-14, "exp({y})");
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!(ln(5e-324).is_finite());
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
        assert!((exp(-740.0) - (-740.0f64).exp()).abs() < 1e-320);
    }

    #[test]
    fn uniform_is_in_range_and_seeded() {
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        let mut c = Rng::new(2);
        let mut differs = false;
        for _ in 0..1000 {
            let x = a.uniform();
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x.to_bits(), b.uniform().to_bits());
            differs |= x != c.uniform();
        }
        assert!(differs);
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut rng = Rng::new(3);
        let n = 200_000;
        let (mut sum, mut sq) = (0.0, 0.0);
        for _ in 0..n {
            let z = rng.normal();
            sum += z;
            sq += z * z;
        }
        let mean = sum / n as f64;
        let var = sq / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
    }
}
