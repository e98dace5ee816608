/// Limited-memory BFGS with a backtracking (Armijo) line search, for the Gaussian process's
/// hyperparameters: a handful of variables, a smooth objective with an analytic gradient.
enum LBFGS {
    /// What a minimisation found.
    struct Result {
        var point: [Double]
        var value: Double
        var iterations: Int
        var evaluations: Int
    }

    /// Minimises `objective` (value and gradient; an infinite value marks an infeasible point) from `start`,
    /// keeping every coordinate within `bounds`.
    static func minimize(
        from start: [Double],
        bounds: [ClosedRange<Double>],
        maxIterations: Int,
        memory: Int = 8,
        tolerance: Double = 1e-5,
        objective: ([Double]) -> (value: Double, gradient: [Double])
    ) -> Result {
        func project(_ point: [Double]) -> [Double] {
            zip(point, bounds).map { min(max($0, $1.lowerBound), $1.upperBound) }
        }
        var x = project(start)
        var (f, g) = objective(x)
        var evaluations = 1
        guard f.isFinite else { return Result(point: x, value: f, iterations: 0, evaluations: evaluations) }
        var steps: [[Double]] = []
        var changes: [[Double]] = []
        var iterations = 0
        while iterations < maxIterations {
            iterations += 1
            // Two-loop recursion: direction = −H·g.
            var q = g
            var alphas: [Double] = []
            for (s, y) in zip(steps, changes).reversed() {
                let rho = 1 / dot(y, s)
                let alpha = rho * dot(s, q)
                alphas.append(alpha)
                q = zip(q, y).map { $0 - alpha * $1 }
            }
            if let s = steps.last, let y = changes.last {
                let gamma = dot(s, y) / dot(y, y)
                q = q.map { $0 * gamma }
            } else {
                let norm = dot(g, g).squareRoot()
                q = q.map { $0 / max(norm, 1) }
            }
            for ((s, y), alpha) in zip(zip(steps, changes), alphas.reversed()) {
                let rho = 1 / dot(y, s)
                let beta = rho * dot(y, q)
                q = zip(q, s).map { $0 + (alpha - beta) * $1 }
            }
            var direction = q.map { -$0 }
            if dot(direction, g) >= 0 {
                direction = g.map { -$0 }
                steps.removeAll()
                changes.removeAll()
            }
            var step = 1.0
            var accepted = false
            var next = x
            var nextF = f
            var nextG = g
            for _ in 0..<30 {
                next = project(zip(x, direction).map { $0 + step * $1 })
                (nextF, nextG) = objective(next)
                evaluations += 1
                let decrease = dot(g, zip(next, x).map { $0 - $1 })
                if nextF.isFinite, nextF <= f + 1e-4 * decrease { accepted = true; break }
                step *= 0.5
            }
            guard accepted else { break }
            let s = zip(next, x).map { $0 - $1 }
            let y = zip(nextG, g).map { $0 - $1 }
            let improvement = f - nextF
            x = next
            f = nextF
            g = nextG
            if dot(s, y) > 1e-12 {
                steps.append(s)
                changes.append(y)
                if steps.count > memory {
                    steps.removeFirst()
                    changes.removeFirst()
                }
            }
            if improvement < tolerance * max(1, abs(f)) || dot(g, g).squareRoot() < tolerance { break }
        }
        return Result(point: x, value: f, iterations: iterations, evaluations: evaluations)
    }

    private static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var sum = 0.0
        for index in a.indices { sum += a[index] * b[index] }
        return sum
    }
}
