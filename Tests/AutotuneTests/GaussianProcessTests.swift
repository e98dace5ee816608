import Foundation
import Testing

@testable import Autotune

/// A symmetric positive-definite matrix from a Matérn kernel on random points, column-major.
private func kernelMatrix(_ n: Int, seed: UInt64 = 1, jitter: Double = 1e-6) -> ([Double], [Double]) {
    var generator = SeededGenerator(seed: seed)
    let points = (0..<(n * 3)).map { _ in generator.nextUnit() }
    var matrix = Matern52(lengthScales: [0.3, 0.5, 0.7], outputScale: 1.3).matrix(points, rows: n, points, rows: n)
    for index in 0..<n { matrix[index * n + index] += jitter }
    return (matrix, points)
}

/// Textbook Cholesky–Crout, the reference for LAPACK.
private func naiveCholesky(_ a: [Double], _ n: Int) -> [Double] {
    var l = [Double](repeating: 0, count: n * n)
    for j in 0..<n {
        var sum = a[j * n + j]
        for k in 0..<j { sum -= l[k * n + j] * l[k * n + j] }
        l[j * n + j] = sum.squareRoot()
        for i in (j + 1)..<max(j + 1, n) where i < n {
            var s = a[j * n + i]
            for k in 0..<j { s -= l[k * n + i] * l[k * n + j] }
            l[j * n + i] = s / l[j * n + j]
        }
    }
    return l
}

@Suite struct LinearAlgebraTests {
    @Test(arguments: [1, 2, 7, 40, 120])
    func lapackCholeskyMatchesTheNaiveOne(n: Int) throws {
        let (matrix, _) = kernelMatrix(n)
        let factor = try CholeskyFactor(factoring: matrix, order: n)
        let reference = naiveCholesky(matrix, n)
        for column in 0..<n {
            for row in column..<n {
                #expect(abs(factor[row, column] - reference[column * n + row]) < 1e-9)
            }
        }
    }

    @Test func solvesAndTheInverseAreConsistent() throws {
        let n = 30
        let (matrix, _) = kernelMatrix(n, jitter: 1e-3)
        let factor = try CholeskyFactor(factoring: matrix, order: n)
        let b = (0..<n).map { Double($0 % 7) - 3 }
        let x = factor.solve(b)
        let residual = multiply(matrix, x, m: n, k: n, n: 1)
        #expect(zip(residual, b).allSatisfy { abs($0 - $1) < 1e-8 })
        let inverse = factor.inverse()
        let identity = multiply(matrix, inverse, m: n, k: n, n: n)
        for column in 0..<n {
            for row in 0..<n {
                #expect(abs(identity[column * n + row] - (row == column ? 1 : 0)) < 1e-7)
            }
        }
        var lowerSolve = b
        factor.solveLower(&lowerSolve, columns: 1)
        var reconstructed = [Double](repeating: 0, count: n)
        for row in 0..<n {
            for column in 0...row { reconstructed[row] += factor[row, column] * lowerSolve[column] }
        }
        #expect(zip(reconstructed, b).allSatisfy { abs($0 - $1) < 1e-9 })
        #expect(
            abs(
                factor.logDeterminant
                    - naiveCholesky(matrix, n).enumerated().filter { $0.offset % (n + 1) == 0 }.map {
                        2 * log($0.element)
                    }.reduce(0, +)) < 1e-9)
    }

    @Test func appendingARowEqualsRefactoring() throws {
        let n = 50
        let (matrix, _) = kernelMatrix(n, jitter: 1e-4)
        var grown = try CholeskyFactor(factoring: Array(matrix.prefix(0)), order: 0, capacity: 4)
        for size in 1...n {
            let cross = (0..<(size - 1)).map { matrix[(size - 1) * n + $0] }
            try grown.append(crossCovariance: cross, variance: matrix[(size - 1) * n + (size - 1)])
        }
        let full = try CholeskyFactor(factoring: matrix, order: n)
        for column in 0..<n {
            for row in column..<n { #expect(abs(grown[row, column] - full[row, column]) < 1e-9) }
        }
        #expect(abs(grown.logDeterminant - full.logDeterminant) < 1e-8)
    }

    @Test func aDuplicatePointWithoutNoiseIsNotPositiveDefinite() throws {
        let (matrix, _) = kernelMatrix(5, jitter: 0)
        var factor = try CholeskyFactor(factoring: matrix, order: 5)
        let cross = (0..<5).map { matrix[4 * 5 + $0] }
        // A point identical to one already in: its residual variance is zero, so any deficit breaks it.
        #expect(throws: LinearAlgebraError.self) {
            try factor.append(crossCovariance: cross, variance: matrix[4 * 5 + 4] - 1e-9)
        }
        #expect(throws: LinearAlgebraError.self) { try CholeskyFactor(factoring: [1, 2, 2, 1], order: 2) }
    }
}

