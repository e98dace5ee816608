/// Re-measuring the best configurations once the search is over, so that a configuration that won on one lucky
/// measurement is not what gets deployed (`confirm: {top: 3, repeats: 3}`).
///
/// When the search has spent its budget and its last trial has finished, the study starts `repeats` new trials
/// for each of its `top` best completed trials, with the same configuration. They run like any trial (in
/// parallel, on the pool, recorded and resumed), but no strategy is told of them and they never become the
/// study's best: ``ConfirmedResult`` ranks the configurations by what the repeats measured.
public struct ConfirmationPhase: Sendable, Hashable, Codable {
    /// Which figure of the repeats ranks the configurations.
    public enum Ranking: String, Sendable, Hashable, Codable, CaseIterable {
        /// The mean score of the repeats.
        case mean
        /// The worst score of the repeats.
        case worst
    }

    /// How many of the search's best configurations are re-measured.
    public var top: Int
    /// How many times each is re-measured.
    public var repeats: Int
    /// What ranks them.
    public var rankBy: Ranking

    /// The most `top` or `repeats` a task file may ask for.
    public static let limit = 100

    /// Creates a confirmation phase.
    public init(top: Int = 3, repeats: Int = 3, rankBy: Ranking = .mean) {
        self.top = top
        self.repeats = repeats
        self.rankBy = rankBy
    }

    /// The search trials to re-measure: the `top` best completed ones, best first (ties to the lower number),
    /// confirmation trials aside.
    public func targets(of trials: some Sequence<Trial>, objective: Objective) -> [Trial] {
        let completed = trials.filter { $0.confirms == nil && $0.state == .completed && $0.score?.isFinite == true }
        let ranked = completed.sorted { a, b in
            a.score! == b.score! ? a.number < b.number : objective.isBetter(a.score!, than: b.score!)
        }
        return Array(ranked.prefix(top))
    }

    /// The confirmation trials still to create for `trials`: for each target, `repeats` minus those it has
    /// (in any state), in target order, as the configuration and the number of the trial it re-measures.
    public func missing(in trials: some Sequence<Trial>, objective: Objective) -> [(
        configuration: Configuration, target: Int
    )] {
        let all = Array(trials)
        var had: [Int: Int] = [:]
        for trial in all { if let target = trial.confirms { had[target, default: 0] += 1 } }
        return targets(of: all, objective: objective).flatMap { target in
            Array(
                repeating: (configuration: target.configuration, target: target.number),
                count: max(0, repeats - (had[target.number] ?? 0)))
        }
    }

    /// The confirmed ranking of `trials`' best configurations, best first, or empty when no confirmation trial
    /// exists yet.
    ///
    /// A configuration with a repeat that failed ranks after every one whose repeats all completed: it did not
    /// hold up, whatever its mean. Among equals, the figure `rankBy` names decides, then the search's score.
    public func ranking(of trials: some Sequence<Trial>, objective: Objective) -> [ConfirmedResult] {
        let all = Array(trials)
        let repeatsByTarget = Dictionary(grouping: all.filter { $0.confirms != nil }, by: { $0.confirms! })
        guard !repeatsByTarget.isEmpty else { return [] }
        let byNumber = Dictionary(all.map { ($0.number, $0) }, uniquingKeysWith: { first, _ in first })
        let searchOrder = targets(of: all, objective: objective).map(\.number)
        // Targets that have repeats, in the search's order; a target that fell out of the top (it cannot, once
        // the search is over, but a store edited by hand could) keeps its repeats ranked too.
        let numbers =
            searchOrder.filter { repeatsByTarget[$0] != nil }
            + repeatsByTarget.keys.filter { !searchOrder.contains($0) }.sorted()
        var results: [ConfirmedResult] = []
        for (index, number) in numbers.enumerated() {
            guard let original = byNumber[number], let searchScore = original.score else { continue }
            let runs = repeatsByTarget[number] ?? []
            let scores = runs.filter { $0.state == .completed }.compactMap(\.score).filter(\.isFinite)
            let failures = runs.filter { $0.isFinished && !($0.state == .completed && $0.score?.isFinite == true) }
            results.append(
                ConfirmedResult(
                    trial: number, searchScore: searchScore, searchRank: index + 1,
                    repeats: runs.map(\.number).sorted(),
                    scores: scores, failures: failures.count, unfinished: runs.count(where: { !$0.isFinished }),
                    objective: objective))
        }
        let sorted = results.sorted { a, b in
            if (a.failures == 0) != (b.failures == 0) { return a.failures == 0 }
            let x = rankBy == .mean ? a.mean : a.worst
            let y = rankBy == .mean ? b.mean : b.worst
            switch (x, y) {
            case (let x?, let y?) where x != y: return objective.isBetter(x, than: y)
            case (.some, nil): return true
            case (nil, .some): return false
            default: return a.searchRank < b.searchRank
            }
        }
        return sorted.enumerated().map { index, result in
            var result = result
            result.rank = index + 1
            return result
        }
    }
}

extension ConfirmationPhase {
    /// The confirmed best of a ranking: its first configuration at the figure `rankBy` names (at its search
    /// score while no repeat has completed); `nil` for an empty ranking.
    public func best(of ranking: [ConfirmedResult]) -> BestTrial? {
        guard let winner = ranking.first else { return nil }
        return BestTrial(
            number: winner.trial, score: (rankBy == .mean ? winner.mean : winner.worst) ?? winner.searchScore)
    }
}

/// One re-measured configuration: what the search measured and what its repeats did.
public struct ConfirmedResult: Sendable, Hashable, Codable {
    /// The search trial whose configuration was re-measured.
    public var trial: Int
    /// Its score in the search.
    public var searchScore: Double
    /// Its place in the search's ranking, from 1.
    public var searchRank: Int
    /// Its place once confirmed, from 1.
    public var rank: Int
    /// The confirmation trials' numbers.
    public var repeats: [Int]
    /// The scores of the repeats that completed.
    public var scores: [Double]
    /// Repeats that failed (crashed, or broke a hard constraint).
    public var failures: Int
    /// Repeats not finished yet.
    public var unfinished: Int
    /// The mean of `scores`.
    public var mean: Double?
    /// The sample standard deviation of `scores` (0 for one).
    public var spread: Double?
    /// The worst of `scores`, in the objective's direction.
    public var worst: Double?

    /// Creates a result and its figures.
    public init(
        trial: Int, searchScore: Double, searchRank: Int, repeats: [Int], scores: [Double], failures: Int,
        unfinished: Int, objective: Objective
    ) {
        self.trial = trial
        self.searchScore = searchScore
        self.searchRank = searchRank
        self.rank = searchRank
        self.repeats = repeats
        self.scores = scores
        self.failures = failures
        self.unfinished = unfinished
        guard !scores.isEmpty else { return }
        let mean = scores.reduce(0, +) / Double(scores.count)
        self.mean = mean
        spread =
            scores.count > 1
            ? (scores.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(scores.count - 1)).squareRoot() : 0
        worst = scores.reduce(scores[0]) { objective.isBetter($1, than: $0) ? $0 : $1 }
    }

    /// Whether the repeats confirmed the search's figure: every repeat completed and their mean is within
    /// two of their standard deviations (at least 5% of the search's score) of it, or better.
    public func heldUp(objective: Objective) -> Bool {
        guard failures == 0, let mean else { return false }
        let allowance = max(2 * (spread ?? 0), 0.05 * abs(searchScore))
        return objective.direction == .maximize ? mean >= searchScore - allowance : mean <= searchScore + allowance
    }
}
