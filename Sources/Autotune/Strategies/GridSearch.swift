/// Tries every point of the grid that keeps the known constraints exactly once, in declared or seeded shuffled
/// order, then is exhausted.
///
/// Integer, categorical and boolean parameters contribute all their values; a continuous parameter
/// contributes `resolution` evenly spaced points in its own scale. The order is a seeded bijection computed
/// one index at a time, so the state is a cursor and a seed however large the grid.
public struct GridSearch: Strategy {
    /// The order grid points are visited in.
    public enum Order: String, Sendable, Hashable, Codable {
        /// The last parameter varies fastest, as declared.
        case declared
        /// A seeded shuffle, so a study stopped early still covers the space evenly.
        case shuffled
    }

    /// The grid's position and settings.
    public struct State: Sendable, Hashable, Codable {
        /// The visiting order.
        public var order: Order
        /// The shuffle's seed.
        public var seed: UInt64
        /// Points per continuous parameter.
        public var resolution: Int
        /// How many positions of the order have been handed out or skipped.
        public var cursor: Int
    }

    /// The current state.
    public private(set) var state: State
    private let space: SearchSpace
    private let constants: [String: Double]
    private let total: Int
    private let permutation: IndexPermutation?

    /// The option names the task file may give.
    public static let options: Set<String> = ["order", "resolution"]

    /// Creates a grid over `context.space`, or restores one from `state`.
    public init(context: StrategyContext, state: State? = nil) throws(StrategyError) {
        try context.rejectUnknownOptions(Self.options, strategy: "grid")
        let resolution = try context.intOption("resolution", default: 5, in: 1...10_000)
        let orderName = try context.choiceOption("order", default: "shuffled", choices: ["shuffled", "declared"])
        let initial = State(
            order: Order(rawValue: orderName)!,
            seed: context.seed,
            resolution: resolution,
            cursor: 0
        )
        let state = state ?? initial
        guard let total = context.space.gridCount(resolution: state.resolution), total <= 100_000_000 else {
            throw StrategyError("the grid has more than 100 million points; use random or bayesian search")
        }
        self.space = context.space
        self.constants = context.constants
        self.total = total
        self.state = state
        self.permutation = state.order == .shuffled ? IndexPermutation(count: total, seed: state.seed) : nil
    }

    /// The number of grid points.
    public var pointCount: Int { total }

    /// The grid's size.
    public var proposalLimit: Int? { total }

    /// The next grid points not already in the study.
    public mutating func ask(_ count: Int, history: StudyHistory) throws -> [Configuration] {
        var batch: [Configuration] = []
        var inBatch: Set<Configuration> = []
        while batch.count < count, state.cursor < total {
            let index = permutation?.index(at: state.cursor) ?? state.cursor
            state.cursor += 1
            let configuration = space.gridConfiguration(at: index, resolution: state.resolution)
            // Points that break a known constraint, and points that only differ in inactive parameters, are skipped.
            guard space.isFeasible(configuration, constants: constants), !history.contains(configuration),
                inBatch.insert(configuration).inserted
            else { continue }
            batch.append(configuration)
        }
        return batch
    }

    /// Grid search ignores results.
    public mutating func tell(_ trial: Trial) throws {}

    /// True once every point was handed out.
    public var isExhausted: Bool { state.cursor >= total }
}
