import Foundation

/// How a loss is carried onto a model's scale: the output warp (from five measurements on), then
/// standardisation. Monotone, so dominance and rankings survive it.
struct LossScale {
    let warp: OutputWarp?
    let mean: Double
    let scale: Double

    /// The scale fitted to `losses`.
    init(_ losses: [Double]) {
        warp = losses.count >= 5 ? OutputWarp(losses) : nil
        let warped = warp?.apply(losses) ?? losses
        let standardisation = Standardisation(warped)
        mean = standardisation.mean
        scale = standardisation.scale
    }

    /// `loss` on the model's scale.
    func apply(_ loss: Double) -> Double {
        let warped = warp.map { warp in
            // A reference point can lie below the warp's shift (a bound better than every loss seen): the
            // power is undefined there, so clamp just above it; such a point bounds nothing anyway.
            warp.apply([max(loss, warp.shift + 1e-12 * max(1, abs(warp.shift)))])[0]
        }
        return ((warped ?? loss) - mean) / scale
    }
}

/// The models of a study of two objectives: a GP per objective on its losses (model scale), the feasible
/// front on that scale, and the reference point that bounds the hypervolume.
///
/// The acquisition is the exact expected hypervolume improvement of independent Gaussian predictions, in
/// logs: with the front sorted by the first loss (`x₁ < … < x_k`, `y₁ > … > y_k`), `y₀ = r₂`, `x_{k+1} = r₁`,
///
///     EHVI = Σᵢ₌₁^{k+1} (Ψ₁(xᵢ) − Ψ₁(xᵢ₋₁)) Ψ₂(yᵢ₋₁),   Ψⱼ(t) = E[(t − Fⱼ)⁺] = σⱼ h((t − μⱼ)/σⱼ),
///
/// the region the front does not dominate cut into vertical strips, each a product of two one-dimensional
/// expected improvements because the objectives are modelled independently (Ψ₁(x₀ = −∞) = 0).
struct ParetoModel {
    /// One GP per objective.
    var models: [GaussianProcess]
    /// Non-dominated feasible points on the models' scales (and believed pending ones), sorted by the first.
    var front: [[Double]]
    /// The reference point on the models' scales: what a point must beat on every objective to count.
    let reference: [Double]
    /// Running and chosen points kept out of the models (``BayesianOptimization/PendingMode/fantasies``),
    /// row-major.
    var pending: [Double] = []
    /// Each pending point's probability of running and meeting the constraints.
    var pendingFeasibility: [Double] = []
    /// How many joint draws of the pending points' losses the q-EHVI average takes.
    static let fantasySamples = 16
    /// Each objective's draws at ``pending``, once sampled, and the front each draw leaves.
    var fantasies: (draws: [PendingFantasies], fronts: [Strips])?

    /// The region a front does not dominate, cut into vertical strips: strip `i` spans `(x_{i−1}, x_i]` in the
    /// first loss and lies below `y_{i−1}` in the second.
    struct Strips {
        /// The strips' right edges in the first loss: the front's first losses, then the reference's.
        let xs: [Double]
        /// The strips' heights in the second loss: the reference's, then the front's second losses.
        let ys: [Double]

        /// The strips of `front` (non-dominated, sorted by the first loss) below `reference`.
        init(front: [[Double]], reference: [Double]) {
            let inside = front.filter { $0[0] < reference[0] && $0[1] < reference[1] }
            xs = inside.map { $0[0] } + [reference[0]]
            ys = [reference[1]] + inside.map { $0[1] }
        }

        /// `log EHVI` of independent Gaussian predictions of the two losses; `terms` is scratch of at least `xs.count`.
        func logImprovement(
            mean1: Double, variance1: Double, mean2: Double, variance2: Double, terms: inout [Double]
        ) -> Double {
            var largest = -Double.infinity
            var previous = -Double.infinity
            for strip in xs.indices {
                let upper = Autotune.logExpectedImprovement(mean: mean1, variance: variance1, best: xs[strip])
                // log(e^upper − e^previous), previous ≤ upper since Ψ grows with its threshold.
                let width =
                    previous == -.infinity
                    ? upper : (upper > previous ? upper + log(-expm1(previous - upper)) : -.infinity)
                previous = upper
                let height = Autotune.logExpectedImprovement(mean: mean2, variance: variance2, best: ys[strip])
                let term = width + height
                terms[strip] = term
                if term > largest { largest = term }
            }
            guard largest.isFinite else { return -.infinity }
            var sum = 0.0
            for strip in xs.indices where terms[strip].isFinite { sum += exp(terms[strip] - largest) }
            return largest + log(sum)
        }
    }

