import Foundation

/// Gaussian-process Bayesian optimisation that learns where configurations fail: a Sobol initial design, then
/// each proposal maximises
///
///     log EI(objective) + Σ log P(constraint holds) + log P(runs)
///
/// - the objective's GP (Matérn-5/2, MAP hyperparameters, warm-started) is fitted to every trial whose objective
///   was measured, those that broke an SLO included, and log EI is taken over the feasible incumbents;
/// - each hard constraint's metric (`ttft_ms_p99 <= 5000`) has a GP of its own, fitted to its measured values,
///   violations included: the measured value, not a penalty;
/// - trials that produced no metrics because of their configuration (failed at run, deploy, ready, benchmark,
///   timeout) train a GP classifier of the crash region (``CrashModel``); failures that are not the
///   configuration's fault (resources, lost, interrupted) are left out of every model;
/// - with no feasible trial yet, the proposal maximises the probability of feasibility alone.
///
/// Known constraints between parameters are never proposed, and conditional parameters are inactive, not
/// invented. Several proposals at once, and proposals while trials run, use the Kriging believer in every
/// model: each running or already chosen point is added as if it returned the model's prediction, so a batch
/// spreads over the feasible region (`pending: liar` adds the worst observed value to the objective instead).
/// The whole state is checkpointed, so a resumed study proposes exactly what an uninterrupted one would.
public struct BayesianOptimization: Strategy {
    /// How running trials and batch-mates are treated while proposing.
    public enum PendingMode: String, Sendable, Hashable, Codable {
        /// Pretend they return the posterior mean.
        case believer
        /// Pretend they return the worst value seen.
        case liar
        /// Average the acquisition over draws of their joint posterior (the marginal gain of q-EI).
        case fantasies
        /// Penalise the acquisition near each pending point, over a radius that grows with how much worse than
        /// the best the model expects it to be (local penalisation, González et al. 2016).
        case penalize
        /// While trials run, each proposal is the best point of one draw of the objective's posterior (given what
        /// finished) among candidates the feasibility models accept: asynchronous Thompson sampling (Kandasamy
        /// et al. 2018); with nothing running, log EI as always.
        case thompson
        /// The believer, with every fourth proposal made while trials run a Thompson draw of the believed
        /// objective: a portfolio of exploitation and sampled exploration.
        case hedge
    }

    /// Settings from the task file.
    public struct Settings: Sendable, Hashable, Codable {
        /// Sobol points before the model takes over.
        public var initialPoints: Int
        /// Quasi-random candidates scored per proposal.
        public var candidates: Int
        /// The pending-point treatment.
        public var pending: PendingMode
        /// How several objectives are searched; `nil` in checkpoints from before they existed (the default).
        public var pareto: ParetoMode?
        /// What a stalled search does; `nil` in checkpoints from before it existed (``StallMode/off``).
        public var stalled: StallMode?
        /// How many running trials one neighbourhood may hold; `nil` in checkpoints from before it existed
        /// (``CrowdingMode/off``).
        public var crowding: CrowdingMode?
        /// What a proposal made while trials run must improve on; `nil` in checkpoints from before it existed
        /// (``IncumbentMode/measured``).
        public var incumbent: IncumbentMode?
        /// When the model takes over from the initial design; `nil` in checkpoints from before it existed
        /// (``DesignMode/started``).
        public var design: DesignMode?
        /// How near (in every unit-cube coordinate) a running or chosen trial a proposal may not be; `nil` in
        /// checkpoints from before it was set (``legacyDuplicateRadius``), ``duplicateRadius`` since.
        public var duplicateRadius: Double?
    }

    /// When the model takes over from the Sobol initial design. Sequentially both modes are the same: a trial
    /// is proposed only once the one before it has finished.
    public enum DesignMode: String, Sendable, Hashable, Codable {
        /// Once ``Settings/initialPoints`` trials have been proposed (the default with one objective, and what
        /// checkpoints from before the mode existed resume with): at parallel 8 the ninth trial is proposed from
        /// a model of the one or two that finished.
        case started
        /// Once ``Settings/initialPoints`` trials have finished: until then every freed slot gets the next Sobol
        /// point, as Optuna's GPSampler samples at random until its startup trials have completed. A model of two
        /// measurements and seven believed running trials knows little; with two objectives, proposals from it
        /// left a quarter of BraninCurrin's studies at parallel 4 at 0.90 of the true hypervolume
        /// (docs/benchmarks.md, "Several objectives"). The default with several objectives; with one it moved the
        /// time to target both ways.
        case finished
    }

    /// What a proposal made while trials run (or a later member of a batch) must improve on.
    public enum IncumbentMode: String, Sendable, Hashable, Codable {
        /// The best measured feasible loss, whatever the running trials are believed to return (the default with
        /// hard constraints, and what checkpoints from before the mode existed resume with).
        case measured
        /// The best of that and the believed losses of running and chosen trials that the models expect to run
        /// and meet the constraints (at least even odds): the Kriging believer's own incumbent (Ginsbourger,
        /// Le Riche and Carraro 2010). Against the measured best, a running trial believed to improve on it keeps
        /// an expected improvement of `best − μ` right beside it after its variance is believed away, so the next
        /// slot lands next to it; against the believed best, only a point expected to beat that trial gains. The
        /// default without hard constraints; with them it moved a study's time to target both ways, and
        /// ``measured`` stays the default there (docs/benchmarks.md, "Time to target").
        case believed
    }

    /// Whether proposals made while trials run may gather in one neighbourhood.
    ///
    /// With several trials running, a model confident in one optimum puts most of them next to it (the believer
    /// shrinks its variance there, not its mean): seven of eight slots can sit on a local optimum whose top the
    /// study already knows, while the region that holds the true optimum gets none. Sequentially nothing is
    /// running and both modes propose the same.
    public enum CrowdingMode: String, Sendable, Hashable, Codable {
        /// Only a proposal within ``duplicateRadius`` of a running one is skipped: the default with several
        /// objectives, and what checkpoints from before the mode existed resume with.
        case off
        /// A proposal is skipped when two running or chosen trials already lie within ``crowdingRadius`` of it
        /// in every coordinate: each neighbourhood refines with at most two slots, the rest go where the
        /// acquisition is next best elsewhere (the default with one objective; docs/benchmarks.md measures both).
        /// With several objectives the default is ``off``: the acquisition already sends each running trial to a
        /// different part of the front (a believed trial's predicted losses join the front the next one must
        /// improve), and the rule only kept slots from refining a compact front.
        case spread
    }

    /// What the search does once it has stopped improving (``BayesianOptimization/stallLength(parallel:)``
    /// finished trials since its best): a model confident in a local optimum proposes next to it for ever, since
    /// every acquisition function reads the same model.
    public enum StallMode: String, Sendable, Hashable, Codable {
        /// Nothing: every proposal maximises the acquisition.
        case off
        /// Every third proposal while stalled is the point farthest from every tried and running one among those
        /// the feasibility models expect to run and meet the constraints (at least even odds): a model-free step
        /// into the largest unexplored region, which a confident model would never choose.
        case explore
        /// While stalled, three proposals in four (all but every ``stalledRefinementPeriod``-th trial) read the
        /// objective's model with its length scales shortened to ``stalledLengthScaleFactor`` of the fitted
        /// ones: the fit, made mostly of measurements on the local optimum's broad slopes, is too sure of what
        /// lies between them, and a shorter length scale gives the gaps between measurements back their
        /// uncertainty (Berkenkamp, Schoellig and Krause, JMLR 2019, shrink length scales for the same reason).
        /// Studies with hard constraints defaulted to it before ``boundary``; docs/benchmarks.md measures what it
        /// costs elsewhere.
        case shrink
        /// ``shrink``, and while the best feasible trial lies well inside every hard constraint, two proposals in
        /// every ``stalledRefinementPeriod`` (``boundaryTurns``) look only along the constraints' boundary: among
        /// the candidates the constraint models expect to hold, the ``boundaryShare`` nearest a bound. A serving
        /// study's optimum usually sits on an SLO, throughput rising until latency breaks it, so a best far inside
        /// the SLO is the trap's sign, and the boundary has one dimension fewer to look through than the space.
        /// The default for studies with hard constraints (docs/benchmarks.md, "A stalled search far inside its SLO").
        case boundary
    }

