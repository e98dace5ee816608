import Foundation

/// Gaussian-process Bayesian optimisation: a Sobol initial design, then each proposal maximises log expected
/// improvement under a Matérn-5/2 GP whose hyperparameters are refitted (MAP, warm-started) at every ask.
///
/// Several proposals at once, and proposals while trials run, use the Kriging believer: each running or
/// already chosen point is added to the model as if it had returned the model's own prediction, which
/// collapses the improvement near it, so a batch spreads out (`pending: liar` adds the worst observed
/// value instead, a more pessimistic and more exploratory choice). Failed trials enter the model at the
/// objective's finite penalty, worse than every success. The whole state (observations, hyperparameters,
/// sequence positions, random generator) is checkpointed, so a resumed study proposes exactly what an
/// uninterrupted one would.
public struct BayesianOptimization: Strategy {
    /// How running trials and batch-mates are treated while proposing.
    public enum PendingMode: String, Sendable, Hashable, Codable {
        /// Pretend they return the posterior mean.
        case believer
        /// Pretend they return the worst value seen.
        case liar
    }

    /// Settings from the task file.
    public struct Settings: Sendable, Hashable, Codable {
        /// Sobol points before the model takes over.
        public var initialPoints: Int
        /// Quasi-random candidates scored per proposal.
        public var candidates: Int
        /// The pending-point treatment.
        public var pending: PendingMode
    }

    /// One told trial.
    public struct Observation: Sendable, Hashable, Codable {
        /// What was tried.
        public var configuration: Configuration
        /// Its score turned into a loss (smaller is better), or `nil` when it failed.
        public var loss: Double?
    }

    /// Everything needed to continue exactly.
    public struct State: Sendable, Hashable, Codable {
        /// The settings.
        public var settings: Settings
        /// Every told trial, in order.
        public var observations: [Observation]
        /// The last fitted hyperparameters, the next fit's starting point.
        public var hyperparameters: GPHyperparameters?
        /// The number of observations the hyperparameters were last fitted to.
        public var fittedCount: Int
        /// The initial design's sequence.
        public var design: SobolSequence
        /// Seeds each ask's candidate set and local search.
        public var generator: SeededGenerator
        /// Set when a finite space has no untried point.
        public var exhausted: Bool
    }

    /// The option names the task file may give.
    public static let options: Set<String> = ["initial_points", "candidates", "pending"]

    /// The current state.
    public private(set) var state: State
    private let space: SearchSpace
    private let objective: Objective
    private let encoder: FeatureEncoder
    private let refinementLeaders = 8
    private let refinementSamples = 24

    /// Creates the strategy or restores it from `state`.
    public init(context: StrategyContext, state: State? = nil) throws(StrategyError) {
        try context.rejectUnknownOptions(Self.options, strategy: "bayesian")
        let dimension = context.space.dimension
        guard dimension >= 1 else { throw StrategyError("bayesian search needs at least one searched parameter") }
        guard dimension < SobolSequence.maximumDimension else {
            throw StrategyError(
                "bayesian search supports up to \(SobolSequence.maximumDimension - 1) searched parameters")
        }
        let settings = Settings(
            initialPoints: try context.intOption(
                "initial_points", default: min(20, max(5, dimension + 2)), in: 1...1000),
            candidates: try context.intOption("candidates", default: 2048, in: 16...100_000),
            pending: PendingMode(
                rawValue: try context.choiceOption("pending", default: "believer", choices: ["believer", "liar"])
            )!
        )
        space = context.space
        objective = context.objective
        encoder = FeatureEncoder(space: context.space)
        self.state =
            state
            ?? State(
                settings: settings,
                observations: [],
                hyperparameters: nil,
                fittedCount: 0,
                design: SobolSequence(dimension: dimension, seed: context.seed),
                generator: SeededGenerator(seed: context.seed &+ 0x9E37_79B9),
                exhausted: false
            )
    }

    /// Records a finished trial.
    public mutating func tell(_ trial: Trial) throws {
        let loss = trial.state == .completed ? trial.score.map { objective.direction == .maximize ? -$0 : $0 } : nil
        state.observations.append(Observation(configuration: trial.configuration, loss: loss))
    }

    /// True once a finite space has no untried point.
    public var isExhausted: Bool { state.exhausted }

