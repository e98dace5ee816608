import COpenBLAS
import Foundation

/// The hyperparameters of a ``GaussianProcess``, in log space: one length scale per feature, the signal
/// variance and the noise variance.
public struct GPHyperparameters: Sendable, Hashable, Codable {
    /// `log ℓ_d`.
    public var logLengthScales: [Double]
    /// `log σ²`.
    public var logOutputScale: Double
    /// `log σ_n²`.
    public var logNoise: Double

    /// The prior's centre for `dimension` features: the point every fit can fall back to.
    static func prior(dimension: Int) -> Self {
        Self(
            logLengthScales: Array(repeating: GPPrior.startingLogLengthScale, count: dimension),
            logOutputScale: 0,
            logNoise: GPPrior.noiseMean
        )
    }

    var vector: [Double] { logLengthScales + [logOutputScale, logNoise] }

    init(logLengthScales: [Double], logOutputScale: Double, logNoise: Double) {
        self.logLengthScales = logLengthScales
        self.logOutputScale = logOutputScale
        self.logNoise = logNoise
    }

    init(vector: [Double]) {
        logLengthScales = Array(vector.dropLast(2))
        logOutputScale = vector[vector.count - 2]
        logNoise = vector[vector.count - 1]
    }
}

/// Weak priors that make the hyperparameters a maximum a posteriori estimate instead of a maximum
/// likelihood one, which is what keeps a GP sane with ten observations.
///
/// Length scales: a penalty `0.1 (τ + 1/τ)` on `τ = 1/ℓ²`, symmetric in log scale around ℓ = 1 (the width
/// of the unit cube), which keeps ℓ away from both a spiky and a flat model. Signal variance: Gamma(2, 1)
/// (outputs are standardised). Noise variance: Gamma(1.1, 30), most mass below a few percent of the
/// variance, so deterministic experiments fit tightly and noisy ones can still learn their noise. These are
/// the priors Optuna's GP sampler uses; the dimension-scaled log-normal of Hvarfner et al. was measured here
/// too and, centring ℓ near 10 in 6-D, learned Hartmann-6 far more slowly (docs/benchmarks.md).
struct GPPrior {
    init(dimension: Int) {}

    static let startingLogLengthScale = 0.0
    static let noiseMean = log(1e-2)

    /// Bounds that keep the optimiser away from degenerate matrices.
    static func bounds(dimension: Int) -> [ClosedRange<Double>] {
        Array(repeating: log(1e-3)...log(1e3), count: dimension) + [log(1e-3)...log(1e3), log(1e-7)...log(1.0)]
    }

    /// `−log p(θ)` (up to a constant) and its gradient, in log-hyperparameter space.
    func negativeLogDensity(_ theta: GPHyperparameters) -> (Double, [Double]) {
        var value = 0.0
        var gradient: [Double] = []
        for logLength in theta.logLengthScales {
            let tau = exp(-2 * logLength) / 4
            value += 0.1 * (tau + 1 / tau)
            gradient.append(0.1 * (-2 * tau + 2 / tau))
        }
        // Gamma(k, r) on x = exp(θ): −log p = −(k − 1) θ + r eˣ.
        let signal = exp(theta.logOutputScale)
        value += -(2 - 1) * theta.logOutputScale + 1 * signal
        gradient.append(-(2 - 1) + signal)
        let noise = exp(theta.logNoise)
        value += -(1.1 - 1) * theta.logNoise + 30 * noise
        gradient.append(-(1.1 - 1) + 30 * noise)
        return (value, gradient)
    }
}

/// A Gaussian process regression model on standardised outputs, with a Matérn-5/2 ARD kernel.
///
/// Inputs are row-major feature vectors in `[0, 1]^D`. Fitting maximises the log marginal likelihood plus
/// ``GPPrior`` with L-BFGS on the analytic gradient (`½ tr((ααᵀ − K⁻¹) ∂K/∂θ)`), warm-started from the
/// previous hyperparameters. The model can then take fantasised observations (Kriging believer) in O(n²)
/// each through the Cholesky append.
struct GaussianProcess {
    let dimension: Int
    private(set) var inputs: [Double]
    private(set) var outputs: [Double]
    let hyperparameters: GPHyperparameters
    private let kernel: Matern52
    private var factor: CholeskyFactor
    private var alpha: [Double]

