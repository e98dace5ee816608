import Foundation

/// The probability that a configuration runs at all, learnt from trials that ran (+1) and trials that crashed
/// because of their configuration (−1): Gaussian-process classification with a probit likelihood, under the
/// Laplace approximation (Rasmussen & Williams, algorithm 3.1).
///
/// The approximate posterior is exactly a GP regression on pseudo-targets `t = f̂ + ∇log p(y|f̂)/W` with a noise
/// of its own `1/W` per point, so the fitted model is a ``GaussianProcess``: it predicts with the same code,
/// and takes Kriging-believer fantasies (a running trial believed to come out as the model expects) through
/// the same Cholesky append. `P(run) = Φ(μ/√(1+σ²))`.
///
/// Kernel hyperparameters are chosen among a few by the Laplace approximation's marginal likelihood: a crash
/// region is a boundary, often sharp, whose length scales have nothing to do with the objective's. Which
/// features matter (ARD) comes from a GP regression fitted to the ±1 labels, whose MAP length scales are cheap
/// to get and short along the features that separate crashes from runs; isotropic candidates stand beside them.
struct CrashModel {
    private(set) var latent: GaussianProcess
    /// The chosen hyperparameters, kept so the next fit can skip the choice.
    let hyperparameters: GPHyperparameters

    /// The candidate hyperparameters: the label regression's length scales (`relevance`, when there is one)
    /// halved, as they are and doubled, and isotropic length scales from sharp to smooth; each with signal
    /// variances from hesitant to confident.
    static func candidates(dimension: Int, relevance: [Double]?) -> [GPHyperparameters] {
        var scales: [[Double]] = [0.1, 0.2, 0.4, 0.8].map { Array(repeating: log($0), count: dimension) }
        if let relevance {
            scales += [0.5, 1.0, 2.0].map { factor in relevance.map { $0 + log(factor) } }
        }
        var candidates: [GPHyperparameters] = []
        for logLengths in scales {
            for signal in [1.0, 4.0, 16.0] {
                candidates.append(
                    GPHyperparameters(logLengthScales: logLengths, logOutputScale: log(signal), logNoise: log(1e-8)))
            }
        }
        return candidates
    }

    /// The MAP length scales of a GP regression on the labels: short where crashes and runs part.
    private static func relevance(inputs: [Double], labels: [Double], dimension: Int) -> [Double]? {
        let mean = labels.reduce(0, +) / Double(labels.count)
        guard labels.contains(where: { $0 != labels[0] }) else { return nil }
        return GaussianProcess.fit(
            inputs: inputs, outputs: labels.map { $0 - mean }, dimension: dimension, start: nil, maxIterations: 30
        )?.hyperparameters.logLengthScales.map { min(max($0, log(0.02)), log(5)) }
    }

    /// Fits the classifier to `labels` (+1 ran, −1 crashed) at row-major `inputs`, with `hyperparameters`, or
    /// choosing among ``candidates(dimension:)`` by marginal likelihood when `nil`.
    static func fit(inputs: [Double], labels: [Double], dimension: Int, hyperparameters: GPHyperparameters?)
        -> CrashModel?
    {
        let choices =
            hyperparameters.map { [$0] }
            ?? candidates(
                dimension: dimension, relevance: relevance(inputs: inputs, labels: labels, dimension: dimension))
        var best: (evidence: Double, model: CrashModel)?
        for theta in choices {
            guard let (evidence, model) = laplace(inputs: inputs, labels: labels, dimension: dimension, theta: theta)
            else { continue }
            if evidence > (best?.evidence ?? -.infinity) { best = (evidence, model) }
        }
        return best?.model
    }