    /// `log EHVI` at `m` feature rows; `−∞` where nothing improves. With pending points drawn
    /// (``sampleFantasies(samples:generator:)``), the average over the draws of the improvement on the front the
    /// draw leaves, each candidate's losses conditioned on the draw: the marginal gain of q-EHVI, the candidate's
    /// own outcome integrated exactly.
    func logExpectedImprovement(_ features: [Double], count m: Int) -> [Double] {
        if let fantasies { return logMarginalImprovement(features, count: m, given: fantasies) }
        let first = models[0].predict(features, count: m)
        let second = models[1].predict(features, count: m)
        let strips = Strips(front: front, reference: reference)
        var result = [Double](repeating: -.infinity, count: m)
        var terms = [Double](repeating: 0, count: strips.xs.count)
        for index in 0..<m {
            result[index] = strips.logImprovement(
                mean1: first.mean[index], variance1: first.variance[index], mean2: second.mean[index],
                variance2: second.variance[index], terms: &terms)
        }
        return result
    }

    private func logMarginalImprovement(
        _ features: [Double], count m: Int, given fantasies: (draws: [PendingFantasies], fronts: [Strips])
    ) -> [Double] {
        let k = fantasies.draws[0].count
        let samples = fantasies.fronts.count
        let first = models[0].conditioned(features, count: m, on: fantasies.draws[0])
        let second = models[1].conditioned(features, count: m, on: fantasies.draws[1])
        var result = [Double](repeating: -.infinity, count: m)
        var terms = [Double](repeating: 0, count: fantasies.fronts.map(\.xs.count).max() ?? 0)
        var perDraw = [Double](repeating: 0, count: samples)
        let z1 = fantasies.draws[0].normals
        let z2 = fantasies.draws[1].normals
        for index in 0..<m {
            var largest = -Double.infinity
            for s in 0..<samples {
                var mean1 = first.mean[index]
                var mean2 = second.mean[index]
                for l in 0..<k {
                    mean1 += first.loadings[index * k + l] * z1[s * k + l]
                    mean2 += second.loadings[index * k + l] * z2[s * k + l]
                }
                let value = fantasies.fronts[s].logImprovement(
                    mean1: mean1, variance1: first.variance[index], mean2: mean2, variance2: second.variance[index],
                    terms: &terms)
                perDraw[s] = value
                largest = max(largest, value)
            }
            result[index] = logMeanExp(perDraw, largest: largest)
        }
        return result
    }

    /// Adds a running or chosen point to each objective's model as the Kriging believer would, and its
    /// predicted losses to the front, so the next member of a batch looks elsewhere; with `fantasize`, keeps it
    /// among the pending points whose outcomes ``sampleFantasies(samples:generator:)`` draws instead, with its
    /// probability of being feasible.
    mutating func believe(_ features: [Double], fantasize: Bool = false, feasibility: Double = 1) {
        if fantasize {
            pending += features
            pendingFeasibility.append(feasibility)
            fantasies = nil
            return
        }
        var predicted: [Double] = []
        for index in models.indices {
            var model = models[index]
            let mean = model.predictMean(features, count: 1)[0]
            predicted.append(mean)
            try? model.add(point: features, output: mean)
            models[index] = model
        }
        front = ParetoModel.nonDominated(front + [predicted])
    }

    /// Draws the pending points' losses from each objective's posterior (`samples` joint draws, the objectives
    /// independent), once per set of pending points, and the front each draw leaves: the measured front with the
    /// draw's outcomes added (q-EHVI's per-sample baseline, as BoTorch and Optuna's GPSampler take it), each
    /// pending point's only where a draw of its feasibility says it ran and met the constraints. Where a
    /// posterior cannot be factored, the pending points are believed instead.
    mutating func sampleFantasies(samples: Int, generator: inout SeededGenerator) {
        guard fantasies == nil, !pending.isEmpty else { return }
        let dimension = models[0].dimension
        let k = pending.count / dimension
        var draws: [PendingFantasies] = []
        for model in models {
            guard
                let draw = model.fantasies(
                    of: pending, count: k, best: .infinity, samples: samples, generator: &generator)
            else { break }
            draws.append(draw)
        }
        guard draws.count == models.count else {
            let points = pending
            pending = []
            pendingFeasibility = []
            for index in 0..<k { believe(Array(points[(index * dimension)..<((index + 1) * dimension)])) }
            return
        }
        var fronts: [Strips] = []
        for s in 0..<samples {
            let feasible = (0..<k).filter { j in
                pendingFeasibility[j] >= 1 || generator.nextUnit() < pendingFeasibility[j]
            }
            let drawn = feasible.map { j in draws.map { $0.outcomes[s * k + j] } }
            fronts.append(Strips(front: ParetoModel.nonDominated(front + drawn), reference: reference))
        }
        fantasies = (draws, fronts)
    }

    /// The points no other dominates (smaller is better on each coordinate), sorted by the first coordinate.
    static func nonDominated(_ points: [[Double]]) -> [[Double]] {
        nonDominatedIndices(points).map { points[$0] }.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// The indices of the points no other dominates, in their order.
    static func nonDominatedIndices(_ points: [[Double]]) -> [Int] {
        points.indices.filter { index in !points.contains { dominates($0, points[index]) } }
    }

    /// Whether loss vector `a` dominates `b`: no larger anywhere and smaller somewhere.
    static func dominates(_ a: [Double], _ b: [Double]) -> Bool {
        zip(a, b).allSatisfy { $0 <= $1 } && zip(a, b).contains { $0 < $1 }
    }
}

extension BayesianOptimization {
    /// The objectives as losses wherever the trial measured them all, also when a hard constraint failed it.
    func goalLosses(_ trial: Trial) -> [Double]? {
        guard objective.isMultiObjective, let values = objective.values(trial.metrics) else { return nil }
        return zip(objective.goals, values).map { $0.loss($1) }
    }

