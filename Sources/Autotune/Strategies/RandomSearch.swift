/// Draws configurations uniformly from the space: independent draws from a seeded generator, or (with
/// `sampler: sobol`) a scrambled Sobol sequence, which covers the space more evenly for the same budget.
///
/// In a finite space it never repeats a configuration of the study: it rejects duplicates, and once they
/// grow common it draws from the untried points directly, until none is left. Configurations that break a
/// known constraint between parameters are rejected the same way.
public struct RandomSearch: Strategy {
    /// The generator and whether the space is used up.
    public struct State: Sendable, Hashable, Codable {
        /// The random generator, advanced by every draw.
        public var generator: SeededGenerator
        /// Set once a finite space has no untried point left.
        public var exhausted: Bool
        /// The Sobol sequence drawn from instead of the generator, with `sampler: sobol`.
        public var sobol: SobolSequence?
    }

    /// The option names the task file may give.
    public static let options: Set<String> = ["sampler"]

    /// The current state.
    public private(set) var state: State
    private let space: SearchSpace
    private let constants: [String: Double]

    /// Creates a random search, or restores one from `state`.
    public init(context: StrategyContext, state: State? = nil) throws(StrategyError) {
        try context.rejectUnknownOptions(Self.options, strategy: "random")
        let sampler = try context.choiceOption("sampler", default: "uniform", choices: ["uniform", "sobol"])
        self.space = context.space
        self.constants = context.constants
        self.state =
            state
            ?? State(
                generator: SeededGenerator(seed: context.seed), exhausted: false,
                sobol: sampler == "sobol" ? SobolSequence(dimension: context.space.dimension, seed: context.seed) : nil)
    }

    /// Up to `count` configurations not in the study (in a finite space).
    public mutating func ask(_ count: Int, history: StudyHistory) throws -> [Configuration] {
        guard !state.exhausted else { return [] }
        var batch: [Configuration] = []
        var inBatch: Set<Configuration> = []
        let finite = space.cardinality
        for _ in 0..<count {
            var drawn: Configuration?
            for _ in 0..<64 {
                guard let candidate = drawFeasible() else { break }
                if finite == nil || (!history.contains(candidate) && !inBatch.contains(candidate)) {
                    drawn = candidate
                    break
                }
            }
            if drawn == nil, let finite {
                drawn = drawUntried(cardinality: finite, history: history, inBatch: inBatch)
            }
            guard let configuration = drawn else {
                state.exhausted = true
                break
            }
            inBatch.insert(configuration)
            batch.append(configuration)
        }
        return batch
    }

    /// Random search ignores results.
    public mutating func tell(_ trial: Trial) throws {}

    /// True once a finite space has no untried point.
    public var isExhausted: Bool { state.exhausted }

    private mutating func draw() -> Configuration {
        let point: [Double]
        if state.sobol != nil {
            point = state.sobol!.next()
        } else {
            point = (0..<space.dimension).map { _ in state.generator.nextUnit() }
        }
        return space.configuration(atUnit: point)
    }

    /// A draw that keeps the known constraints, or `nil` when thousands of draws in a row broke one (the
    /// constraints leave almost nothing of the space).
    private mutating func drawFeasible() -> Configuration? {
        for _ in 0..<10_000 {
            let candidate = draw()
            if space.isFeasible(candidate, constants: constants) { return candidate }
        }
        return nil
    }

    /// A uniform pick among the untried points, for when rejection keeps hitting tried ones: a space that
    /// nearly ran out. In a space far larger than the study (where 64 misses in a row are only bad luck) it draws
    /// once more instead of listing the space.
    private mutating func drawUntried(
        cardinality: Int,
        history: StudyHistory,
        inBatch: Set<Configuration>
    ) -> Configuration? {
        if cardinality > 4 * (history.count + inBatch.count) + 1_000 {
            // Each draw is untried with probability above 3/4.
            for _ in 0..<10_000 {
                guard let candidate = drawFeasible() else { return nil }
                if !history.contains(candidate), !inBatch.contains(candidate) { return candidate }
            }
        }
        var untried: [Configuration] = []
        for index in 0..<cardinality {
            let configuration = space.gridConfiguration(at: index, resolution: 1)
            if !history.contains(configuration), !inBatch.contains(configuration), !untried.contains(configuration),
                space.isFeasible(configuration, constants: constants)
            {
                untried.append(configuration)
            }
        }
        guard !untried.isEmpty else { return nil }
        return untried[state.generator.nextInt(below: untried.count)]
    }
}