    var count: Int { outputs.count }
    private var noise: Double { exp(hyperparameters.logNoise) + 1e-8 }

    /// Builds the model with fixed hyperparameters; fails when the kernel matrix is not positive definite.
    ///
    /// `pointNoise`, when given, adds a noise variance of its own to each observation (a classifier's Laplace
    /// approximation is such a regression, on pseudo-targets with noise 1/W).
    init(
        inputs: [Double],
        outputs: [Double],
        dimension: Int,
        hyperparameters: GPHyperparameters,
        pointNoise: [Double]? = nil
    ) throws(LinearAlgebraError) {
        self.dimension = dimension
        self.inputs = inputs
        self.outputs = outputs
        self.hyperparameters = hyperparameters
        kernel = Matern52(
            lengthScales: hyperparameters.logLengthScales.map(exp),
            outputScale: exp(hyperparameters.logOutputScale)
        )
        let n = outputs.count
        // Room for the believed pending points an ask adds (Cholesky appends) without growing the buffer.
        let capacity = n + 16
        var matrix = kernel.lowerMatrix(inputs, rows: n, leading: capacity)
        let noise = exp(hyperparameters.logNoise) + 1e-8
        for index in 0..<n { matrix[index * capacity + index] += noise + (pointNoise?[index] ?? 0) }
        factor = try CholeskyFactor(factoringInPlace: matrix, order: n, capacity: capacity)
        alpha = factor.solve(outputs)
    }

    /// Fits the hyperparameters by MAP from `start` and from fixed restarts, returning the best model found.
    static func fit(
        inputs: [Double],
        outputs: [Double],
        dimension: Int,
        start: GPHyperparameters?,
        maxIterations: Int
    ) -> GaussianProcess? {
        let prior = GPPrior(dimension: dimension)
        let bounds = GPPrior.bounds(dimension: dimension)
        // Long length scales with little noise make a poor start: the cheapest way down from there is to
        // call everything noise, a local optimum. So also start from short length scales; with many
        // observations the warm start alone (previous optimum, one observation ago) is enough.
        var starts: [GPHyperparameters] = []
        let warm = start.flatMap { $0.logLengthScales.count == dimension ? $0 : nil }
        if let warm { starts.append(warm) }
        if warm == nil || outputs.count <= 150 {
            var prior = GPHyperparameters.prior(dimension: dimension)
            prior.logNoise = log(1e-2)
            starts.append(prior)
            starts.append(
                GPHyperparameters(
                    logLengthScales: Array(repeating: log(0.2), count: dimension),
                    logOutputScale: 0,
                    logNoise: log(1e-3)
                )
            )
        }
        var best: (value: Double, point: [Double])?
        for start in starts {
            let result = LBFGS.minimize(from: start.vector, bounds: bounds, maxIterations: maxIterations) { vector in
                negativeLogPosterior(
                    GPHyperparameters(vector: vector),
                    inputs: inputs,
                    outputs: outputs,
                    dimension: dimension,
                    prior: prior
                )
            }
            if result.value.isFinite, result.value < (best?.value ?? .infinity) { best = (result.value, result.point) }
        }
        let chosen = best.map { GPHyperparameters(vector: $0.point) } ?? .prior(dimension: dimension)
        return try? GaussianProcess(inputs: inputs, outputs: outputs, dimension: dimension, hyperparameters: chosen)
    }

