import Foundation

/// A seeded random number generator (xoshiro256**) whose whole state is four integers, so a strategy can
/// checkpoint it and resume the exact same sequence.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Hashable, Codable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Creates a generator from a seed; equal seeds give equal sequences on every platform.
    public init(seed: UInt64) {
        var mixer = seed
        s0 = Self.splitMix(&mixer)
        s1 = Self.splitMix(&mixer)
        s2 = Self.splitMix(&mixer)
        s3 = Self.splitMix(&mixer)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotate(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotate(s3, 45)
        return result
    }

    /// A uniform real in `[0, 1)` from the top 53 bits, identical on every platform (unlike
    /// `Double.random(in:using:)`, whose algorithm the standard library may change).
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A standard normal draw (Box–Muller, one of the pair), from the same reproducible stream.
    public mutating func nextNormal() -> Double {
        let u1 = max(nextUnit(), 1e-300)
        let u2 = nextUnit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// A uniform integer in `0..<bound` without modulo bias.
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0)
        let limit = UInt64(bound)
        let threshold = (0 &- limit) % limit
        while true {
            let value = next()
            let (high, low) = value.multipliedFullWidth(by: limit)
            if low >= threshold { return Int(high) }
        }
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }

    private static func splitMix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A seeded bijection of `0..<count` onto itself, computed one index at a time.
///
/// A grid of a million points is visited in shuffled order with O(1) state: a Feistel network on the
/// smallest even power of two covering `count`, with cycle-walking to stay inside the range.
public struct IndexPermutation: Sendable, Hashable, Codable {
    /// The size of the permuted range.
    public let count: Int
    private let halfBits: Int
    private let keys: [UInt64]

    /// Creates the permutation of `0..<count` for a seed.
    public init(count: Int, seed: UInt64) {
        precondition(count > 0)
        self.count = count
        var bits = 2
        while (1 << bits) < count { bits += 2 }
        halfBits = bits / 2
        var generator = SeededGenerator(seed: seed)
        keys = (0..<4).map { _ in generator.next() }
    }

    /// The index at `position` of the shuffled order.
    public func index(at position: Int) -> Int {
        precondition(position >= 0 && position < count)
        var value = UInt64(position)
        repeat {
            value = encrypt(value)
        } while value >= UInt64(count)
        return Int(value)
    }

    private func encrypt(_ value: UInt64) -> UInt64 {
        let mask = (UInt64(1) << UInt64(halfBits)) - 1
        var left = value >> UInt64(halfBits)
        var right = value & mask
        for key in keys {
            var mixed = (right &+ key) &* 0x9E37_79B9_7F4A_7C15
            mixed ^= mixed >> 29
            (left, right) = (right, left ^ (mixed & mask))
        }
        return (left << UInt64(halfBits)) | right
    }
}

extension SeededGenerator {
    /// A gamma draw of shape `k` and scale 1 (Marsaglia and Tsang; boosted for k < 1): the gaps of bursty arrivals.
    public mutating func nextGamma(shape k: Double) -> Double {
        if k < 1 {
            let u = max(nextUnit(), 1e-300)
            return nextGamma(shape: k + 1) * pow(u, 1 / k)
        }
        let d = k - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            let x = nextNormal()
            let v = pow(1 + c * x, 3)
            guard v > 0 else { continue }
            let u = nextUnit()
            if log(max(u, 1e-300)) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
    }
}
