import COpenBLAS
import Foundation

/// The Matérn-5/2 kernel with one length scale per feature (automatic relevance determination):
/// `k(x, y) = σ² (1 + √5 r + 5r²/3) exp(−√5 r)` with `r² = Σ_d (x_d − y_d)² / ℓ_d²`.
///
/// Twice differentiable, so it models response surfaces that are smooth but not as rigidly as the squared
/// exponential; the standard choice for Bayesian optimisation.
struct Matern52: Sendable {
    /// `1 / ℓ_d²` per feature.
    let inverseSquaredLengths: [Double]
    /// The signal variance `σ²`.
    let outputScale: Double

    init(lengthScales: [Double], outputScale: Double) {
        inverseSquaredLengths = lengthScales.map { 1 / ($0 * $0) }
        self.outputScale = outputScale
    }

    /// `r²` between row `i` of `a` and row `j` of `b` (both row-major with `dimension` features).
    @inline(__always)
    func squaredDistance(_ a: UnsafeBufferPointer<Double>, _ i: Int, _ b: UnsafeBufferPointer<Double>, _ j: Int)
        -> Double
    {
        let dimension = inverseSquaredLengths.count
        var sum = 0.0
        for d in 0..<dimension {
            let difference = a[i * dimension + d] - b[j * dimension + d]
            sum += difference * difference * inverseSquaredLengths[d]
        }
        return sum
    }

    /// The kernel at `r²`.
    @inline(__always)
    func value(squaredDistance r2: Double) -> Double {
        let r = (5 * r2).squareRoot()
        return outputScale * (1 + r + r * r / 3) * exp(-r)
    }

    /// The same matrix as ``matrix(_:rows:_:rows:)``, with the distances from one `dgemm`:
    /// `r² = ‖a/ℓ‖² + ‖b/ℓ‖² − 2 (a/ℓ)·(b/ℓ)`. For the many-candidate case, where the loop form dominates.
    func crossMatrix(_ a: [Double], rows n: Int, _ b: [Double], rows m: Int) -> [Double] {
        let dimension = inverseSquaredLengths.count
        guard n > 0, m > 0, dimension > 0 else { return matrix(a, rows: n, b, rows: m) }
        let scales = inverseSquaredLengths.map { $0.squareRoot() }
        func scaled(_ x: [Double], rows: Int) -> ([Double], [Double]) {
            var values = x
            var norms = [Double](repeating: 0, count: rows)
            for row in 0..<rows {
                for d in 0..<dimension {
                    let value = x[row * dimension + d] * scales[d]
                    values[row * dimension + d] = value
                    norms[row] += value * value
                }
            }
            return (values, norms)
        }
        let (sa, na) = scaled(a, rows: n)
        let (sb, nb) = scaled(b, rows: m)
        // Row-major `n × D` is column-major `D × n`: C (n × m) = saᵀ · sb.
        var result = [Double](repeating: 0, count: n * m)
        cblas_dgemm(
            CblasColMajor, CblasTrans, CblasNoTrans, blasint(n), blasint(m), blasint(dimension), -2, sa,
            blasint(dimension), sb, blasint(dimension), 0, &result, blasint(n)
        )
        for j in 0..<m {
            for i in 0..<n {
                result[j * n + i] = value(squaredDistance: max(0, result[j * n + i] + na[i] + nb[j]))
            }
        }
        return result
    }

    /// The lower triangle of the `n × n` matrix `k(a_i, a_j)` for row-major `a`, column-major with leading
    /// dimension `leading` (≥ n) in a `leading × leading` buffer, zero elsewhere: all a Cholesky factorisation
    /// reads, for half the exponentials of ``matrix(_:rows:_:rows:)``, laid out for the factor to take in place.
    func lowerMatrix(_ a: [Double], rows n: Int, leading: Int) -> [Double] {
        var result = [Double](repeating: 0, count: leading * leading)
        a.withUnsafeBufferPointer { a in
            for j in 0..<n {
                for i in j..<n { result[j * leading + i] = value(squaredDistance: squaredDistance(a, i, a, j)) }
            }
        }
        return result
    }

    /// The column-major `n × m` matrix `k(a_i, b_j)` for row-major `a` (`n` rows) and `b` (`m` rows).
    func matrix(_ a: [Double], rows n: Int, _ b: [Double], rows m: Int) -> [Double] {
        var result = [Double](repeating: 0, count: n * m)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                for j in 0..<m {
                    for i in 0..<n { result[j * n + i] = value(squaredDistance: squaredDistance(a, i, b, j)) }
                }
            }
        }
        return result
    }
}