    /// `−(log p(y | θ) + log p(θ))` and its gradient in log-hyperparameter space.
    static func negativeLogPosterior(
        _ theta: GPHyperparameters,
        inputs: [Double],
        outputs: [Double],
        dimension: Int,
        prior: GPPrior
    ) -> (value: Double, gradient: [Double]) {
        let n = outputs.count
        let lengths = theta.logLengthScales.map(exp)
        let signal = exp(theta.logOutputScale)
        let noise = exp(theta.logNoise) + 1e-8
        let kernel = Matern52(lengthScales: lengths, outputScale: signal)
        // K and the per-pair pieces the gradient needs.
        var matrix = [Double](repeating: 0, count: n * n)
        var decay = [Double](repeating: 0, count: n * n)
        inputs.withUnsafeBufferPointer { x in
            for j in 0..<n {
                for i in j..<n {
                    let r = (5 * kernel.squaredDistance(x, i, x, j)).squareRoot()
                    let e = exp(-r)
                    let value = signal * (1 + r + r * r / 3) * e
                    matrix[j * n + i] = value
                    matrix[i * n + j] = value
                    // ∂k/∂log ℓ_d = σ² (5/3)(1 + √5 r) e^{−√5 r} (x_d − y_d)²/ℓ_d²: the factor before the last term.
                    let shared = signal * (5.0 / 3.0) * (1 + r) * e
                    decay[j * n + i] = shared
                    decay[i * n + j] = shared
                }
            }
        }
        for index in 0..<n { matrix[index * n + index] += noise }
        guard let factor = try? CholeskyFactor(factoring: matrix, order: n) else {
            return (.infinity, Array(repeating: 0, count: dimension + 2))
        }
        let alpha = factor.solve(outputs)
        var fit = 0.0
        for index in 0..<n { fit += outputs[index] * alpha[index] }
        let logLikelihood = -0.5 * fit - 0.5 * factor.logDeterminant - 0.5 * Double(n) * log(2 * Double.pi)
        // W = ααᵀ − K⁻¹; ∂(log p)/∂θ = ½ Σ_ij W_ij ∂K_ij/∂θ.
        var w = factor.inverse()
        for j in 0..<n {
            for i in 0..<n { w[j * n + i] = alpha[i] * alpha[j] - w[j * n + i] }
        }
        var gradient = [Double](repeating: 0, count: dimension + 2)
        inputs.withUnsafeBufferPointer { x in
            for j in 0..<n {
                for i in 0..<n {
                    let weight = w[j * n + i]
                    let shared = decay[j * n + i] * weight
                    for d in 0..<dimension {
                        let difference = x[i * dimension + d] - x[j * dimension + d]
                        gradient[d] += shared * difference * difference / (lengths[d] * lengths[d])
                    }
                    let kernelValue = i == j ? matrix[j * n + i] - noise : matrix[j * n + i]
                    gradient[dimension] += weight * kernelValue
                }
                gradient[dimension + 1] += w[j * n + j] * (noise - 1e-8)
            }
        }
        let (priorValue, priorGradient) = prior.negativeLogDensity(theta)
        let value = -logLikelihood + priorValue
        let total = zip(gradient, priorGradient).map { -0.5 * $0 + $1 }
        return (value, total)
    }

    /// The same data under length scales `factor` times these (and the other hyperparameters kept); `self` when
    /// that kernel matrix cannot be factored.
    func withLengthScales(scaledBy factor: Double) -> GaussianProcess {
        var scaled = hyperparameters
        scaled.logLengthScales = scaled.logLengthScales.map { $0 + log(factor) }
        return (try? GaussianProcess(inputs: inputs, outputs: outputs, dimension: dimension, hyperparameters: scaled))
            ?? self
    }

    /// Posterior mean and latent variance (without noise) at `m` row-major points.
    func predict(_ points: [Double], count m: Int) -> (mean: [Double], variance: [Double]) {
        let n = count
        guard n > 0 else {
            return (Array(repeating: 0, count: m), Array(repeating: kernel.outputScale, count: m))
        }
        let prior = crossAndMean(points, count: m)
        let mean = prior.mean
        var cross = prior.cross
        factor.solveLower(&cross, columns: m)
        var variance = [Double](repeating: kernel.outputScale, count: m)
        cross.withUnsafeBufferPointer { v in
            for j in 0..<m {
                var sum = 0.0
                for i in 0..<n { sum += v[j * n + i] * v[j * n + i] }
                variance[j] = max(kernel.outputScale - sum, 1e-12)
            }
        }
        return (mean, variance)
    }