@Suite struct GaussianProcessTests {
    @Test func theLikelihoodGradientMatchesFiniteDifferences() throws {
        var generator = SeededGenerator(seed: 4)
        let n = 25
        let dimension = 3
        let inputs = (0..<(n * dimension)).map { _ in generator.nextUnit() }
        let outputs = (0..<n).map { i in sin(6 * inputs[i * dimension]) + inputs[i * dimension + 1] }
        let theta = GPHyperparameters(logLengthScales: [-1.2, -0.4, 0.3], logOutputScale: 0.2, logNoise: -4)
        let prior = GPPrior(dimension: dimension)
        let (_, gradient) = GaussianProcess.negativeLogPosterior(
            theta, inputs: inputs, outputs: outputs, dimension: dimension, prior: prior)
        let vector = theta.vector
        for index in vector.indices {
            var up = vector
            var down = vector
            up[index] += 1e-5
            down[index] -= 1e-5
            let f = { (v: [Double]) in
                GaussianProcess.negativeLogPosterior(
                    GPHyperparameters(vector: v), inputs: inputs, outputs: outputs, dimension: dimension, prior: prior
                ).value
            }
            let numeric = (f(up) - f(down)) / 2e-5
            #expect(
                abs(numeric - gradient[index]) < 1e-4 * max(1, abs(numeric)),
                "parameter \(index): analytic \(gradient[index]), numeric \(numeric)")
        }
    }

    @Test func thePosteriorMatchesTheClosedFormOnAKnownCase() throws {
        // Two observations; with a fixed kernel the posterior is a 2×2 solve done by hand.
        let theta = GPHyperparameters(logLengthScales: [log(0.5)], logOutputScale: 0, logNoise: log(1e-6))
        let model = try GaussianProcess(inputs: [0.2, 0.8], outputs: [1, -1], dimension: 1, hyperparameters: theta)
        let kernel = Matern52(lengthScales: [0.5], outputScale: 1)
        let k12 = kernel.value(squaredDistance: 0.36 / 0.25)
        let noise = 1e-6 + 1e-8
        let determinant = (1 + noise) * (1 + noise) - k12 * k12
        let inverse = [
            [(1 + noise) / determinant, -k12 / determinant], [-k12 / determinant, (1 + noise) / determinant],
        ]
        let x = 0.5
        let k = [kernel.value(squaredDistance: 0.09 / 0.25), kernel.value(squaredDistance: 0.09 / 0.25)]
        let weights = [inverse[0][0] * 1 + inverse[0][1] * -1, inverse[1][0] * 1 + inverse[1][1] * -1]
        let mean = k[0] * weights[0] + k[1] * weights[1]
        let quadratic =
            k[0] * (inverse[0][0] * k[0] + inverse[0][1] * k[1]) + k[1] * (inverse[1][0] * k[0] + inverse[1][1] * k[1])
        let (predicted, variance) = model.predict([x], count: 1)
        #expect(abs(predicted[0] - mean) < 1e-9)
        #expect(abs(variance[0] - (1 - quadratic)) < 1e-9)
        // At an observation the mean interpolates and the variance nearly vanishes.
        let (atData, varianceAtData) = model.predict([0.2], count: 1)
        #expect(abs(atData[0] - 1) < 1e-4)
        #expect(varianceAtData[0] < 1e-5)
    }

    @Test func fittingRecoversAShortLengthScaleForAWigglyFunction() throws {
        var generator = SeededGenerator(seed: 2)
        let n = 40
        let inputs = (0..<(n * 2)).map { _ in generator.nextUnit() }
        let outputs = (0..<n).map { i in sin(12 * inputs[i * 2]) }  // varies fast in x0, not at all in x1
        let model = try #require(
            GaussianProcess.fit(inputs: inputs, outputs: outputs, dimension: 2, start: nil, maxIterations: 100))
        let lengths = model.hyperparameters.logLengthScales.map(exp)
        #expect(lengths[0] < 0.5)
        #expect(lengths[1] > lengths[0] * 4)
    }

    @Test func logExpectedImprovementIsStableFarIntoTheTail() {
        let direct = { (mean: Double, variance: Double, best: Double) -> Double in
            let sigma = variance.squareRoot()
            let z = (best - mean) / sigma
            let phi = exp(-0.5 * z * z) / (2 * Double.pi).squareRoot()
            return log(sigma * (phi + z * 0.5 * erfc(-z / 2.0.squareRoot())))
        }
        for (mean, best) in [(0.0, 0.5), (0.0, -0.5), (0.0, -3.0), (0.0, -8.0)] {
            #expect(abs(logExpectedImprovement(mean: mean, variance: 1, best: best) - direct(mean, 1, best)) < 1e-6)
        }
        let far = logExpectedImprovement(mean: 0, variance: 1, best: -60)
        #expect(far.isFinite && far < -1700)
        #expect(logExpectedImprovement(mean: 0, variance: 1, best: -40) > far)
    }
}