    /// The Laplace mode by Newton's method, then the pseudo-target regression and the approximate log marginal
    /// likelihood `−½ aᵀf̂ + Σ log Φ(yᵢf̂ᵢ) − Σ log Lᵢᵢ`.
    private static func laplace(inputs: [Double], labels y: [Double], dimension: Int, theta: GPHyperparameters)
        -> (Double, CrashModel)?
    {
        let n = y.count
        let kernel = Matern52(lengthScales: theta.logLengthScales.map(exp), outputScale: exp(theta.logOutputScale))
        let k = kernel.matrix(inputs, rows: n, inputs, rows: n)
        var f = [Double](repeating: 0, count: n)
        var a = [Double](repeating: 0, count: n)
        var objective = -Double.infinity
        var logDeterminantHalf = 0.0
        var w = [Double](repeating: 0, count: n)
        var gradient = [Double](repeating: 0, count: n)
        for _ in 0..<30 {
            for i in 0..<n {
                (gradient[i], w[i]) = probitDerivatives(label: y[i], latent: f[i])
            }
            let root = w.map { $0.squareRoot() }
            // B = I + W½ K W½.
            var b = [Double](repeating: 0, count: n * n)
            for j in 0..<n {
                for i in 0..<n { b[j * n + i] = root[i] * k[j * n + i] * root[j] + (i == j ? 1 : 0) }
            }
            guard let factor = try? CholeskyFactor(factoring: b, order: n) else { return nil }
            // a = c − W½ B⁻¹ (W½ K c) with c = W f + ∇log p; then f = K a.
            let c = (0..<n).map { w[$0] * f[$0] + gradient[$0] }
            let kc = multiply(k, c, n)
            let solved = factor.solve((0..<n).map { root[$0] * kc[$0] })
            a = (0..<n).map { c[$0] - root[$0] * solved[$0] }
            f = multiply(k, a, n)
            var value = 0.0
            for i in 0..<n { value += -0.5 * a[i] * f[i] + logNormalCDF(y[i] * f[i]) }
            logDeterminantHalf = 0.5 * factor.logDeterminant
            if abs(value - objective) < 1e-6 {
                objective = value
                break
            }
            objective = value
        }
        for i in 0..<n { (gradient[i], w[i]) = probitDerivatives(label: y[i], latent: f[i]) }
        let targets = (0..<n).map { f[$0] + gradient[$0] / w[$0] }
        guard
            let latent = try? GaussianProcess(
                inputs: inputs, outputs: targets, dimension: dimension, hyperparameters: theta,
                pointNoise: w.map { 1 / $0 })
        else { return nil }
        return (objective - logDeterminantHalf, CrashModel(latent: latent, hyperparameters: theta))
    }

    /// `∂ log Φ(yf)/∂f` and `W = −∂² log Φ(yf)/∂f²` for a probit likelihood; W is kept above 1e-9 so the
    /// pseudo-noise `1/W` stays finite for points far on their side of the boundary.
    private static func probitDerivatives(label y: Double, latent f: Double) -> (Double, Double) {
        let z = y * f
        // φ(z)/Φ(z), stable far in the lower tail.
        let ratio = exp(-0.5 * z * z - 0.5 * log(2 * Double.pi) - logNormalCDF(z))
        let gradient = y * ratio
        let w = ratio * ratio + z * ratio
        return (gradient, max(w, 1e-9))
    }

    private static func multiply(_ matrix: [Double], _ vector: [Double], _ n: Int) -> [Double] {
        var result = [Double](repeating: 0, count: n)
        for j in 0..<n where vector[j] != 0 {
            let value = vector[j]
            for i in 0..<n { result[i] += matrix[j * n + i] * value }
        }
        return result
    }

    /// `log P(run)` at `m` row-major points.
    func logProbabilityOfRunning(_ points: [Double], count m: Int) -> [Double] {
        let (mean, variance) = latent.predict(points, count: m)
        return (0..<m).map { logNormalCDF(mean[$0] / (1 + variance[$0]).squareRoot()) }
    }

    /// Believes a running trial at `point` comes out as the model expects: its latent mean, observed with the
    /// noise one such observation carries, which narrows the model near it without moving its mean.
    mutating func believe(_ point: [Double]) {
        let mean = latent.predictMean(point, count: 1)
        let label: Double = mean[0] >= 0 ? 1 : -1
        let (gradient, w) = Self.probitDerivatives(label: label, latent: mean[0])
        try? latent.add(point: point, output: mean[0] + gradient / w, extraNoise: 1 / w)
    }
}