    /// The posterior mean alone at `m` row-major points (what a believed pending point needs): the same values
    /// ``predict(_:count:)`` gives, without the O(n²)-per-point solve its variances take.
    func predictMean(_ points: [Double], count m: Int) -> [Double] {
        guard count > 0 else { return Array(repeating: 0, count: m) }
        return crossAndMean(points, count: m).mean
    }

    /// `K(X, points)` (n × m, column-major) and the posterior mean `K(X, points)ᵀ α`.
    private func crossAndMean(_ points: [Double], count m: Int) -> (cross: [Double], mean: [Double]) {
        let n = count
        let cross = kernel.crossMatrix(inputs, rows: n, points, rows: m)
        var mean = [Double](repeating: 0, count: m)
        cblas_dgemv(CblasColMajor, CblasTrans, blasint(n), blasint(m), 1, cross, blasint(n), alpha, 1, 0, &mean, 1)
        return (cross, mean)
    }

    /// The norm of the posterior mean's gradient at each of `m` row-major points: the steepest slope the model
    /// believes in, the Lipschitz constant local penalisation needs.
    func meanGradientNorms(_ points: [Double], count m: Int) -> [Double] {
        let n = count
        let signal = kernel.outputScale
        return (0..<m).map { j in
            var gradient = [Double](repeating: 0, count: dimension)
            for i in 0..<n {
                var squared = 0.0
                for d in 0..<dimension {
                    let difference = points[j * dimension + d] - inputs[i * dimension + d]
                    squared += difference * difference * kernel.inverseSquaredLengths[d]
                }
                let r = (5 * squared).squareRoot()
                let shared = -signal * (5.0 / 3.0) * (1 + r) * exp(-r) * alpha[i]
                for d in 0..<dimension {
                    gradient[d] +=
                        shared * (points[j * dimension + d] - inputs[i * dimension + d])
                        * kernel.inverseSquaredLengths[d]
                }
            }
            return gradient.reduce(0) { $0 + $1 * $1 }.squareRoot()
        }
    }

    /// The joint posterior at `m` row-major points: the mean, `L⁻¹ K(X, points)` (n × m, for conditioning on the
    /// same draw later) and the factor of the covariance; `nil` when the covariance cannot be factored.
    private func jointPosterior(at points: [Double], count m: Int) -> (
        mean: [Double], whitened: [Double], factor: CholeskyFactor
    )? {
        let n = count
        var whitened = kernel.matrix(inputs, rows: n, points, rows: m)  // n × m
        var mean = [Double](repeating: 0, count: m)
        var covariance = kernel.matrix(points, rows: m, points, rows: m)
        if n > 0 {
            cblas_dgemv(
                CblasColMajor, CblasTrans, blasint(n), blasint(m), 1, whitened, blasint(n), alpha, 1, 0, &mean, 1)
            factor.solveLower(&whitened, columns: m)
            cblas_dgemm(
                CblasColMajor, CblasTrans, CblasNoTrans, blasint(m), blasint(m), blasint(n), -1, whitened, blasint(n),
                whitened, blasint(n), 1, &covariance, blasint(m))
        }
        // Nearly equal points make the covariance nearly singular; a jitter far below any modelled variance keeps
        // it factorable without changing a draw where it matters.
        for index in 0..<m { covariance[index * m + index] += 1e-6 * kernel.outputScale }
        guard let jointFactor = try? CholeskyFactor(factoring: covariance, order: m) else { return nil }
        return (mean, whitened, jointFactor)
    }

