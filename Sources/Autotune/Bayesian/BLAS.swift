import COpenBLAS
import Foundation

/// Process-wide OpenBLAS settings.
///
/// OpenBLAS starts one thread per core by default; on top of Swift's cooperative pool, with several studies
/// or experiments asking at once, that oversubscribes the cores (measured: 4-5× slower factorisations on
/// 2 cores). Autotune sets one thread once, before its first BLAS call; `AUTOTUNE_BLAS_THREADS` overrides.
public enum BLAS {
    /// The thread count in force, set on first use.
    public static let threads: Int = {
        let requested = ProcessInfo.processInfo.environment["AUTOTUNE_BLAS_THREADS"].flatMap { Int($0) } ?? 1
        let threads = max(1, requested)
        openblas_set_num_threads(Int32(threads))
        return threads
    }()

    /// OpenBLAS's build and kernel description, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64`.
    public static var configuration: String {
        String(cString: openblas_get_config())
    }

    /// The CPU kernel family OpenBLAS chose (`Haswell`, `SkylakeX`, `Prescott`…).
    public static var coreName: String {
        String(cString: openblas_get_corename())
    }
}

/// A square matrix factored as `L Lᵀ` by LAPACK's `dpotrf`, stored column-major in a buffer with spare
/// capacity so that adding one observation is an O(n²) append instead of an O(n³) refactorisation.
struct CholeskyFactor: Sendable {
    /// The matrix's order.
    private(set) var order: Int
    /// The leading dimension of the buffer (≥ order).
    private(set) var capacity: Int
    /// The lower triangle of `L`, column-major with leading dimension `capacity`.
    private(set) var lower: [Double]

    /// Factors the `n × n` column-major matrix `matrix` (only its lower triangle is read).
    init(factoring matrix: [Double], order n: Int, capacity: Int? = nil) throws(LinearAlgebraError) {
        let capacity = max(n, capacity ?? n, 1)
        var buffer = [Double](repeating: 0, count: capacity * capacity)
        Self.copyLowerTriangle(order: n, from: matrix, leading: n, to: &buffer, leading: capacity)
        try self.init(factoringInPlace: buffer, order: n, capacity: capacity)
    }

    /// Factors the `n × n` matrix already laid out column-major with leading dimension `capacity` (≥ n) in
    /// `buffer`, whose lower triangle is read and overwritten: no copy of a matrix that is megabytes at 500
    /// observations.
    init(factoringInPlace buffer: consuming [Double], order n: Int, capacity: Int) throws(LinearAlgebraError) {
        precondition(capacity >= max(n, 1) && buffer.count == capacity * capacity)
        _ = BLAS.threads
        var buffer = buffer
        var info: blasint = 0
        var size = blasint(n)
        var leading = blasint(capacity)
        var uplo = CChar(UInt8(ascii: "L"))
        if n > 0 { dpotrf_(&uplo, &size, &buffer, &leading, &info, 1) }
        guard info == 0 else { throw .notPositiveDefinite(minor: Int(info)) }
        self.order = n
        self.capacity = capacity
        self.lower = buffer
    }

    /// Extends the factor by one row and column: `k` is the new point's covariance with the existing ones and
    /// `variance` its own. O(n²): one triangular solve and a dot product.
    mutating func append(crossCovariance k: [Double], variance: Double) throws(LinearAlgebraError) {
        precondition(k.count == order)
        if order + 1 > capacity { grow(to: max(2 * capacity, order + 1)) }
        var row = k
        if order > 0 {
            cblas_dtrsv(
                CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, blasint(order), lower, blasint(capacity), &row, 1
            )
        }
        let squared = variance - (order > 0 ? cblas_ddot(blasint(order), row, 1, row, 1) : 0)
        guard squared > 0, squared.isFinite else { throw .notPositiveDefinite(minor: order + 1) }
        for column in 0..<order { lower[column * capacity + order] = row[column] }
        lower[order * capacity + order] = squared.squareRoot()
        order += 1
    }

    /// `L` as a dense `order × order` column-major matrix, its upper triangle zero.
    var lowerMatrix: [Double] {
        var result = [Double](repeating: 0, count: order * order)
        for column in 0..<order {
            for row in column..<order { result[column * order + row] = lower[column * capacity + row] }
        }
        return result
    }

