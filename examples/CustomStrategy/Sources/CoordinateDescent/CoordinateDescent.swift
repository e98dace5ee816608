public import Autotune

/// Coordinate descent in the unit cube: from the centre, try a step up and a step down along each searched
/// parameter in turn, move to any improvement, and halve the step after a full round without one.
///
/// A small, complete `Strategy`: pending-aware (it never proposes a running configuration), it tolerates failed
/// trials (a failure is no improvement), and its whole state is Codable, so checkpoints and resume work.
public struct CoordinateDescent: Strategy {
    /// Everything needed to continue.
    public struct State: Sendable, Hashable, Codable {
        /// The best point so far and its loss (smaller is better).
        public var centre: [Double]
        public var centreLoss: Double?
        /// The step, in unit-cube lengths.
        public var step: Double
        /// The coordinate being explored.
        public var coordinate: Int
        /// Rounds since the last improvement.
        public var failedMoves: Int
        /// Proposals not told yet: configuration → unit point.
        public var outstanding: [Configuration: [Double]]
    }

    /// The current state.
    public private(set) var state: State
    private let space: SearchSpace
    private let maximize: Bool

    /// Creates the strategy, or restores it from `state`.
    public init(context: StrategyContext, state: State? = nil) {
        space = context.space
        maximize = context.objective.direction == .maximize
        self.state =
            state
            ?? State(
                centre: Array(repeating: 0.5, count: context.space.dimension),
                centreLoss: nil,
                step: 0.25,
                coordinate: 0,
                failedMoves: 0,
                outstanding: [:]
            )
    }

    /// Done once the step is finer than any parameter can resolve.
    public var isExhausted: Bool { state.step < 1e-3 || space.dimension == 0 }

    /// The centre first, then moves along the current coordinate.
    public mutating func ask(_ count: Int, history: StudyHistory) throws -> [Configuration] {
        var proposals: [Configuration] = []
        var attempts = 0
        while proposals.count < count, attempts < 8 * max(1, space.dimension), !isExhausted {
            attempts += 1
            var point = state.centre
            if state.centreLoss != nil || !state.outstanding.isEmpty || !proposals.isEmpty {
                let direction = attempts % 2 == 0 ? -1.0 : 1.0
                point[state.coordinate] = min(1, max(0, point[state.coordinate] + direction * state.step))
                if attempts % 2 == 0 { advance() }
            }
            let configuration = space.configuration(atUnit: point)
            guard !history.contains(configuration), state.outstanding[configuration] == nil,
                !proposals.contains(configuration)
            else { continue }
            state.outstanding[configuration] = point
            proposals.append(configuration)
        }
        return proposals
    }

    /// Moves the centre when the trial improved on it.
    public mutating func tell(_ trial: Trial) throws {
        guard let point = state.outstanding.removeValue(forKey: trial.configuration) else { return }
        guard trial.state == .completed, let score = trial.score else { return }
        let loss = maximize ? -score : score
        if loss < (state.centreLoss ?? .infinity) {
            state.centre = point
            state.centreLoss = loss
            state.failedMoves = 0
        }
    }

    private mutating func advance() {
        state.coordinate = (state.coordinate + 1) % max(1, space.dimension)
        state.failedMoves += 1
        if state.failedMoves >= 2 * space.dimension {
            state.step /= 2
            state.failedMoves = 0
        }
    }
}