    /// The acquisition of a study of several objectives.
    public enum ParetoMode: String, Sendable, Hashable, Codable {
        /// Exact expected hypervolume improvement for two objectives; Chebyshev scalarisations beyond.
        case hypervolume
        /// Random augmented Chebyshev scalarisations, one per ask (ParEGO), for any number of objectives.
        case chebyshev
    }

    /// One told trial.
    public struct Observation: Sendable, Hashable, Codable {
        /// What was tried.
        public var configuration: Configuration
        /// Its score turned into a loss (smaller is better), or `nil` when it failed.
        public var loss: Double?
        /// The objective as a loss wherever it was measured, also when a hard constraint failed the trial.
        public var modelLoss: Double?
        /// Each hard constraint's metric, where it was measured.
        public var constraintValues: [Double?]?
        /// Whether it ran (`true`), crashed because of its configuration (`false`), or failed for a reason that
        /// says nothing about the configuration (`nil`).
        public var ran: Bool?
        /// With several objectives, each as a loss, wherever all were measured.
        public var goalLosses: [Double]?
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
        /// Each hard constraint's GP hyperparameters, last fitted.
        public var constraintHyperparameters: [GPHyperparameters?]?
        /// The number of measurements each hard constraint's hyperparameters were fitted to.
        public var constraintFittedCounts: [Int]?
        /// The crash classifier's hyperparameters, last chosen, and the number of labels they were chosen on.
        public var crashHyperparameters: GPHyperparameters?
        /// The number of labelled trials the crash classifier's hyperparameters were chosen on.
        public var crashFittedCount: Int?
        /// With two objectives, each one's GP hyperparameters, last fitted.
        public var goalHyperparameters: [GPHyperparameters?]?
        /// The number of observations each objective's hyperparameters were fitted to.
        public var goalFittedCounts: [Int]?
    }

    /// The option names the task file may give.
    public static let options: Set<String> = [
        "initial_points", "candidates", "pending", "pareto", "stalled", "crowding", "incumbent", "design",
    ]