    /// One draw of the latent function's joint posterior at `m` row-major points (Thompson sampling's sample
    /// path, on a finite set); `nil` when their posterior covariance cannot be factored.
    func jointSample(at points: [Double], count m: Int, generator: inout SeededGenerator) -> [Double]? {
        guard m > 0 else { return [] }
        guard let posterior = jointPosterior(at: points, count: m) else { return nil }
        let normals = (0..<m).map { _ in generator.nextNormal() }
        var sample = posterior.mean
        cblas_dgemv(
            CblasColMajor, CblasNoTrans, blasint(m), blasint(m), 1, posterior.factor.lowerMatrix, blasint(m), normals,
            1, 1, &sample, 1)
        return sample
    }

    /// Samples the joint posterior at `k` pending points (row-major features): what a batch-aware acquisition
    /// averages over instead of pretending the pending trials return their mean.
    ///
    /// Each sample `s` draws the pending outcomes `f_R = μ_R + L_R z_s` and keeps `z_s`, so that a candidate's
    /// outcome can be conditioned on the same draw, and the improvement threshold that draw leaves,
    /// `min(best, min f_R)`. Fails (`nil`) when the pending posterior cannot be factored.
    func fantasies(
        of points: [Double],
        count k: Int,
        best: Double,
        samples: Int,
        generator: inout SeededGenerator
    ) -> PendingFantasies? {
        guard k > 0, count > 0, samples > 0,
            let (mean, whitened, pendingFactor) = jointPosterior(at: points, count: k)
        else { return nil }
        let lower = pendingFactor.lowerMatrix
        var normals = [Double](repeating: 0, count: k * samples)
        for index in normals.indices { normals[index] = generator.nextNormal() }
        var thresholds = [Double](repeating: best, count: samples)
        var outcomes = [Double](repeating: 0, count: k * samples)
        for s in 0..<samples {
            for j in 0..<k {
                var value = mean[j]
                for l in 0...j { value += lower[l * k + j] * normals[s * k + l] }
                outcomes[s * k + j] = value
                thresholds[s] = min(thresholds[s], value)
            }
        }
        return PendingFantasies(
            points: points, count: k, whitened: whitened, factor: pendingFactor, normals: normals,
            outcomes: outcomes, thresholds: thresholds, samples: samples)
    }

    /// The posterior at `m` row-major points given what finished, with each point's loadings on the pending
    /// points' draws: `a = L_R⁻¹ cov(R, x)` (`k × m`, column-major), so that under draw `s` the point's outcome
    /// has mean `μ_x + aᵀz_s` and variance `σ²_x − aᵀa` (returned), the same for every draw.
    func conditioned(_ points: [Double], count m: Int, on fantasies: PendingFantasies) -> (
        mean: [Double], variance: [Double], loadings: [Double]
    ) {
        let n = count
        let k = fantasies.count
        var cross = kernel.crossMatrix(inputs, rows: n, points, rows: m)  // n × m
        var mean = [Double](repeating: 0, count: m)
        cblas_dgemv(CblasColMajor, CblasTrans, blasint(n), blasint(m), 1, cross, blasint(n), alpha, 1, 0, &mean, 1)
        factor.solveLower(&cross, columns: m)
        // cov(R, x) = k(R, x) − W_Rᵀ V_x, then a = L_R⁻¹ cov(R, x): k × m.
        var loadings = kernel.crossMatrix(fantasies.points, rows: k, points, rows: m)
        cblas_dgemm(
            CblasColMajor, CblasTrans, CblasNoTrans, blasint(k), blasint(m), blasint(n), -1, fantasies.whitened,
            blasint(n), cross, blasint(n), 1, &loadings, blasint(k))
        fantasies.factor.solveLower(&loadings, columns: m)
        var variance = [Double](repeating: 0, count: m)
        cross.withUnsafeBufferPointer { v in
            loadings.withUnsafeBufferPointer { a in
                for j in 0..<m {
                    var value = kernel.outputScale
                    for i in 0..<n { value -= v[j * n + i] * v[j * n + i] }
                    for l in 0..<k { value -= a[j * k + l] * a[j * k + l] }
                    variance[j] = max(value, 1e-12)
                }
            }
        }
        return (mean, variance, loadings)
    }