    /// `x` with `L Lᵀ x = b` (LAPACK `dpotrs`).
    func solve(_ b: [Double]) -> [Double] {
        precondition(b.count == order)
        guard order > 0 else { return [] }
        var x = b
        var info: blasint = 0
        var size = blasint(order)
        var one = blasint(1)
        var leading = blasint(capacity)
        var leadingB = blasint(order)
        var uplo = CChar(UInt8(ascii: "L"))
        dpotrs_(&uplo, &size, &one, lower, &leading, &x, &leadingB, &info, 1)
        return x
    }

    /// Overwrites the `order × columns` column-major `matrix` with `L⁻¹ matrix` (BLAS `dtrsm`).
    func solveLower(_ matrix: inout [Double], columns: Int) {
        guard order > 0, columns > 0 else { return }
        cblas_dtrsm(
            CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, blasint(order), blasint(columns), 1,
            lower, blasint(capacity), &matrix, blasint(order)
        )
    }

    /// Overwrites `vector` with `L⁻ᵀ vector` (BLAS `dtrsv`, transposed).
    func solveUpper(_ vector: inout [Double]) {
        guard order > 0 else { return }
        cblas_dtrsv(
            CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, blasint(order), lower, blasint(capacity), &vector, 1)
    }

    /// `log det(L Lᵀ)`.
    var logDeterminant: Double {
        var sum = 0.0
        for index in 0..<order { sum += log(lower[index * capacity + index]) }
        return 2 * sum
    }

    /// `(L Lᵀ)⁻¹` as a full column-major `order × order` matrix (LAPACK `dpotri`, then mirrored).
    func inverse() -> [Double] {
        let n = order
        guard n > 0 else { return [] }
        var matrix = [Double](repeating: 0, count: n * n)
        Self.copyLowerTriangle(order: n, from: lower, leading: capacity, to: &matrix, leading: n)
        var info: blasint = 0
        var size = blasint(n)
        var leading = blasint(n)
        var uplo = CChar(UInt8(ascii: "L"))
        dpotri_(&uplo, &size, &matrix, &leading, &info, 1)
        for column in 0..<n {
            for row in (column + 1)..<max(column + 1, n) where row < n {
                matrix[row * n + column] = matrix[column * n + row]
            }
        }
        return matrix
    }

    /// The element `L[row, column]`.
    subscript(row: Int, column: Int) -> Double {
        row >= column ? lower[column * capacity + row] : 0
    }

    /// Copies the lower triangle of an `order × order` column-major matrix between buffers of different
    /// leading dimensions.
    private static func copyLowerTriangle(
        order: Int,
        from source: [Double],
        leading sourceLeading: Int,
        to destination: inout [Double],
        leading destinationLeading: Int
    ) {
        for column in 0..<order {
            for row in column..<order {
                destination[column * destinationLeading + row] = source[column * sourceLeading + row]
            }
        }
    }

    private mutating func grow(to newCapacity: Int) {
        var buffer = [Double](repeating: 0, count: newCapacity * newCapacity)
        Self.copyLowerTriangle(order: order, from: lower, leading: capacity, to: &buffer, leading: newCapacity)
        lower = buffer
        capacity = newCapacity
    }
}

/// A linear-algebra operation that failed.
enum LinearAlgebraError: Error, Equatable {
    /// The matrix is not positive definite: the leading minor of this order is not.
    case notPositiveDefinite(minor: Int)
}

/// `C = A B` for column-major matrices (`A` is `m × k`, `B` is `k × n`), through `dgemm`.
func multiply(_ a: [Double], _ b: [Double], m: Int, k: Int, n: Int) -> [Double] {
    var c = [Double](repeating: 0, count: m * n)
    guard m > 0, n > 0, k > 0 else { return c }
    cblas_dgemm(
        CblasColMajor, CblasNoTrans, CblasNoTrans, blasint(m), blasint(n), blasint(k), 1, a, blasint(m), b,
        blasint(k), 0, &c, blasint(m)
    )
    return c
}
