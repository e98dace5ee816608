/// A Sobol low-discrepancy sequence in `[0, 1)^d`, with a seeded random digital shift (XOR scrambling).
///
/// Direction numbers for the first 21 dimensions are Joe and Kuo's (new-joe-kuo-6.21201); further
/// dimensions use primitive polynomials of degree 7 and 8 with valid odd initial numbers. The scrambling
/// keeps the low-discrepancy structure while giving each seed its own sequence, so two studies with
/// different seeds do not start from the same points. The state is the index of the next point.
public struct SobolSequence: Sendable, Hashable, Codable {
    /// The number of coordinates.
    public let dimension: Int
    /// The index of the next point.
    public private(set) var index: UInt64
    private let shifts: [UInt64]

    private static let bits = 52

    /// Creates the sequence; `seed` picks the digital shift.
    public init(dimension: Int, seed: UInt64) {
        precondition(
            dimension >= 0 && dimension <= Self.maximumDimension,
            "Sobol supports up to \(Self.maximumDimension) dimensions")
        self.dimension = dimension
        self.index = 0
        var generator = SeededGenerator(seed: seed ^ 0x50B0_1_5E9)
        self.shifts = (0..<dimension).map { _ in generator.next() >> UInt64(64 - Self.bits) }
    }

    /// The most coordinates supported.
    public static var maximumDimension: Int { 1 + polynomials.count }

    /// The next point.
    public mutating func next() -> [Double] {
        let point = Self.point(at: index, dimension: dimension).enumerated().map { coordinate, value in
            Double(value ^ shifts[coordinate]) * 0x1.0p-52
        }
        index += 1
        return point
    }

    /// The unscrambled integer coordinates of point `index`, each in `[0, 2^52)`.
    static func point(at index: UInt64, dimension: Int) -> [UInt64] {
        (0..<dimension).map { coordinate in
            let directions = Self.directions[coordinate]
            var value: UInt64 = 0
            var remaining = index
            var bit = 0
            // Gray-code-free form: XOR the direction numbers of the index's set bits.
            while remaining != 0 {
                if remaining & 1 == 1 { value ^= directions[bit] }
                remaining >>= 1
                bit += 1
            }
            return value
        }
    }

    /// Direction numbers `v_k · 2^52` for each dimension.
    private static let directions: [[UInt64]] = {
        var all: [[UInt64]] = [(0..<bits).map { UInt64(1) << UInt64(bits - 1 - $0) }]
        for (degree, coefficients, initial) in polynomials {
            var m = initial.map(UInt64.init)
            for k in degree..<bits {
                var next = m[k - degree] ^ (m[k - degree] << UInt64(degree))
                for j in 1..<degree where (coefficients >> (degree - 1 - j)) & 1 == 1 {
                    next ^= m[k - j] << UInt64(j)
                }
                m.append(next)
            }
            all.append((0..<bits).map { k in m[k] << UInt64(bits - 1 - k) })
        }
        return all
    }()

    /// `(degree s, coefficients a, initial m_1…m_s)` of dimensions 2 and up.
    private static let polynomials: [(Int, Int, [Int])] = [
        (1, 0, [1]), (2, 1, [1, 3]), (3, 1, [1, 3, 1]), (3, 2, [1, 1, 1]), (4, 1, [1, 1, 3, 3]),
        (4, 4, [1, 3, 5, 13]), (5, 2, [1, 1, 5, 5, 17]), (5, 4, [1, 1, 5, 5, 5]), (5, 7, [1, 1, 7, 11, 19]),
        (5, 11, [1, 1, 5, 1, 1]), (5, 13, [1, 1, 1, 3, 11]), (5, 14, [1, 3, 5, 5, 31]),
        (6, 1, [1, 3, 3, 9, 7, 49]), (6, 13, [1, 1, 1, 15, 21, 21]), (6, 16, [1, 3, 1, 13, 27, 49]),
        (6, 19, [1, 1, 1, 15, 7, 5]), (6, 22, [1, 3, 1, 15, 13, 25]), (6, 25, [1, 1, 5, 5, 19, 61]),
        (7, 1, [1, 3, 7, 11, 23, 15, 103]), (7, 4, [1, 3, 7, 13, 13, 15, 69]),
        (7, 7, [1, 1, 3, 13, 7, 35, 63]), (7, 8, [1, 3, 5, 9, 1, 25, 53]), (7, 14, [1, 3, 1, 13, 9, 35, 107]),
        (7, 19, [1, 3, 1, 5, 27, 61, 31]), (7, 21, [1, 1, 5, 11, 19, 41, 61]), (7, 28, [1, 3, 5, 3, 3, 13, 69]),
        (7, 31, [1, 1, 7, 13, 1, 19, 1]), (7, 32, [1, 3, 7, 5, 13, 19, 59]), (7, 37, [1, 1, 3, 9, 25, 29, 41]),
        (7, 41, [1, 3, 5, 13, 23, 1, 55]), (7, 42, [1, 3, 7, 3, 13, 59, 17]), (7, 50, [1, 3, 1, 3, 5, 53, 69]),
        (7, 55, [1, 1, 5, 5, 23, 33, 13]), (7, 56, [1, 1, 7, 7, 1, 61, 123]), (7, 59, [1, 1, 7, 9, 13, 61, 49]),
        (7, 62, [1, 3, 3, 5, 3, 55, 33]),
    ]
}