    /// The current state.
    public internal(set) var state: State
    private let space: SearchSpace
    let objective: Objective
    private let constants: [String: Double]
    let encoder: FeatureEncoder
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
                rawValue: try context.choiceOption(
                    "pending", default: "believer",
                    choices: ["believer", "liar", "fantasies", "penalize", "thompson", "hedge"])
            )!,
            pareto: ParetoMode(
                rawValue: try context.choiceOption(
                    "pareto", default: "hypervolume", choices: ["hypervolume", "chebyshev"])),
            stalled: StallMode(
                rawValue: try context.choiceOption(
                    "stalled", default: context.objective.hardConstraints.isEmpty ? "off" : "boundary",
                    choices: ["off", "explore", "shrink", "boundary"])),
            crowding: CrowdingMode(
                rawValue: try context.choiceOption(
                    "crowding", default: context.objective.isMultiObjective ? "off" : "spread",
                    choices: ["spread", "off"])),
            incumbent: IncumbentMode(
                rawValue: try context.choiceOption(
                    "incumbent", default: context.objective.hardConstraints.isEmpty ? "believed" : "measured",
                    choices: ["believed", "measured"])),
            design: DesignMode(
                rawValue: try context.choiceOption(
                    "design", default: context.objective.isMultiObjective ? "finished" : "started",
                    choices: ["started", "finished"])),
            duplicateRadius: Self.duplicateRadius
        )
        space = context.space
        objective = context.objective
        constants = context.constants
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

    /// Records a finished trial: its score when it completed, the objective and the constraint metrics wherever
    /// they were measured, and whether it ran.
    public mutating func tell(_ trial: Trial) throws {
        let maximize = objective.direction == .maximize
        let toLoss = { (score: Double) in maximize ? -score : score }
        let loss = trial.state == .completed ? trial.score.map(toLoss) : nil
        let modelLoss = loss ?? objective.modelScore(trial.metrics).map(toLoss)
        let ran: Bool? =
            modelLoss != nil ? true : trial.error.map { $0.stage.isConfigurationFault ? false : nil } ?? nil
        state.observations.append(
            Observation(
                configuration: trial.configuration, loss: loss, modelLoss: modelLoss,
                constraintValues: objective.hardConstraints.map { trial.metrics[$0.metric] }, ran: ran,
                goalLosses: goalLosses(trial)))
    }

    /// True once a finite space has no untried point.
    public var isExhausted: Bool { state.exhausted }

    /// Up to `count` proposals: Sobol points until the initial design is done, then maximisers of the
    /// constrained acquisition.
    public mutating func ask(_ count: Int, history: StudyHistory) throws -> [Configuration] {
        guard !state.exhausted, count > 0 else { return [] }
        if let cardinality = space.cardinality, history.count >= cardinality {
            state.exhausted = true
            return []
        }
        var batch: [Configuration] = []
        let pending = history.runningTrials.map(\.configuration)
        let known = state.observations.count + pending.count
        let waitsForDesign = state.settings.design == .finished
        while batch.count < count,
            (waitsForDesign ? state.observations.count : known + batch.count) < state.settings.initialPoints
        {
            guard let next = nextDesignPoint(history: history, batch: batch) else { break }
            batch.append(next)
        }
        guard batch.count < count else { return batch }
        var models = fitModels()
        guard models.hasObjective || models.crash != nil else {
            // Nothing to model yet (all failed so far, for reasons that are not the configuration's): keep
            // exploring with the design.
            while batch.count < count, let next = nextDesignPoint(history: history, batch: batch) { batch.append(next) }
            return batch
        }
        // The observations do not change within an ask: one count serves every proposal of the batch.
        let stalled = models.pareto == nil && stalledFor >= Self.stallLength(parallel: pending.count + 1)
        if state.settings.stalled == .shrink || state.settings.stalled == .boundary, stalled,
            !known.isMultiple(of: Self.stalledRefinementPeriod)
        {
            models.objective = models.objective?.withLengthScales(scaledBy: Self.stalledLengthScaleFactor)
        }
        var avoid = (pending + batch).map { try? space.unitPoint(of: $0) }.compactMap { $0 }
        for configuration in pending + batch {
            models.believe(features(of: configuration), pending: state.settings.pending)
        }
        while batch.count < count {
            guard models.hasObjective || models.hasFeasibilityModel else {
                // Only crashes so far, no model of the objective: the design goes on, skipping what the crash
                // model expects to fail.
                guard let next = nextDesignPoint(history: history, batch: batch, models: models) else { break }
                batch.append(next)
                models.believe(features(of: next), pending: state.settings.pending)
                continue
            }
            models.sampleFantasies(
                generator: &state.generator, mode: state.settings.pending,
                probe: encoder.encode(state.observations.map(\.configuration)))
            let sampling: Bool
            switch state.settings.pending {
            case .thompson: sampling = !models.pending.isEmpty
            case .hedge: sampling = !(pending + batch).isEmpty && (known + batch.count) % 4 == 3
            default: sampling = false
            }
            let sampled =
                sampling ? thompsonProposal(models: models, history: history, batch: batch, avoid: avoid) : nil
            let exploring =
                state.settings.stalled == .explore && stalled && (known + batch.count) % 3 == 0
            let explored =
                exploring ? explorationProposal(models: models, history: history, batch: batch, avoid: avoid) : nil
            let boundary =
                state.settings.stalled == .boundary && stalled && !models.constraints.isEmpty
                && Self.boundaryTurns.contains((known + batch.count) % Self.stalledRefinementPeriod)
            guard
                let proposal = sampled ?? explored
                    ?? maximizeAcquisition(
                        models: models, history: history, batch: batch, avoid: avoid, boundary: boundary)
                    // A band whose every candidate was tried or is running leaves the turn to the whole space.
                    ?? (boundary
                        ? maximizeAcquisition(models: models, history: history, batch: batch, avoid: avoid) : nil)
            else {
                if space.cardinality != nil, batch.isEmpty { state.exhausted = true }
                break
            }
            batch.append(proposal)
            if let point = try? space.unitPoint(of: proposal) { avoid.append(point) }
            models.believe(features(of: proposal), pending: state.settings.pending)
        }
        return batch
    }

    /// The share of its fitted length scales the objective's model keeps while a search is stalled
    /// (``StallMode/shrink``). Chosen by measurement on 30 seeds of the four constrained problems
    /// (docs/benchmarks.md): with every fourth trial on the fitted model, 0.5 freed no more stuck studies; on
    /// every proposal, 0.33 and 0.5 freed a few more but cost the refinement of an optimum already found
    /// fifteenfold, and 0.7 left more stuck.
    public static let stalledLengthScaleFactor = 0.6

    /// While stalled (``StallMode/shrink``), every this-many-th trial is proposed by the fitted model: the
    /// optimum the study already holds keeps being refined (without it, Branin-disk's median regret at 50 was
    /// five times larger), and three in four proposals still look between the measurements.
    public static let stalledRefinementPeriod = 4

    /// How many finished trials without a better feasible score make a search stalled: ten, or two rounds of
    /// `parallel` trials when more.
    public static func stallLength(parallel: Int) -> Int { max(10, 2 * parallel) }

    /// The trials told since the best feasible loss last improved by more than a hundredth of the spread of the
    /// feasible losses (all of them before any feasible one): a search creeping up a local optimum by ever smaller
    /// steps has stalled as much as one that found nothing better.
    var stalledFor: Int {
        let losses = state.observations.compactMap(\.loss)
        let step = ((losses.max() ?? 0) - (losses.min() ?? 0)) / 100
        var best = Double.infinity
        var last = -1
        for (index, observation) in state.observations.enumerated() {
            guard let loss = observation.loss else { continue }
            if best == .infinity || loss < best - step { last = index }
            best = min(best, loss)
        }
        return state.observations.count - 1 - last
    }

    /// The candidate farthest (in the unit cube) from every tried, running and chosen point, among quasi-random
    /// candidates the feasibility models give at least even odds of running and meeting the constraints (the
    /// likeliest, when none does): ``StallMode/explore``'s step.
    private mutating func explorationProposal(
        models: Models, history: StudyHistory, batch: [Configuration], avoid: [[Double]]
    ) -> Configuration? {
        var sobol = SobolSequence(dimension: space.dimension, seed: state.generator.next())
        guard let (points, features) = allowed((0..<1024).map { _ in sobol.next() }) else { return nil }
        var feasibility = [Double](repeating: 0, count: points.count)
        models.addFeasibility(features, count: points.count, to: &feasibility)
        let threshold = min(log(0.5), feasibility.max() ?? 0)
        let tried = state.observations.compactMap { try? space.unitPoint(of: $0.configuration) } + avoid
        var best: (index: Int, distance: Double)?
        for index in points.indices where feasibility[index] >= threshold {
            var distance = Double.infinity
            for other in tried {
                var squared = 0.0
                for (a, b) in zip(other, points[index]) { squared += (a - b) * (a - b) }
                distance = min(distance, squared)
            }
            if distance > best?.distance ?? -1 { best = (index, distance) }
        }
        guard let best else { return nil }
        let configuration = space.configuration(atUnit: points[best.index])
        if history.contains(configuration) || batch.contains(configuration) { return nil }
        return configuration
    }

    /// The unit points that meet the space's known constraints, with their features; `nil` when none does.
    private func allowed(_ points: [[Double]]) -> (points: [[Double]], features: [Double])? {
        let kept =
            space.constraints.isEmpty
            ? points : points.filter { space.isFeasible(space.configuration(atUnit: $0), constants: constants) }
        guard !kept.isEmpty else { return nil }
        var features: [Double] = []
        features.reserveCapacity(kept.count * encoder.dimension)
        for point in kept { encodeUnit(point, into: &features) }
        return (kept, features)
    }

    private func features(of configuration: Configuration) -> [Double] {
        var features: [Double] = []
        encoder.encode(configuration, into: &features)
        return features
    }

    // MARK: - Recommendation

    /// The least probability of meeting every hard constraint (and of running) a recommended configuration
    /// should have: a measurement just inside an SLO may be noise.
    public static let recommendationAssurance = 0.9

    /// The measured configuration the models expect best among those they give at least
    /// ``recommendationAssurance`` of meeting every hard constraint (the likeliest to meet them when none
    /// reaches it); `nil` before two measurements or with several objectives (the front is the result).
    ///
    /// A search's best measurement is its luckiest as much as its best: with benchmark noise of a few percent the
    /// top of 50 measurements is high by about two of its standard deviations, and a p99 just under its SLO may
    /// truly be over it. The models pool what nearby configurations measured, and their noise term separates the
    /// configuration's own value from the measurement's.
    public mutating func recommendation() async -> StrategyRecommendation? {
        guard !objective.isMultiObjective else { return nil }
        let measured = state.observations.filter { $0.modelLoss != nil }
        guard measured.count >= 2 else { return nil }
        var unique: [Configuration] = []
        var seen: Set<Configuration> = []
        for observation in measured where seen.insert(observation.configuration).inserted {
            unique.append(observation.configuration)
        }
        let models = fitModels()
        guard let model = models.objective else { return nil }
        let features = encoder.encode(unique)
        let mean = model.predict(features, count: unique.count).mean
        var probabilities = Array(repeating: [Double](), count: unique.count)
        for constraint in models.constraints {
            let (cMean, cVariance) = constraint.model.predict(features, count: unique.count)
            for index in unique.indices {
                probabilities[index].append(
                    exp(
                        Models.logProbability(
                            mean: cMean[index], sigma: cVariance[index].squareRoot(), lower: constraint.lower,
                            upper: constraint.upper)))
            }
        }
        let run = models.crash.map { crash in crash.logProbabilityOfRunning(features, count: unique.count).map(exp) }
        let candidates = unique.indices.map { index in
            StrategyRecommendation(
                configuration: unique[index], measuredScore: nil, constraintProbabilities: probabilities[index],
                runProbability: run?[index])
        }
        let assured = unique.indices.filter { candidates[$0].feasibility >= Self.recommendationAssurance }
        let chosen =
            assured.min { mean[$0] < mean[$1] }
            ?? unique.indices.max { candidates[$0].feasibility < candidates[$1].feasibility }!
        var recommendation = candidates[chosen]
        let losses = measured.compactMap { $0.configuration == unique[chosen] ? $0.modelLoss : nil }
        if let loss = Noise.mean(losses) {
            recommendation.measuredScore = objective.direction == .maximize ? -loss : loss
        }
        return recommendation
    }

    // MARK: - Models

    /// The models an ask scores candidates with.
    struct Models {
        /// The objective's GP on standardised losses, and the best feasible loss on that scale.
        var objective: GaussianProcess?
        var best: Double?
        var worst: Double
        /// Each hard constraint's GP on its standardised metric, with the bounds on that scale.
        var constraints: [(model: GaussianProcess, lower: Double?, upper: Double?)]
        /// The crash classifier, when some trial crashed.
        var crash: CrashModel?
        /// Running and chosen points not added to the objective's model (``PendingMode/fantasies``), row-major.
        var pending: [Double] = []
        /// Draws of the objective at `pending`, once sampled.
        var fantasies: PendingFantasies?
        /// Local penalisation's balls around `pending`: centre, predicted mean and sd, and the model's slope.
        var penalties: (centres: [[Double]], mean: [Double], sigma: [Double], slope: Double)?

        /// With two objectives, their models and front (``objective`` is then `nil`).
        var pareto: ParetoModel?
        /// Whether a believed point the models expect to be feasible lowers ``best`` (``IncumbentMode/believed``).
        var lowersIncumbent = false

        /// Whether any model predicts feasibility (constraints or crashes).
        var hasFeasibilityModel: Bool { !constraints.isEmpty || crash != nil }

        /// Whether some model predicts the objective (or the objectives).
        var hasObjective: Bool { objective != nil || pareto != nil }

        /// Adds a running or chosen point to every model as the Kriging believer (or the liar) would.
        mutating func believe(_ features: [Double], pending mode: PendingMode) {
            // A drawn pending point joins a draw's front only as often as the models expect it to run and meet
            // the constraints, read before it is believed in them.
            let feasibility = mode == .fantasies && pareto != nil ? exp(logFeasibility(at: features)) : 1
            if mode == .fantasies || mode == .penalize || mode == .thompson {
                pending += features
                fantasies = nil
                penalties = nil
            } else if var model = objective {
                let value = mode == .liar ? worst : model.predictMean(features, count: 1)[0]
                if mode != .liar, lowersIncumbent, let current = best, value < current {
                    // Read before the point is believed in the feasibility models, which would make it certain.
                    if logFeasibility(at: features) >= Self.leastProbability { best = value }
                }
                try? model.add(point: features, output: value)
                objective = model
            }
            for index in constraints.indices {
                var model = constraints[index].model
                try? model.add(point: features, output: model.predictMean(features, count: 1)[0])
                constraints[index].model = model
            }
            crash?.believe(features)
            pareto?.believe(features, fantasize: mode == .fantasies, feasibility: feasibility)
        }

        /// Samples the objective at the pending points, when there are some and no current draws.
        mutating func sampleFantasies(generator: inout SeededGenerator, mode: PendingMode, probe: [Double]) {
            if mode == .fantasies, pareto != nil {
                pareto?.sampleFantasies(samples: ParetoModel.fantasySamples, generator: &generator)
                return
            }
            if mode == .penalize {
                guard penalties == nil, !pending.isEmpty, let objective else { return }
                let d = objective.dimension
                let k = pending.count / d
                let (mean, variance) = objective.predict(pending, count: k)
                let slope = max(objective.meanGradientNorms(probe, count: probe.count / d).max() ?? 0, 1e-7)
                penalties = (
                    (0..<k).map { Array(pending[($0 * d)..<(($0 + 1) * d)]) }, mean, variance.map { $0.squareRoot() },
                    slope
                )
                return
            }
            guard mode != .thompson, fantasies == nil, !pending.isEmpty, let objective, let best else { return }
            fantasies = objective.fantasies(
                of: pending, count: pending.count / objective.dimension, best: best, samples: 64,
                generator: &generator)
        }

        /// Below this probability of running, or of a constraint holding (where a model leans towards a crash or
        /// a violation), a candidate is only taken when nothing likelier is left. A classifier's probabilities are
        /// modest near few crashes, and log EI, high where nothing was measured, would otherwise keep sending trials
        /// into a region that crashed every time; an optimum on an SLO's boundary is then approached from its
        /// feasible side. Regions with no data sit at ½ and stay open. Chosen by measurement (docs/benchmarks.md):
        /// against the product alone it cut the trials that broke the SLO on Gramacy's problem from 58% to 17%.
        static let leastProbability = log(0.5)

        /// The objective's part of the acquisition at `m` feature rows: log EI over the feasible incumbents (when
        /// there is one; of the front with two objectives, of the batch over fantasies), 0 before any. With
        /// ``feasibleScore(_:count:objective:)`` added it is a candidate's score; alone it bounds that score
        /// (``CandidateScores``).
        func objectiveScore(_ features: [Double], count m: Int) -> [Double] {
            var total = [Double](repeating: 0, count: m)
            if let pareto, !pareto.front.isEmpty {
                total = pareto.logExpectedImprovement(features, count: m)
            } else if let objective, let fantasies {
                total = objective.logMarginalImprovement(features, count: m, given: fantasies)
            } else if let objective, let best {
                let (mean, variance) = objective.predict(features, count: m)
                for index in 0..<m {
                    total[index] += logExpectedImprovement(mean: mean[index], variance: variance[index], best: best)
                }
                if let penalties {
                    let d = objective.dimension
                    for index in 0..<m {
                        for (j, centre) in penalties.centres.enumerated() {
                            var squared = 0.0
                            for c in 0..<d {
                                let difference = features[index * d + c] - centre[c]
                                squared += difference * difference
                            }
                            let z =
                                (penalties.slope * squared.squareRoot() - (penalties.mean[j] - best))
                                / (2.0.squareRoot() * max(penalties.sigma[j], 1e-9))
                            total[index] += logNormalCDF(z)
                        }
                    }
                }
            }
            return total
        }

        /// The acquisition at `m` feature rows whose ``objectiveScore(_:count:)`` is `objective`: that plus the log
        /// probabilities of every constraint holding and of running. Always finite; candidates a model expects to
        /// crash or to break a constraint rank below all others, by their probability.
        func feasibleScore(_ features: [Double], count m: Int, objective: [Double]) -> [Double] {
            var total = objective
            addFeasibility(features, count: m, to: &total)
            return total.map { $0.isFinite ? $0 : -1e300 }
        }

        /// Adds to each candidate's acquisition the log probabilities of every constraint holding and of
        /// running; one a model expects to crash or to break a constraint drops below all others.
        func addFeasibility(_ features: [Double], count m: Int, to total: inout [Double]) {
            let (holds, runs) = logFeasibilityTerms(features, count: m)
            for logHolds in holds {
                for index in 0..<m {
                    total[index] += logHolds[index] < Self.leastProbability ? -1e6 + logHolds[index] : logHolds[index]
                }
            }
            if let runs {
                for index in 0..<m {
                    total[index] = runs[index] < Self.leastProbability ? -1e6 + runs[index] : total[index] + runs[index]
                }
            }
        }

        /// At `m` feature rows, how far inside its nearest bound the constraint models expect the point to be, in
        /// the standardised units of that constraint's model (negative where a bound is expected broken; infinite
        /// without constraint models).
        func constraintMargins(_ features: [Double], count m: Int) -> [Double] {
            var margins = [Double](repeating: .infinity, count: m)
            for constraint in constraints {
                let mean = constraint.model.predictMean(features, count: m)
                for index in 0..<m {
                    if let upper = constraint.upper { margins[index] = min(margins[index], upper - mean[index]) }
                    if let lower = constraint.lower { margins[index] = min(margins[index], mean[index] - lower) }
                }
            }
            return margins
        }

        /// The log probability that the point at `features` runs and meets every hard constraint (0 without
        /// feasibility models).
        func logFeasibility(at features: [Double]) -> Double {
            guard hasFeasibilityModel else { return 0 }
            let (holds, runs) = logFeasibilityTerms(features, count: 1)
            return holds.reduce(runs?[0] ?? 0) { $0 + $1[0] }
        }

        /// At `m` feature rows, each hard constraint's log probability of holding and the log probability of
        /// running (`nil` without a crash model).
        func logFeasibilityTerms(_ features: [Double], count m: Int) -> (holds: [[Double]], runs: [Double]?) {
            let holds = constraints.map { constraint in
                let (mean, variance) = constraint.model.predict(features, count: m)
                return (0..<m).map { index in
                    Self.logProbability(
                        mean: mean[index], sigma: variance[index].squareRoot(), lower: constraint.lower,
                        upper: constraint.upper)
                }
            }
            return (holds, crash?.logProbabilityOfRunning(features, count: m))
        }

        /// `log P(lower ≤ g ≤ upper)` for `g ~ N(mean, sigma²)`, stable in both tails.
        static func logProbability(mean: Double, sigma: Double, lower: Double?, upper: Double?) -> Double {
            let upperZ = upper.map { ($0 - mean) / sigma } ?? .infinity
            let lowerZ = lower.map { ($0 - mean) / sigma } ?? -.infinity
            switch (lowerZ.isFinite, upperZ.isFinite) {
            case (false, false): return 0
            case (false, true): return logNormalCDF(upperZ)
            case (true, false): return logNormalCDF(-lowerZ)
            case (true, true):
                // log(Φ(b) − Φ(a)) from whichever tail is smaller.
                if lowerZ > 0 {
                    let a = logNormalCDF(-lowerZ)
                    let b = logNormalCDF(-upperZ)
                    return a + log(max(-expm1(b - a), 1e-300))
                }
                let b = logNormalCDF(upperZ)
                let a = logNormalCDF(lowerZ)
                return b + log(max(-expm1(a - b), 1e-300))
            }
        }
    }

    /// Fits every model the observations support.
    mutating func fitModels() -> Models {
        var pareto: ParetoModel?
        var objectiveModel: (model: GaussianProcess, best: Double?, worst: Double)?
        if objective.goals.count == 2, state.settings.pareto != .chebyshev {
            pareto = fitPareto()
        } else if objective.isMultiObjective {
            let scalarised = chebyshevLosses()
            objectiveModel = fitObjective { index, _ in scalarised[index] }
        } else {
            objectiveModel = fitObjective { _, observation in observation.modelLoss ?? observation.loss }
        }
        var constraintModels: [(model: GaussianProcess, lower: Double?, upper: Double?)] = []
        var constraintHyperparameters = state.constraintHyperparameters ?? []
        var constraintFitted = state.constraintFittedCounts ?? []
        for (index, constraint) in objective.hardConstraints.enumerated() {
            if constraintHyperparameters.count <= index { constraintHyperparameters.append(nil) }
            if constraintFitted.count <= index { constraintFitted.append(0) }
            let data = state.observations.compactMap { observation -> (Configuration, Double)? in
                guard let values = observation.constraintValues, index < values.count, let value = values[index],
                    value.isFinite
                else { return nil }
                return (observation.configuration, value)
            }
            let kept = FitSubset.indices(count: data.count, preferring: FitSubset.latest(count: data.count)).map {
                data[$0]
            }
            guard kept.count >= 2,
                let (model, scale) = fitStandardised(
                    kept.map(\.0), kept.map(\.1), observed: data.count,
                    hyperparameters: &constraintHyperparameters[index], fittedCount: &constraintFitted[index])
            else { continue }
            constraintModels.append(
                (model, constraint.minimum.map(scale.apply), constraint.maximum.map(scale.apply)))
        }
        state.constraintHyperparameters = constraintHyperparameters
        state.constraintFittedCounts = constraintFitted
        var models = Models(
            objective: objectiveModel?.model, best: objectiveModel?.best, worst: objectiveModel?.worst ?? 0,
            constraints: constraintModels, crash: fitCrashModel())
        models.pareto = pareto
        models.lowersIncumbent = state.settings.incumbent == .believed
        if models.objective == nil { models.best = nil }
        // A crashed trial says nothing of the objective's value, only that its region was tried: believed at
        // the model's own mean, like a running trial, it takes away the uncertainty that would keep log EI
        // pointing back at it, and moves no prediction. Past the cap, only the latest crashes: each one added
        // costs O(n²), and the crash classifier keeps the rest of them in view.
        let crashed = state.observations.filter { $0.ran == false }.suffix(
            state.observations.count > FitSubset.maximum ? FitSubset.maximum / 4 : .max)
        if var objective = models.objective {
            for observation in crashed {
                let features = features(of: observation.configuration)
                try? objective.add(point: features, output: objective.predictMean(features, count: 1)[0])
            }
            models.objective = objective
        }
        if var pareto = models.pareto {
            for observation in crashed {
                let features = features(of: observation.configuration)
                for index in pareto.models.indices {
                    try? pareto.models[index].add(
                        point: features, output: pareto.models[index].predictMean(features, count: 1)[0])
                }
            }
            models.pareto = pareto
        }
        return models
    }

    /// The objective's GP on every measured loss (`loss(index, observation)`, warped and standardised), with the
    /// best feasible and the worst loss on that scale; `nil` with fewer than two measurements.
    private mutating func fitObjective(loss: (Int, Observation) -> Double?) -> (
        model: GaussianProcess, best: Double?, worst: Double
    )? {
        let measured = state.observations.indices.compactMap { index in
            loss(index, state.observations[index]).map { (state.observations[index], $0) }
        }
        let losses = measured.map(\.1)
        let fitted = FitSubset.indices(
            count: measured.count, preferring: FitSubset.bestAndLatest(losses: losses)
        ).map { measured[$0] }
        var hyperparameters = state.hyperparameters
        var fittedCount = state.fittedCount
        defer {
            state.hyperparameters = hyperparameters
            state.fittedCount = fittedCount
        }
        guard
            let (model, scale) = fitLossModel(
                fitted.map(\.0.configuration), fitted.map(\.1), observed: measured.count,
                hyperparameters: &hyperparameters, fittedCount: &fittedCount)
        else { return nil }
        // Over every measurement, fitted or not: the incumbent EI improves on is the study's best.
        let outputs = losses.map(scale.apply)
        let feasible = measured.indices.filter { measured[$0].0.loss != nil }.map { outputs[$0] }
        return (model, feasible.min(), outputs.max() ?? 0)
    }

    /// A GP on `losses` at `configurations`, carried onto a model scale (``LossScale``), warm-started from
    /// `hyperparameters`; `nil` with fewer than two. `observed` counts the measurements the losses were chosen
    /// from (``FitSubset``), which set when hyperparameters are refitted.
    ///
    /// Losses far from Gaussian (a valley floor next to walls thousands of times higher, as Rosenbrock's or a
    /// latency that explodes past saturation) make a stationary GP spend its fit on the walls: the warp, a
    /// monotone power chosen per fit, keeps the ranking and evens the scale (docs/benchmarks.md). A fit costs
    /// O(n³) per step; early on every observation changes the picture, later hyperparameters fitted to 90% of
    /// the data are as good, so past 60 they are refitted when the data grew by a tenth and otherwise reused.
    func fitLossModel(
        _ configurations: [Configuration],
        _ losses: [Double],
        observed: Int,
        hyperparameters: inout GPHyperparameters?,
        fittedCount: inout Int
    ) -> (GaussianProcess, LossScale)? {
        guard losses.count >= 2 else { return nil }
        let scale = LossScale(losses)
        let outputs = losses.map(scale.apply)
        let n = outputs.count
        return fitScheduled(
            encoder.encode(configurations), outputs, observed: observed, hyperparameters: &hyperparameters,
            fittedCount: &fittedCount, maxIterations: n <= 100 ? 60 : 25
        ).map { ($0, scale) }
    }

    /// A GP on `values` (standardised) at `configurations`, warm-started from `hyperparameters`, which it
    /// updates, refitted on the same schedule as the objective's; with the standardisation, to carry bounds
    /// onto its scale.
    private func fitStandardised(
        _ configurations: [Configuration],
        _ values: [Double],
        observed: Int,
        hyperparameters: inout GPHyperparameters?,
        fittedCount: inout Int
    ) -> (GaussianProcess, Standardisation)? {
        let scale = Standardisation(values)
        return fitScheduled(
            encoder.encode(configurations), values.map(scale.apply), observed: observed,
            hyperparameters: &hyperparameters, fittedCount: &fittedCount,
            maxIterations: values.count <= 100 ? 40 : 15
        ).map { ($0, scale) }
    }

    /// A GP on `outputs` at `inputs`: with the last hyperparameters when there are more than 60 observations
    /// and they grew by less than a tenth since the last fit (one factorisation), else fitted again from them.
    private func fitScheduled(
        _ inputs: [Double],
        _ outputs: [Double],
        observed: Int,
        hyperparameters: inout GPHyperparameters?,
        fittedCount: inout Int,
        maxIterations: Int
    ) -> GaussianProcess? {
        if let hyperparameters, observed > 60, observed < fittedCount + max(1, fittedCount / 10),
            let model = try? GaussianProcess(
                inputs: inputs, outputs: outputs, dimension: encoder.dimension, hyperparameters: hyperparameters)
        {
            return model
        }
        guard
            let model = GaussianProcess.fit(
                inputs: inputs, outputs: outputs, dimension: encoder.dimension, start: hyperparameters,
                maxIterations: maxIterations)
        else { return nil }
        hyperparameters = model.hyperparameters
        fittedCount = observed
        return model
    }

    /// The crash classifier, when at least one trial crashed because of its configuration. Its hyperparameters
    /// are chosen again when the labelled trials grew by a fifth, else reused.
    private mutating func fitCrashModel() -> CrashModel? {
        let all = state.observations.filter { $0.ran != nil }
        guard all.contains(where: { $0.ran == false }) else { return nil }
        // Past the cap, the crashes first (the latest of them), then the latest trials.
        let crashes = all.indices.filter { all[$0].ran == false }.reversed()
        let labelled = FitSubset.indices(
            count: all.count, preferring: crashes.prefix(FitSubset.maximum / 4) + FitSubset.latest(count: all.count)
        ).map { all[$0] }
        let inputs = encoder.encode(labelled.map(\.configuration))
        let labels = labelled.map { $0.ran == true ? 1.0 : -1.0 }
        let fitted = state.crashFittedCount ?? 0
        let reuse = state.crashHyperparameters.flatMap {
            all.count < fitted + max(2, fitted / 5) && $0.logLengthScales.count == encoder.dimension ? $0 : nil
        }
        guard
            let model = CrashModel.fit(
                inputs: inputs, labels: labels, dimension: encoder.dimension, hyperparameters: reuse)
        else { return nil }
        if reuse == nil {
            state.crashHyperparameters = model.hyperparameters
            state.crashFittedCount = all.count
        }
        return model
    }

    // MARK: - Acquisition

    /// The candidate with the highest acquisition that keeps the known constraints, is new to the study and is
    /// not within ``duplicateRadius`` of a running or chosen point.
    private mutating func maximizeAcquisition(
        models: Models,
        history: StudyHistory,
        batch: [Configuration],
        avoid: [[Double]],
        boundary: Bool = false
    ) -> Configuration? {
        let dimension = space.dimension
        // Scoring m candidates costs O(n² m): with many observations the model is well informed and the
        // local refinement does the rest, so the quasi-random set shrinks as n grows.
        let n = min(state.observations.count, FitSubset.maximum)
        let candidates = n <= 100 ? state.settings.candidates : max(256, state.settings.candidates * 100 / n)
        let leaderCount = n <= 100 ? refinementLeaders : refinementLeaders / 2
        var sobol = SobolSequence(dimension: dimension, seed: state.generator.next())
        var points: [[Double]] = (0..<candidates).map { _ in sobol.next() }
        // Around the best feasible observations too: improvement is often a small step from the incumbent. With
        // two objectives the front's members share the steps, at least four each, so a long study's large front
        // does not multiply the candidates scored.
        let incumbents = localCentres(pareto: models.pareto != nil)
        let steps = max(4, Self.localCentreCount * (candidates / 16) / max(incumbents.count, 1))
        let searched = space.searched
        for incumbent in incumbents {
            guard let centre = try? space.unitPoint(of: incumbent) else { continue }
            for _ in 0..<min(steps, candidates / 16) {
                points.append(perturb(centre, radius: 0.05))
            }
            // Every other choice of each categorical parameter, the rest kept: a Gaussian step in the unit cube
            // rarely crosses a category's bucket, and a study that found good numbers with one choice would
            // otherwise never learn what the others give with them.
            for (coordinate, parameter) in searched.enumerated() {
                let count: Int
                switch parameter.domain {
                case .categorical(let values): count = min(values.count, 64)
                case .bool: count = 2
                default: continue
                }
                for choice in 0..<count {
                    var neighbour = centre
                    neighbour[coordinate] = (Double(choice) + 0.5) / Double(count)
                    if neighbour != centre { points.append(neighbour) }
                }
            }
        }
        points = points.filter(keepsKnownConstraints)
        let bounded = boundary ? boundaryBand(points, models: models) : nil
        let band = bounded?.band
        if let inside = bounded?.inside { points = points.indices.filter { inside[$0] }.map { points[$0] } }
        var scored = score(points, models: models)
        scored.settleBest(leaderCount)
        // Local refinement of the leaders: a (1+λ) evolution strategy whose step halves when a round finds
        // nothing better, from a tenth of the cube down to a thousandth.
        let leaders = Array(scored.ranked.prefix(leaderCount))
        var refined: [(point: [Double], value: Double)] = []
        if n <= 100 {
            // One leader after another, each on the study's generator.
            for leader in leaders {
                var generators = [state.generator]
                refined += refine([leader], rounds: 40, generators: &generators, models: models, band: band)
                state.generator = generators[0]
            }
        } else {
            // With hundreds of observations a triangular solve over 24 candidates ran at half the speed of one
            // over a hundred: the leaders step together, each on a generator of its own, seeded from the study's,
            // so that its path does not depend on how long the others run.
            var generators = leaders.map { _ in SeededGenerator(seed: state.generator.next()) }
            refined = refine(leaders, rounds: 6, generators: &generators, models: models, band: band)
        }
        // Each polish step reads the whole factor a few times: with many observations, polish fewer.
        let polished = n <= 100 ? leaderCount : 2
        for (rank, leader) in refined.enumerated() {
            let (centre, centreValue) = leader
            // The gradient is log EI's alone: with feasibility models the evolution strategy's result stands.
            if rank < polished, !models.hasFeasibilityModel, models.fantasies == nil, models.penalties == nil,
                let objective = models.objective,
                let best = models.best
            {
                let polish = polish(
                    centre, value: centreValue, model: objective, best: best, iterations: n <= 100 ? 20 : 12)
                scored.append(point: polish.point, value: polish.value)
            } else {
                scored.append(point: centre, value: centreValue)
            }
        }
        // The proposal is the best candidate that is new and uncrowded; one is taken only once no unread
        // candidate could score as high.
        while true {
            var seen: Set<Configuration> = []
            let unread = scored.unreadBound
            for candidate in scored.ranked {
                if let unread, unread >= candidate.value { break }
                let configuration = space.configuration(atUnit: candidate.point)
                guard seen.insert(configuration).inserted else { continue }
                if history.contains(configuration) || batch.contains(configuration) { continue }
                guard let unit = try? space.unitPoint(of: configuration) else { continue }
                if isDuplicate(unit, of: avoid) { continue }
                if state.settings.crowding == .spread, Self.crowds(unit, avoid) { continue }
                return configuration
            }
            guard unread != nil else { return nil }
            scored.settleAll()
        }
    }

    /// The stalled turns (trials counted modulo ``stalledRefinementPeriod``) whose proposals look only near the
    /// constraints' boundary (``StallMode/boundary``); turn 0 stays on the fitted model, turn 3 on the shortened
    /// one. Chosen by measurement (docs/benchmarks.md): one turn in four left 9 of 60 random decoy studies on
    /// their decoy, two left none, three cost Branin-disk, whose optimum lies inside its constraint, 4× in regret.
    static let boundaryTurns: Set<Int> = [1, 2]

    /// The share of the candidates the constraint models expect to hold that a boundary turn keeps, those nearest
    /// a bound: 0.05 and 0.2 left more decoy studies stuck (docs/benchmarks.md).
    static let boundaryShare = 0.1

    /// Where a boundary turn looks (``StallMode/boundary``): the unit points the constraint models expect to hold
    /// every hard constraint with at most ``width`` to spare.
    struct BoundaryBand {
        /// The models whose margins decide.
        let models: Models
        /// The strategy's encoder, for the feature rows' width.
        let encoder: FeatureEncoder
        /// A unit point's features (through the configuration when the space is conditional).
        let encode: ([Double], inout [Double]) -> Void
        /// The largest margin, in the constraint models' standardised units, a point in the band may have.
        var width = Double.infinity

        /// Each unit point's margin (``Models/constraintMargins(_:count:)``).
        func margins(_ points: [[Double]]) -> [Double] {
            var features: [Double] = []
            features.reserveCapacity(points.count * encoder.dimension)
            for point in points { encode(point, &features) }
            return models.constraintMargins(features, count: points.count)
        }

        /// Whether each unit point lies in the band.
        func contains(_ points: [[Double]]) -> [Bool] { margins(points).map { $0 >= 0 && $0 <= width } }
    }

    /// The band of a boundary turn, with which of `points` lie in it: the ``boundaryShare`` of them the
    /// constraint models expect to hold that lie nearest a bound; `nil` (an ordinary shrunk turn) without
    /// constraint models, when the best feasible observation is itself within it, already on the boundary, or
    /// when fewer than ten candidates are expected to hold.
    func boundaryBand(_ points: [[Double]], models: Models) -> (band: BoundaryBand, inside: [Bool])? {
        guard !models.constraints.isEmpty,
            let best = state.observations.filter({ $0.loss != nil }).min(by: { $0.loss! < $1.loss! })
        else { return nil }
        var band = BoundaryBand(
            models: models, encoder: encoder, encode: { point, features in encodeUnit(point, into: &features) })
        let margins = band.margins(points)
        let held = margins.filter { $0 >= 0 }.sorted()
        guard held.count >= 10 else { return nil }
        band.width = held[Int(Double(held.count) * Self.boundaryShare)]
        guard models.constraintMargins(features(of: best.configuration), count: 1)[0] > band.width else { return nil }
        return (band, margins.map { $0 >= 0 && $0 <= band.width })
    }

    /// How many of the best observations a proposal's local candidates are drawn around, without a two-objective front.
    private static let localCentreCount = 5

    /// Where a proposal's local candidates are drawn around: the ``localCentreCount`` best feasible observations;
    /// with `pareto` (two objectives and their hypervolume), every member of the feasible front, which the same
    /// number of steps is shared among (each front member is an incumbent some part of the front improves on: the
    /// best of the first objective alone are one end of the front). Three or more objectives, scalarised per ask,
    /// keep the first rule: the front's members or the scalarisation's best measured no better there.
    func localCentres(pareto: Bool) -> [Configuration] {
        let feasible = state.observations.filter { $0.loss != nil }
        guard pareto else {
            return feasible.sorted { $0.loss! < $1.loss! }.prefix(Self.localCentreCount).map(\.configuration)
        }
        let measured = feasible.compactMap { observation in observation.goalLosses.map { (observation, $0) } }
        return ParetoModel.nonDominatedIndices(measured.map(\.1)).map { measured[$0].0.configuration }
    }

    /// The leaders' evolution strategies, scored together round by round: `refinementSamples` Gaussian steps a
    /// round around each centre (drawn from that leader's generator), the best taken when it scores higher, the
    /// step halved when none does, until the step is below a hundredth of the cube or `rounds` ran.
    private func refine(
        _ leaders: [(point: [Double], value: Double)], rounds: Int, generators: inout [SeededGenerator],
        models: Models, band: BoundaryBand? = nil
    ) -> [(point: [Double], value: Double)] {
        var centres = leaders
        var radii = [Double](repeating: 0.1, count: leaders.count)
        for _ in 0..<rounds {
            let active = radii.indices.filter { radii[$0] >= 0.01 }
            guard !active.isEmpty else { break }
            var points: [[Double]] = []
            var owners: [Int] = []
            for leader in active {
                for _ in 0..<refinementSamples {
                    let point = Self.perturb(centres[leader].point, radius: radii[leader], using: &generators[leader])
                    guard keepsKnownConstraints(point) else { continue }
                    points.append(point)
                    owners.append(leader)
                }
            }
            if let band {
                let inside = band.contains(points)
                points = points.indices.filter { inside[$0] }.map { points[$0] }
                owners = owners.indices.filter { inside[$0] }.map { owners[$0] }
            }
            var local = score(points, models: models)
            local.settle(above: owners.map { centres[$0].value })
            var improved = centres
            for (index, value) in local.values.enumerated() {
                guard let value, value > improved[owners[index]].value else { continue }
                improved[owners[index]] = (local.points[index], value)
            }
            for leader in active {
                if improved[leader].value > centres[leader].value {
                    centres[leader] = improved[leader]
                } else {
                    radii[leader] /= 2
                }
            }
        }
        return centres
    }

    /// Whether `unit` would be the third point in one neighbourhood (``crowdingRadius`` in every coordinate of
    /// the unit cube) with the running and already chosen points `pending`: ``CrowdingMode/spread``'s rule.
    static func crowds(_ unit: [Double], _ pending: [[Double]]) -> Bool {
        pending.count { near($0, unit, within: crowdingRadius) } >= 2
    }

    /// The half-width, in every unit-cube coordinate, of the neighbourhood of a running or chosen trial that a
    /// proposal may not fall in: a tenth of the local refinement's finest step (a thousandth of the cube), so
    /// several slots can refine an optimum's last digits at once while a proposal a hair from a running trial is
    /// still skipped. At 1e-3, the finest step itself, one running trial barred every other slot from the
    /// optimum's neighbourhood: Gardner's eighth digit took parallel 4 87 evaluations instead of 56, and Mixed's
    /// regret at 50 was 7.8× the sequential one instead of 4.9× (docs/benchmarks.md).
    public static let duplicateRadius = 1e-4

    /// The radius before ``duplicateRadius``, which checkpoints from before it resume with.
    public static let legacyDuplicateRadius = 1e-3

    /// Whether `unit` lies within this study's ``Settings/duplicateRadius`` (the legacy one when its checkpoint
    /// has none) of a running or chosen point.
    func isDuplicate(_ unit: [Double], of avoid: [[Double]]) -> Bool {
        let radius = state.settings.duplicateRadius ?? Self.legacyDuplicateRadius
        return avoid.contains { Self.near($0, unit, within: radius) }
    }

    /// Whether unit-cube points `a` and `b` differ by at most `radius` in every coordinate.
    static func near(_ a: [Double], _ b: [Double], within radius: Double) -> Bool {
        zip(a, b).allSatisfy { abs($0 - $1) <= radius }
    }

    /// The half-width, in every unit-cube coordinate, of the neighbourhood ``CrowdingMode/spread`` allows two
    /// running trials in.
    public static let crowdingRadius = 0.05

    /// The best candidate of one posterior draw of the objective (``PendingMode/thompson``): quasi-random points
    /// and steps around the best observations, the draw joint over them so that its best is a sample of where
    /// the optimum is; the feasibility models gate it as they gate log EI. `nil` when there is no objective model
    /// or the draw fails (log EI then proposes).
    private mutating func thompsonProposal(
        models: Models, history: StudyHistory, batch: [Configuration], avoid: [[Double]]
    ) -> Configuration? {
        guard let objective = models.objective, models.pareto == nil else { return nil }
        // A joint draw costs O(m³): a few hundred candidates keep an ask within milliseconds.
        var sobol = SobolSequence(dimension: space.dimension, seed: state.generator.next())
        var points: [[Double]] = (0..<Self.thompsonCandidates).map { _ in sobol.next() }
        let incumbents = state.observations.filter { $0.loss != nil }.sorted { $0.loss! < $1.loss! }.prefix(4)
        for incumbent in incumbents {
            guard let centre = try? space.unitPoint(of: incumbent.configuration) else { continue }
            for radius in [0.1, 0.03, 0.01] {
                for _ in 0..<(Self.thompsonCandidates / 16) { points.append(perturb(centre, radius: radius)) }
            }
        }
        guard let (allowedPoints, features) = allowed(points) else { return nil }
        points = allowedPoints
        guard let draw = objective.jointSample(at: features, count: points.count, generator: &state.generator)
        else { return nil }
        var value = draw.map { -$0 }
        models.addFeasibility(features, count: points.count, to: &value)
        for index in points.indices.sorted(by: { value[$0] > value[$1] }) {
            let configuration = space.configuration(atUnit: points[index])
            if history.contains(configuration) || batch.contains(configuration) { continue }
            guard let unit = try? space.unitPoint(of: configuration) else { continue }
            if isDuplicate(unit, of: avoid) { continue }
            return configuration
        }
        return nil
    }

    /// Quasi-random candidates of a Thompson draw (and as many again around the best observations).
    private static let thompsonCandidates = 256

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
            encodeUnit(point, into: &features)
            let (logEI, gradient) = model.logExpectedImprovementWithGradient(features, best: best)
            let unitGradient = continuous.map { feature in feature.map { -gradient[$0] } ?? 0 }
            return (logEI.isFinite ? -logEI : .infinity, unitGradient)
        }
        return -result.value > value ? (result.point, -result.value) : (start, value)
    }

    /// Unit-cube points that keep the known constraints (the callers leave the others out, never scoring them at
    /// −∞), scored by the objective and by the feasibility models as ``CandidateScores`` needs them.
    private func score(_ points: [[Double]], models: Models) -> CandidateScores {
        var features: [Double] = []
        features.reserveCapacity(points.count * encoder.dimension)
        for point in points { encodeUnit(point, into: &features) }
        return CandidateScores(points: points, features: features, dimension: encoder.dimension, models: models)
    }

    /// Whether the configuration at a unit-cube point keeps the space's known constraints.
    private func keepsKnownConstraints(_ point: [Double]) -> Bool {
        space.constraints.isEmpty || space.isFeasible(space.configuration(atUnit: point), constants: constants)
    }

    /// The features of a unit-cube point: straight from the coordinates, or through the configuration when some
    /// parameter is conditional (its activity depends on the others).
    private func encodeUnit(_ point: [Double], into features: inout [Double]) {
        if space.isConditional {
            encoder.encode(space.configuration(atUnit: point), into: &features)
        } else {
            encoder.encode(unit: point, into: &features)
        }
    }

    private mutating func perturb(_ centre: [Double], radius: Double) -> [Double] {
        // From the checkpointed generator, so refinement is reproducible.
        Self.perturb(centre, radius: radius, using: &state.generator)
    }

    /// `centre` moved by a Gaussian step of `radius` in each coordinate, clamped to the unit cube.
    private static func perturb(_ centre: [Double], radius: Double, using generator: inout SeededGenerator)
        -> [Double]
    {
        centre.map { coordinate in min(max(coordinate + radius * generator.nextNormal(), 0), 1) }
    }

    /// The next Sobol point whose configuration keeps the known constraints and is new to the study; with
    /// `models`, also one the crash model does not expect to crash (P(run) of at least a third).
    private mutating func nextDesignPoint(history: StudyHistory, batch: [Configuration], models: Models? = nil)
        -> Configuration?
    {
        for _ in 0..<4096 {
            let configuration = space.configuration(atUnit: state.design.next())
            guard space.isFeasible(configuration, constants: constants), !history.contains(configuration),
                !batch.contains(configuration)
            else { continue }
            if let crash = models?.crash,
                crash.logProbabilityOfRunning(features(of: configuration), count: 1)[0] < log(1.0 / 3)
            {
                continue
            }
            return configuration
        }
        return nil
    }
}

