/// One ask's candidates, scored by the objective's acquisition at once and by the feasibility models (constraint
/// GPs, the crash classifier) only where they can change what the ask proposes.
///
/// Every feasibility term is a log probability, never positive, and a candidate a model doubts drops to about
/// −10⁶; so the objective's term, floored at −10⁶, bounds a candidate's score from above. Candidates are read in
/// the order of that bound until the ones the ask needs (the refinement's leaders, a step that beats its centre,
/// the proposal) are known to beat every bound left unread. The choice is the one scoring every candidate would
/// make, up to rounding (BLAS blocks a subset differently from the whole set, so a score's last digit can move);
/// it costs a fraction of it, since each model's posterior costs O(n²) per candidate and with an SLO the
/// objective's log EI leaves few candidates in contention (measured: 64 of 534 read at 500 observations).
struct CandidateScores {
    /// The candidates in the unit cube.
    private(set) var points: [[Double]]
    /// The features of the candidates scored at creation, row-major.
    private let features: [Double]
    /// The objective's acquisition at each.
    private var objective: [Double]
    /// The exact score, where read.
    private(set) var values: [Double?]
    private let dimension: Int
    private let models: BayesianOptimization.Models

    /// How many candidates one read of the feasibility models takes: enough rows for BLAS to run at speed.
    private static let chunk = 32

    /// The floor of the bound: a candidate a feasibility model doubts scores below −10⁶ whatever its log EI.
    private static let floor = -1e6

    /// Scores `points` (with their row-major `features`) by the objective; without feasibility models every
    /// score is then exact.
    init(points: [[Double]], features: [Double], dimension: Int, models: BayesianOptimization.Models) {
        self.points = points
        self.features = features
        self.dimension = dimension
        self.models = models
        objective = points.isEmpty ? [] : models.objectiveScore(features, count: points.count)
        values = Array(repeating: nil, count: points.count)
        if !models.hasFeasibilityModel {
            values = objective.map { $0.isFinite ? $0 : -1e300 }
        }
    }

    /// The most a candidate's score can be.
    private func bound(_ index: Int) -> Double {
        let value = objective[index]
        return value.isNaN ? Self.floor : max(value, Self.floor)
    }

    /// Adds a candidate whose score is known (a refined leader); only unread candidates need their features.
    mutating func append(point: [Double], value: Double) {
        points.append(point)
        objective.append(value)
        values.append(value)
    }

    /// The read candidates, best first.
    var ranked: [(point: [Double], value: Double)] {
        values.indices.compactMap { index in values[index].map { (points[index], $0) } }.sorted { $0.value > $1.value }
    }

    /// The highest bound among the unread candidates; `nil` once every one is read.
    var unreadBound: Double? {
        values.indices.lazy.filter { values[$0] == nil }.map(bound).max()
    }

    /// Reads the candidates until the best `count` scores are known: every unread bound is below the
    /// `count`-th best read score.
    mutating func settleBest(_ count: Int) {
        var unread = values.indices.filter { values[$0] == nil }.sorted { bound($0) > bound($1) }
        var best: [Double] = values.compactMap { $0 }.sorted(by: >)
        while !unread.isEmpty {
            if best.count >= count, bound(unread[0]) < best[count - 1] { return }
            let next = Array(unread.prefix(Self.chunk))
            unread.removeFirst(next.count)
            best = (best + read(next)).sorted(by: >)
        }
    }

    /// Reads every unread candidate whose score could exceed its own threshold (the centre it steps from).
    mutating func settle(above thresholds: [Double]) {
        read(values.indices.filter { values[$0] == nil && bound($0) > thresholds[$0] })
    }

    /// Reads every candidate.
    mutating func settleAll() {
        read(values.indices.filter { values[$0] == nil })
    }

    /// Reads the feasibility models at `indices`; returns the scores.
    @discardableResult
    private mutating func read(_ indices: [Int]) -> [Double] {
        guard !indices.isEmpty else { return [] }
        var rows: [Double] = []
        rows.reserveCapacity(indices.count * dimension)
        for index in indices { rows.append(contentsOf: features[(index * dimension)..<((index + 1) * dimension)]) }
        let scores = models.feasibleScore(rows, count: indices.count, objective: indices.map { objective[$0] })
        for (index, score) in zip(indices, scores) { values[index] = score }
        return scores
    }
}