    /// The reference point in losses: where a hard constraint bounds an objective's metric on its worse side (an
    /// SLO on a latency that is minimised, a floor on a throughput that is maximised), the bound; otherwise the
    /// worst loss measured plus a tenth of the range, as Optuna and BoTorch take it from the data.
    ///
    /// `losses` are every measured vector, those of trials that broke a hard constraint included (Optuna's
    /// GPSampler takes every completed trial too). From the feasible ones alone, a study whose early trials
    /// mostly broke the constraints had its reference just past the front's own end: a point extending the front
    /// then added only a slab a tenth of the range wide, and the front crept outward a step per trial (SRN: the
    /// last ten trials of a study each 3% further along the constraint, half the front never reached). The
    /// infeasible trials measured how far the objectives reach; the hypervolume still counts feasible points
    /// only.
    func referenceLosses(_ losses: [[Double]]) -> [Double] {
        objective.goals.enumerated().map { index, goal in
            if goal.terms.count == 1, goal.terms[0].weight == 1 {
                let metric = goal.terms[0].metric
                for constraint in objective.hardConstraints where constraint.metric == metric {
                    if goal.direction == .minimize, let maximum = constraint.maximum { return maximum }
                    if goal.direction == .maximize, let minimum = constraint.minimum { return -minimum }
                }
            }
            let column = losses.map { $0[index] }
            let low = column.min() ?? 0
            let high = column.max() ?? 1
            return high + 0.1 * max(high - low, 1e-9 * max(1, abs(high)))
        }
    }

    /// The two-objective models: a GP per objective on every measured vector, the feasible front and the
    /// reference on the models' scales; `nil` with fewer than two measurements.
    mutating func fitPareto() -> ParetoModel? {
        let measured = state.observations.compactMap { observation in
            observation.goalLosses.map { (observation, $0) }
        }
        guard measured.count >= 2 else { return nil }
        let fitted = FitSubset.indices(
            count: measured.count,
            preferring: FitSubset.front(measured.map(\.1)) + FitSubset.latest(count: measured.count)
        ).map { measured[$0] }
        var hyperparameters = state.goalHyperparameters ?? []
        var fittedCounts = state.goalFittedCounts ?? []
        var models: [GaussianProcess] = []
        var scales: [LossScale] = []
        for index in objective.goals.indices {
            if hyperparameters.count <= index { hyperparameters.append(nil) }
            if fittedCounts.count <= index { fittedCounts.append(0) }
            guard
                let (model, scale) = fitLossModel(
                    fitted.map(\.0.configuration), fitted.map { $0.1[index] }, observed: measured.count,
                    hyperparameters: &hyperparameters[index], fittedCount: &fittedCounts[index])
            else { return nil }
            models.append(model)
            scales.append(scale)
        }
        state.goalHyperparameters = hyperparameters
        state.goalFittedCounts = fittedCounts
        let feasible = measured.filter { $0.0.loss != nil }.map { pair in
            pair.1.indices.map { scales[$0].apply(pair.1[$0]) }
        }
        let reference = referenceLosses(measured.map(\.1))
        return ParetoModel(
            models: models, front: ParetoModel.nonDominated(feasible),
            reference: reference.indices.map { scales[$0].apply(reference[$0]) })
    }

    /// Augmented Chebyshev scalarisations for three or more objectives (ParEGO, Knowles 2006): each loss
    /// normalised to [0, 1] over the measurements, `max_j w_j ŷ_j + 0.05 Σ_j w_j ŷ_j` with weights drawn
    /// uniformly from the simplex, fresh for every ask, so successive proposals aim at different parts of the
    /// front.
    mutating func chebyshevLosses() -> [Int: Double] {
        let measured = state.observations.indices.compactMap { index in
            state.observations[index].goalLosses.map { (index, $0) }
        }
        guard let count = measured.first?.1.count else { return [:] }
        let exponentials = (0..<count).map { _ in -log(max(state.generator.nextUnit(), 1e-300)) }
        let total = exponentials.reduce(0, +)
        let weights = exponentials.map { $0 / total }
        let lows = (0..<count).map { j in measured.map { $0.1[j] }.min()! }
        let highs = (0..<count).map { j in measured.map { $0.1[j] }.max()! }
        var result: [Int: Double] = [:]
        for (index, losses) in measured {
            let normalised = (0..<count).map { j in (losses[j] - lows[j]) / max(highs[j] - lows[j], 1e-12) }
            let weighted = zip(weights, normalised).map { $0 * $1 }
            result[index] = weighted.max()! + 0.05 * weighted.reduce(0, +)
        }
        return result
    }
}