    /// Up to `count` proposals: Sobol points until the initial design is done, then log-EI maximisers.
    public mutating func ask(_ count: Int, history: StudyHistory) throws -> [Configuration] {
        guard !state.exhausted, count > 0 else { return [] }
        if let cardinality = space.cardinality, history.count >= cardinality {
            state.exhausted = true
            return []
        }
        var batch: [Configuration] = []
        let pending = history.runningTrials.map(\.configuration)
        let known = state.observations.count + pending.count
        while batch.count < count, known + batch.count < state.settings.initialPoints {
            guard let next = nextDesignPoint(history: history, batch: batch) else { break }
            batch.append(next)
        }
        guard batch.count < count else { return batch }
        let successes = state.observations.compactMap(\.loss)
        guard successes.count >= 2 else {
            // Nothing to model yet (all failed so far): keep exploring with the design.
            while batch.count < count, let next = nextDesignPoint(history: history, batch: batch) { batch.append(next) }
            return batch
        }
        let fitted = fitModel()
        guard var model = fitted else {
            while batch.count < count, let next = nextDesignPoint(history: history, batch: batch) { batch.append(next) }
            return batch
        }
        let best = model.outputs.min() ?? 0
        let worst = model.outputs.max() ?? 0
        for configuration in pending + batch {
            try? fantasize(configuration, into: &model, worst: worst)
        }
        var avoid = (pending + batch).map { try? space.unitPoint(of: $0) }.compactMap { $0 }
        while batch.count < count {
            guard
                let proposal = maximizeAcquisition(
                    model: model, best: best, history: history, batch: batch, avoid: avoid)
            else {
                if space.cardinality != nil, batch.isEmpty { state.exhausted = true }
                break
            }
            batch.append(proposal)
            if let point = try? space.unitPoint(of: proposal) { avoid.append(point) }
            try? fantasize(proposal, into: &model, worst: worst)
        }
        return batch
    }

    // MARK: - Model

    /// Fits a GP to the observations (failures at the penalty), outputs standardised.
    private mutating func fitModel() -> GaussianProcess? {
        let scores = state.observations.compactMap(\.loss)
        let penalty = Objective.minimize("loss").penaltyScore(successes: scores)
        let losses = state.observations.map { $0.loss ?? penalty }
        let mean = losses.reduce(0, +) / Double(losses.count)
        let spread = (losses.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(losses.count)).squareRoot()
        let scale = spread > 0 ? spread : 1
        let outputs = losses.map { ($0 - mean) / scale }
        let inputs = encoder.encode(state.observations.map(\.configuration))
        let n = outputs.count
        // A fit costs O(n³) per step. Early on every observation changes the picture; later, hyperparameters
        // fitted to 90% of the data are as good, so refit when the data grew by a tenth and otherwise only
        // refactor with the last ones.
        if let hyperparameters = state.hyperparameters, n > 60, n < state.fittedCount + max(1, state.fittedCount / 10),
            let model = try? GaussianProcess(
                inputs: inputs,
                outputs: outputs,
                dimension: encoder.dimension,
                hyperparameters: hyperparameters
            )
        {
            return model
        }
        guard
            let model = GaussianProcess.fit(
                inputs: inputs,
                outputs: outputs,
                dimension: encoder.dimension,
                start: state.hyperparameters,
                maxIterations: n <= 100 ? 60 : 25
            )
        else { return nil }
        state.hyperparameters = model.hyperparameters
        state.fittedCount = n
        return model
    }

    private func fantasize(_ configuration: Configuration, into model: inout GaussianProcess, worst: Double) throws {
        var features: [Double] = []
        encoder.encode(configuration, into: &features)
        let value: Double
        switch state.settings.pending {
        case .believer: value = model.predict(features, count: 1).mean[0]
        case .liar: value = worst
        }
        try model.add(point: features, output: value)
    }

    // MARK: - Acquisition