    /// `log` of the expected improvement a candidate adds to the pending points, averaged over `fantasies`:
    /// `log (1/S) Σ_s EI(μ_x + aᵀz_s, σ²_x − aᵀa; τ_s)`, where `a = L_R⁻¹ cov(R, x)` carries the candidate's
    /// correlation with the pending outcomes. This is the marginal gain of q-EI (a batch's expected
    /// improvement) from adding the candidate, with the candidate's own outcome integrated analytically.
    func logMarginalImprovement(_ points: [Double], count m: Int, given fantasies: PendingFantasies) -> [Double] {
        let k = fantasies.count
        let (mean, variance, loadings) = conditioned(points, count: m, on: fantasies)
        let samples = fantasies.samples
        var result = [Double](repeating: 0, count: m)
        var terms = [Double](repeating: 0, count: samples)
        loadings.withUnsafeBufferPointer { a in
            fantasies.normals.withUnsafeBufferPointer { z in
                for j in 0..<m {
                    var largest = -Double.infinity
                    for s in 0..<samples {
                        var shifted = mean[j]
                        for l in 0..<k { shifted += a[j * k + l] * z[s * k + l] }
                        let term = logExpectedImprovement(
                            mean: shifted, variance: variance[j], best: fantasies.thresholds[s])
                        terms[s] = term
                        largest = max(largest, term)
                    }
                    result[j] = logMeanExp(terms, largest: largest)
                }
            }
        }
        return result
    }

    /// `log EI` at one point and its gradient with respect to the point's features.
    ///
    /// With `v = L⁻¹k`: `μ = kᵀα`, `σ² = s − vᵀv`, `∂μ = ∂kᵀα`, `∂σ² = −2 ∂kᵀ K⁻¹k`, and
    /// `∂ log EI = (Φ(z)/h(z)) ∂z + ∂σ/σ` with `z = (best − μ)/σ`.
    func logExpectedImprovementWithGradient(_ point: [Double], best: Double) -> (value: Double, gradient: [Double]) {
        let n = count
        let signal = kernel.outputScale
        var k = [Double](repeating: 0, count: n)
        var shared = [Double](repeating: 0, count: n)
        inputs.withUnsafeBufferPointer { x in
            point.withUnsafeBufferPointer { p in
                for i in 0..<n {
                    let r = (5 * kernel.squaredDistance(x, i, p, 0)).squareRoot()
                    let e = exp(-r)
                    k[i] = signal * (1 + r + r * r / 3) * e
                    shared[i] = -signal * (5.0 / 3.0) * (1 + r) * e
                }
            }
        }
        var mean = 0.0
        for i in 0..<n { mean += k[i] * alpha[i] }
        var v = k
        factor.solveLower(&v, columns: 1)
        var variance = signal
        for i in 0..<n { variance -= v[i] * v[i] }
        variance = max(variance, 1e-12)
        var weights = v  // K⁻¹k = L⁻ᵀ(L⁻¹k), reusing v
        factor.solveUpper(&weights)
        let sigma = variance.squareRoot()
        let z = (best - mean) / sigma
        let value = logExpectedImprovement(mean: mean, variance: variance, best: best)
        // Φ(z)/h(z) in logs: both underflow together far in the tail.
        let ratio = exp(logNormalCDF(z) - (value - log(sigma)))
        var gradient = [Double](repeating: 0, count: dimension)
        for d in 0..<dimension {
            let inverse = kernel.inverseSquaredLengths[d]
            var meanGradient = 0.0
            var varianceGradient = 0.0
            for i in 0..<n {
                let dk = shared[i] * (point[d] - inputs[i * dimension + d]) * inverse
                meanGradient += dk * alpha[i]
                varianceGradient -= 2 * dk * weights[i]
            }
            let sigmaGradient = varianceGradient / (2 * sigma)
            let zGradient = -meanGradient / sigma - z * sigmaGradient / sigma
            gradient[d] = ratio * zGradient + sigmaGradient / sigma
        }
        return (value, gradient)
    }

