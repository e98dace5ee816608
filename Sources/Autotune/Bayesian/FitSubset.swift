/// Which observations a Gaussian process is fitted to once a study has more than the fit can afford.
///
/// A fit costs O(n³) per hyperparameter step and every prediction O(n²): past a few hundred observations each
/// new one changes the model little, while the cost keeps growing. A capped fit keeps what the model needs
/// most (the caller's preferred observations: the best and the latest, where the search is working) and
/// spreads the rest evenly over the study's order, so every region tried is still represented. The choice
/// depends only on the observations, so a resumed study fits the same subset.
enum FitSubset {
    /// The most observations the bayesian strategy fits one model to: at 500 a warm ask takes about 40 ms on
    /// this machine's class of CPU and a hyperparameter refit about a second (docs/benchmarks.md).
    static let maximum = 500

    /// Indices into `0..<count`, ascending: all of them up to `maximum`; past it, `preferred` first (at most
    /// half of `maximum`, in the order given), the rest spread evenly over the indices not yet taken.
    static func indices(count: Int, maximum: Int = maximum, preferring preferred: [Int] = []) -> [Int] {
        guard count > maximum else { return Array(0..<count) }
        var taken = Array(repeating: false, count: count)
        var chosen = 0
        for index in preferred where chosen < maximum / 2 && index >= 0 && index < count && !taken[index] {
            taken[index] = true
            chosen += 1
        }
        let rest = (0..<count).filter { !taken[$0] }
        let wanted = maximum - chosen
        for slot in 0..<wanted { taken[rest[slot * rest.count / wanted]] = true }
        return (0..<count).filter { taken[$0] }
    }

    /// The preference of a capped objective fit: the lowest losses (a quarter of `maximum`), then the latest
    /// observations (another quarter).
    static func bestAndLatest(losses: [Double], maximum: Int = maximum) -> [Int] {
        guard losses.count > maximum else { return [] }
        let best = losses.indices.sorted { (losses[$0], $0) < (losses[$1], $1) }.prefix(maximum / 4)
        return Array(best) + latest(count: losses.count, maximum: maximum)
    }

    /// Past `maximum`, the indices of the non-dominated loss vectors (every loss lower is better), newest
    /// first: a capped fit of several objectives keeps the front it is improving on.
    static func front(_ losses: [[Double]], maximum: Int = maximum) -> [Int] {
        guard losses.count > maximum else { return [] }
        return ParetoModel.nonDominatedIndices(losses).reversed()
    }

    /// The latest quarter of `maximum` of `count` observations, newest first.
    static func latest(count: Int, maximum: Int = maximum) -> [Int] {
        guard count > maximum else { return [] }
        return Array((0..<count).suffix(maximum / 4).reversed())
    }
}