@Suite struct SobolTests {
    @Test func theFirstPointsAreTheKnownOnes() {
        let unscrambled = (0..<4).map { SobolSequence.point(at: UInt64($0), dimension: 3) }
        let scale = 0x1.0p-52
        #expect(
            unscrambled.map { $0.map { Double($0) * scale } } == [
                [0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.75, 0.75], [0.75, 0.25, 0.25],
            ])
    }

    @Test func everyPrefixOfAPowerOfTwoFillsEveryDyadicCell() {
        // A (0, m, 1)-net in each coordinate: 64 points, one in each interval of width 1/64.
        var sequence = SobolSequence(dimension: SobolSequence.maximumDimension, seed: 9)
        let points = (0..<64).map { _ in sequence.next() }
        for coordinate in 0..<SobolSequence.maximumDimension {
            #expect(Set(points.map { Int($0[coordinate] * 64) }).count == 64, "coordinate \(coordinate)")
        }
    }
}

@Suite struct FeatureEncoderTests {
    @Test func unitPointsEncodeLikeTheirConfigurations() throws {
        let space = try SearchSpace([
            Parameter("x", .float(lower: -2, upper: 3)), Parameter("n", .int(lower: 1, upper: 9, step: 2)),
            Parameter("m", .int(lower: 1, upper: 1024, log: true)), Parameter("b", .bool),
            Parameter("c", .categorical([.string("a"), .string("b"), .string("c")])),
            Parameter("f", .fixed(.int(3))),
        ])
        let encoder = FeatureEncoder(space: space)
        #expect(encoder.dimension == 7)
        var generator = SeededGenerator(seed: 5)
        for _ in 0..<200 {
            let point = (0..<space.dimension).map { _ in generator.nextUnit() }
            var fast: [Double] = []
            encoder.encode(unit: point, into: &fast)
            let slow = encoder.encode([space.configuration(atUnit: point)])
            #expect(zip(fast, slow).allSatisfy { abs($0 - $1) < 1e-12 }, "\(point)")
        }
    }
}