/// A linear map onto a standard scale (mean 0, spread 1), kept to carry bounds onto it.
struct Standardisation {
    let mean: Double
    let scale: Double

    init(_ values: [Double]) {
        let mean = values.reduce(0, +) / Double(max(values.count, 1))
        let spread = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(values.count, 1))).squareRoot()
        self.mean = mean
        scale = spread > 0 ? spread : 1
    }

    func apply(_ value: Double) -> Double { (value - mean) / scale }
}

/// A Box–Cox transform of losses shifted to be positive, with the power (−2 to 1.5 in tenths) under which
/// they look most Gaussian, the profile likelihood with its Jacobian (Box and Cox, 1964), as HEBO warps its
/// outputs.
///
/// The shift puts the smallest loss at 0.3 of the losses' range above zero: nearer, the best point becomes an
/// outlier of its own under a log; farther, every power looks alike. 0.3 was measured against 0.01–1 on the
/// four benchmark functions and was best or tied on each (docs/benchmarks.md).
struct OutputWarp {
    /// Subtracted before the power: the smallest loss minus 0.3 of the range.
    let shift: Double
    /// The Box–Cox power; 0 is the logarithm, 1 an affine map.
    let power: Double

    /// Chooses the shift and the power for `values`.
    init(_ values: [Double]) {
        let low = values.min() ?? 0
        let high = values.max() ?? 1
        let range = high - low > 0 ? high - low : max(abs(low), 1)
        let shift = low - 0.3 * range
        self.shift = shift
        let shifted = values.map { $0 - shift }
        let logs = shifted.map(log)
        let logSum = logs.reduce(0, +)
        var best = (power: 1.0, value: -Double.infinity)
        for step in -20...15 {
            let power = Double(step) / 10
            let transformed = power == 0 ? logs : shifted.map { (pow($0, power) - 1) / power }
            let mean = transformed.reduce(0, +) / Double(transformed.count)
            let variance = transformed.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(transformed.count)
            guard variance > 0, variance.isFinite else { continue }
            let value = -0.5 * Double(values.count) * log(variance) + (power - 1) * logSum
            if value > best.value { best = (power, value) }
        }
        power = best.power
    }

    /// The transformed values, in the same order (monotone increasing, so rankings are kept).
    func apply(_ values: [Double]) -> [Double] {
        values.map { value in
            let shifted = value - shift
            return power == 0 ? log(shifted) : (pow(shifted, power) - 1) / power
        }
    }
}