    /// Adds an observation without refitting: O(n²) through the Cholesky append; `extraNoise` adds to the
    /// model's own noise for this observation.
    mutating func add(point: [Double], output: Double, extraNoise: Double = 0) throws(LinearAlgebraError) {
        let n = count
        let cross = kernel.matrix(inputs, rows: n, point, rows: 1)
        try factor.append(crossCovariance: cross, variance: kernel.outputScale + noise + extraNoise)
        inputs += point
        outputs.append(output)
        alpha = factor.solve(outputs)
    }
}

/// Draws of the pending points' joint posterior, from ``GaussianProcess/fantasies(of:count:best:samples:generator:)``.
struct PendingFantasies {
    /// The pending points, row-major.
    let points: [Double]
    /// How many there are.
    let count: Int
    /// `L⁻¹ K(X, R)`, `n × k`: the pending points' covariance with the data, whitened.
    let whitened: [Double]
    /// The Cholesky factor of the pending points' posterior covariance.
    let factor: CholeskyFactor
    /// `k × S` standard normals, one column per sample.
    let normals: [Double]
    /// `k × S` drawn outcomes `f_R = μ_R + L_R z_s`, one column per sample.
    let outcomes: [Double]
    /// Each sample's improvement threshold, `min(best, min f_R)`.
    let thresholds: [Double]
    /// `S`.
    let samples: Int
}

/// `log((1/S) Σ_s exp(terms[s]))` given the largest term: the average of draws' improvements in logs, `−∞`
/// when every draw's is.
func logMeanExp(_ terms: [Double], largest: Double) -> Double {
    guard largest.isFinite else { return largest }
    var sum = 0.0
    for term in terms { sum += exp(term - largest) }
    return largest + log(sum / Double(terms.count))
}

/// `log EI` for minimisation, stable far into the tail where `EI` itself underflows to zero
/// (Ament et al., "Unexpected Improvements to Expected Improvement", 2023).
///
/// With `z = (best − μ) / σ`, `EI = σ h(z)` and `h(z) = φ(z) + z Φ(z)`.
func logExpectedImprovement(mean: Double, variance: Double, best: Double) -> Double {
    let sigma = variance.squareRoot()
    let z = (best - mean) / sigma
    return logH(z) + log(sigma)
}

private func logH(_ z: Double) -> Double {
    let logRootTwoPi = 0.5 * log(2 * Double.pi)
    if z > -1 {
        let phi = exp(-0.5 * z * z) / (2 * Double.pi).squareRoot()
        let cdf = 0.5 * erfc(-z / 2.0.squareRoot())
        return log(phi + z * cdf)
    }
    let u = -z / 2.0.squareRoot()
    if z > -1e8 {
        // h(z) = φ(z) (1 − √(π/2) |z| erfcx(|z|/√2)), computed without the cancellation of the naive form.
        let inner = 1 - (Double.pi / 2).squareRoot() * -z * erfcx(u)
        return -0.5 * z * z - logRootTwoPi + log(max(inner, .leastNormalMagnitude))
    }
    return -0.5 * z * z - logRootTwoPi - 2 * log(-z)
}

/// `log Φ(z)`, accurate far into the lower tail.
func logNormalCDF(_ z: Double) -> Double {
    if z > -5 { return log(0.5 * erfc(-z / 2.0.squareRoot())) }
    let u = -z / 2.0.squareRoot()
    return log(0.5) + log(erfcx(u)) - u * u
}

/// The scaled complementary error function `exp(x²) erfc(x)` for `x ≥ 0`, without overflow.
func erfcx(_ x: Double) -> Double {
    if x < 25 { return exp(x * x) * erfc(x) }
    // Asymptotic series: (1/(x√π)) (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶)).
    let inverse = 1 / (x * x)
    return (1 - 0.5 * inverse + 0.75 * inverse * inverse - 1.875 * inverse * inverse * inverse)
        / (x * Double.pi.squareRoot())
}
