import Foundation

/// Small-sample statistics for repeated measurements: Student's t quantiles, pooled noise and confidence
/// intervals, as the confirmation phase, the gain over the baseline and the SLO assurance use them.
public enum Noise {
    /// The one-sided 95% quantile of Student's t with `degreesOfFreedom` (the two-sided 90% one): 6.31 for 1,
    /// 2.13 for 4, 1.81 for 10, 1.645 in the limit. Interpolated in 1/df between tabulated values.
    public static func t95(degreesOfFreedom df: Double) -> Double {
        guard df.isFinite, df > 0 else { return df > 0 ? 1.645 : .infinity }
        let table: [(Double, Double)] = [
            (1, 6.314), (2, 2.920), (3, 2.353), (4, 2.132), (5, 2.015), (6, 1.943), (7, 1.895), (8, 1.860),
            (9, 1.833), (10, 1.812), (12, 1.782), (15, 1.753), (20, 1.725), (30, 1.697), (60, 1.671),
            (120, 1.658),
        ]
        if df <= 1 { return table[0].1 * (1 / df) }  // Wider still below one degree of freedom.
        if df >= 120 { return 1.645 + (1.658 - 1.645) * 120 / df }
        let upper = table.firstIndex { $0.0 >= df }!
        let (d1, t1) = table[upper - 1]
        let (d2, t2) = table[upper]
        let w = (1 / d1 - 1 / df) / (1 / d1 - 1 / d2)
        return t1 + (t2 - t1) * w
    }

    /// The probability that a Student's t variable with `df` degrees of freedom is below `x`, from the regularised
    /// incomplete beta function: `1 − I(df / (df + x²); df/2, 1/2) / 2` for `x ≥ 0`.
    public static func tCDF(_ x: Double, degreesOfFreedom df: Double) -> Double {
        guard x.isFinite else { return x > 0 ? 1 : 0 }
        guard df.isFinite, df > 0 else { return normalCDF(x) }
        let tail = 0.5 * incompleteBeta(df / (df + x * x), a: df / 2, b: 0.5)
        return x >= 0 ? 1 - tail : tail
    }

    /// The regularised incomplete beta function I(x; a, b), by its continued fraction (Lentz's method).
    static func incompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
        guard x > 0 else { return 0 }
        guard x < 1 else { return 1 }
        let logGammas: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logPowers: Double = a * log(x) + b * log(1 - x)
        let front = exp(logGammas + logPowers)
        // The fraction converges fast for x below (a + 1) / (a + b + 2); use the symmetry otherwise.
        if x > (a + 1) / (a + b + 2) { return 1 - incompleteBeta(1 - x, a: b, b: a) }
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var fraction = d
        for m in 1...300 {
            let m = Double(m)
            let even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + even * d
            if abs(d) < tiny { d = tiny }
            c = 1 + even / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            fraction *= d * c
            let odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + odd * d
            if abs(d) < tiny { d = tiny }
            c = 1 + odd / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let step = d * c
            fraction *= step
            if abs(step - 1) < 1e-12 { break }
        }
        return front * fraction / a
    }

    /// The standard normal CDF.
    public static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// The mean of `values`.
    public static func mean(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    /// The noise shared by groups of repeated measurements: the pooled standard deviation (every group's squared
    /// deviations from its own mean, over their degrees of freedom) and those degrees of freedom; `nil` when no
    /// group has two values.
    public static func pooled(_ groups: [[Double]]) -> (sd: Double, degreesOfFreedom: Double)? {
        var squares = 0.0
        var df = 0.0
        for group in groups where group.count > 1 {
            let mean = group.reduce(0, +) / Double(group.count)
            squares += group.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
            df += Double(group.count - 1)
        }
        return df > 0 ? ((squares / df).squareRoot(), df) : nil
    }

    /// A group's own standard deviation shrunk towards the pooled one (as if the pooled value had been seen
    /// twice more), so two lucky repeats that agree do not claim no noise at all.
    public static func shrunk(_ group: [Double], pooled: (sd: Double, degreesOfFreedom: Double)?) -> Double? {
        let mean = group.reduce(0, +) / Double(max(group.count, 1))
        let own = group.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        let prior = pooled.map { $0.sd * $0.sd * 2 } ?? 0
        let df = Double(group.count - 1) + (pooled == nil ? 0 : 2)
        return df > 0 ? ((own + prior) / df).squareRoot() : nil
    }
}