@Suite struct AcquisitionGradientTests {
    @Test func theLogEIGradientMatchesFiniteDifferences() throws {
        var generator = SeededGenerator(seed: 8)
        let n = 20
        let inputs = (0..<(n * 2)).map { _ in generator.nextUnit() }
        let outputs = (0..<n).map { i in cos(5 * inputs[i * 2]) * inputs[i * 2 + 1] }
        let theta = GPHyperparameters(logLengthScales: [log(0.3), log(0.6)], logOutputScale: 0, logNoise: log(1e-4))
        let model = try GaussianProcess(inputs: inputs, outputs: outputs, dimension: 2, hyperparameters: theta)
        let best = outputs.min()!
        for point in [[0.31, 0.72], [0.9, 0.05], [0.5, 0.5]] {
            let (value, gradient) = model.logExpectedImprovementWithGradient(point, best: best)
            let (mean, variance) = model.predict(point, count: 1)
            #expect(abs(value - logExpectedImprovement(mean: mean[0], variance: variance[0], best: best)) < 1e-9)
            for d in 0..<2 {
                var up = point
                var down = point
                up[d] += 1e-6
                down[d] -= 1e-6
                let numeric =
                    (model.logExpectedImprovementWithGradient(up, best: best).value
                        - model.logExpectedImprovementWithGradient(down, best: best).value) / 2e-6
                #expect(
                    abs(numeric - gradient[d]) < 1e-4 * max(1, abs(numeric)),
                    "d=\(d) at \(point): \(gradient[d]) vs \(numeric)")
            }
        }
    }

    /// The fantasy-averaged improvement is plain log EI where the pending point is uncorrelated and cannot beat
    /// the best, and next to nothing at the pending point itself (its outcome is the candidate's).
    @Test func fantasiesReduceToLogEIFarAwayAndVanishAtThePendingPoint() throws {
        let theta = GPHyperparameters(logLengthScales: [log(0.05)], logOutputScale: 0, logNoise: log(1e-6))
        let model = try GaussianProcess(
            inputs: [0.4, 0.5, 0.6], outputs: [-5, -4, -4.5], dimension: 1, hyperparameters: theta)
        let best = -5.0
        var generator = SeededGenerator(seed: 2)
        let far = try #require(model.fantasies(of: [0.95], count: 1, best: best, samples: 64, generator: &generator))
        let (mean, variance) = model.predict([0.45], count: 1)
        let plain = logExpectedImprovement(mean: mean[0], variance: variance[0], best: best)
        let averaged = model.logMarginalImprovement([0.45], count: 1, given: far)[0]
        #expect(abs(averaged - plain) < 1e-3, "\(averaged) vs \(plain)")
        let here = try #require(model.fantasies(of: [0.45], count: 1, best: best, samples: 64, generator: &generator))
        let beside = model.logMarginalImprovement([0.45], count: 1, given: here)[0]
        #expect(beside < plain - 3, "\(beside) vs \(plain)")
    }
}

@Suite struct KernelTests {
    @Test func theDgemmCrossKernelEqualsTheDirectOne() {
        var generator = SeededGenerator(seed: 11)
        let a = (0..<(37 * 4)).map { _ in generator.nextUnit() }
        let b = (0..<(53 * 4)).map { _ in generator.nextUnit() }
        let kernel = Matern52(lengthScales: [0.2, 0.9, 3, 0.05], outputScale: 1.7)
        let direct = kernel.matrix(a, rows: 37, b, rows: 53)
        let fast = kernel.crossMatrix(a, rows: 37, b, rows: 53)
        #expect(zip(direct, fast).allSatisfy { abs($0 - $1) < 1e-9 })
    }
}

/// Importance says how far to trust it: an interval over bootstrap resamples, and a caution with too little data.
@Suite struct ImportanceUncertaintyTests {
    private let space = try! SearchSpace([
        Parameter("x", .float(lower: 0, upper: 1)), Parameter("y", .float(lower: 0, upper: 1)),
    ])

    private func trials(_ count: Int, seed: UInt64, score: (Double, Double, inout SeededGenerator) -> Double)
        -> [Trial]
    {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { number in
            let x = generator.nextUnit()
            let y = generator.nextUnit()
            var trial = Trial(number: number, configuration: Configuration(["x": .double(x), "y": .double(y)]))
            trial.state = .completed
            trial.score = score(x, y, &generator)
            return trial
        }
    }

    @Test func sevenTrialsOfNoiseComeWithACautionAndWideIntervals() throws {
        let noise = trials(7, seed: 4) { _, _, generator in 100 + 5 * generator.nextNormal() }
        let estimate = try #require(ParameterImportance.estimate(space: space, trials: noise))
        #expect(estimate.trials == 7)
        #expect(estimate.caution?.contains("too few to tell") == true, "\(String(describing: estimate.caution))")
        #expect(estimate.shares.allSatisfy { $0.low <= $0.share && $0.share <= $0.high })
        #expect(estimate.shares.contains { $0.high - $0.low > 0.2 }, "\(estimate.shares)")
    }

    @Test func aParameterThatClearlyMattersStandsOutWithoutACaution() throws {
        let clear = trials(40, seed: 5) { x, y, generator in 10 * x + 0.1 * y + 0.05 * generator.nextNormal() }
        let estimate = try #require(ParameterImportance.estimate(space: space, trials: clear))
        let x = try #require(estimate.shares.first { $0.name == "x" })
        let y = try #require(estimate.shares.first { $0.name == "y" })
        #expect(x.share > 0.8 && x.low > y.high, "\(estimate.shares)")
        #expect(estimate.caution == nil)
    }
}