    /// The candidate with the highest log EI that is new to the study and not within 1e-3 of a running or
    /// chosen point.
    private mutating func maximizeAcquisition(
        model: GaussianProcess,
        best: Double,
        history: StudyHistory,
        batch: [Configuration],
        avoid: [[Double]]
    ) -> Configuration? {
        let dimension = space.dimension
        // Scoring m candidates costs O(n² m): with many observations the model is well informed and the
        // local refinement does the rest, so the quasi-random set shrinks as n grows.
        let n = model.count
        let candidates = n <= 100 ? state.settings.candidates : max(256, state.settings.candidates * 100 / n)
        let leaderCount = n <= 100 ? refinementLeaders : refinementLeaders / 2
        var sobol = SobolSequence(dimension: dimension, seed: state.generator.next())
        var points: [[Double]] = (0..<candidates).map { _ in sobol.next() }
        // Around the best observations too: improvement is often a small step from the incumbent.
        let incumbents = state.observations.filter { $0.loss != nil }.sorted { $0.loss! < $1.loss! }.prefix(5)
        for incumbent in incumbents {
            guard let centre = try? space.unitPoint(of: incumbent.configuration) else { continue }
            for _ in 0..<(candidates / 16) {
                points.append(perturb(centre, radius: 0.05))
            }
        }
        var scored = score(points, model: model, best: best)
        // Local refinement of the leaders: a (1+λ) evolution strategy whose step halves when a round finds
        // nothing better, from a tenth of the cube down to a thousandth.
        let leaders = scored.sorted { $0.value > $1.value }.prefix(leaderCount)
        // Each polish step reads the whole factor a few times: with many observations, polish fewer.
        let polished = n <= 100 ? leaderCount : 2
        for (rank, leader) in leaders.enumerated() {
            var centre = leader.point
            var centreValue = leader.value
            var radius = 0.1
            var rounds = 0
            while radius >= 0.01, rounds < (n <= 100 ? 40 : 6) {
                rounds += 1
                let local = (0..<refinementSamples).map { _ in perturb(centre, radius: radius) }
                let improved = score(local, model: model, best: best).max { $0.value < $1.value }
                if let improved, improved.value > centreValue {
                    centre = improved.point
                    centreValue = improved.value
                } else {
                    radius /= 2
                }
            }
            scored.append(
                rank < polished
                    ? polish(centre, value: centreValue, model: model, best: best, iterations: n <= 100 ? 20 : 12)
                    : (centre, centreValue)
            )
        }
        var seen: Set<Configuration> = []
        for candidate in scored.sorted(by: { $0.value > $1.value }) {
            let configuration = space.configuration(atUnit: candidate.point)
            guard seen.insert(configuration).inserted else { continue }
            if history.contains(configuration) || batch.contains(configuration) { continue }
            guard let unit = try? space.unitPoint(of: configuration) else { continue }
            if avoid.contains(where: { other in zip(other, unit).allSatisfy { abs($0 - $1) <= 1e-3 } }) { continue }
            return configuration
        }
        return nil
    }

    /// Climbs log EI from `start` with L-BFGS on its analytic gradient, moving only the float coordinates
    /// (discrete ones are piecewise constant, and the search above already chose them).
    private func polish(
        _ start: [Double],
        value: Double,
        model: GaussianProcess,
        best: Double,
        iterations: Int
    ) -> (point: [Double], value: Double) {
        let continuous = encoder.continuousFeatures
        guard continuous.contains(where: { $0 != nil }) else { return (start, value) }
        let bounds = zip(start, continuous).map { coordinate, feature in
            feature == nil ? coordinate...coordinate : 0.0...1.0
        }
        let result = LBFGS.minimize(from: start, bounds: bounds, maxIterations: iterations, tolerance: 1e-7) { point in
            var features: [Double] = []
            encoder.encode(unit: point, into: &features)
            let (logEI, gradient) = model.logExpectedImprovementWithGradient(features, best: best)
            let unitGradient = continuous.map { feature in feature.map { -gradient[$0] } ?? 0 }
            return (logEI.isFinite ? -logEI : .infinity, unitGradient)
        }
        return -result.value > value ? (result.point, -result.value) : (start, value)
    }

    private func score(_ points: [[Double]], model: GaussianProcess, best: Double) -> [(point: [Double], value: Double)]
    {
        var features: [Double] = []
        features.reserveCapacity(points.count * encoder.dimension)
        for point in points { encoder.encode(unit: point, into: &features) }
        let (mean, variance) = model.predict(features, count: points.count)
        return points.indices.map { index in
            (points[index], logExpectedImprovement(mean: mean[index], variance: variance[index], best: best))
        }
    }

    private mutating func perturb(_ centre: [Double], radius: Double) -> [Double] {
        centre.map { coordinate in
            // Box–Muller from the checkpointed generator, so refinement is reproducible.
            let u1 = max(state.generator.nextUnit(), 1e-300)
            let u2 = state.generator.nextUnit()
            let normal = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
            return min(max(coordinate + radius * normal, 0), 1)
        }
    }

    /// The next Sobol point whose configuration is new to the study.
    private mutating func nextDesignPoint(history: StudyHistory, batch: [Configuration]) -> Configuration? {
        for _ in 0..<256 {
            let configuration = space.configuration(atUnit: state.design.next())
            if !history.contains(configuration), !batch.contains(configuration) { return configuration }
        }
        return nil
    }
}
