import Autotune
import Foundation

/// Two-objective problems drawn at random with a decoy front: the trap of a serving study whose trade-off
/// between throughput and latency has a broad, easy region and a narrow one that is better on both.
///
/// Three coordinates: `x₀` moves along the trade-off, `(x₁, x₂)` set how far from the best front a point lies,
/// `f = g(x₁, x₂) · (x₀, 1 − x₀^p)` (both minimised; the front's shape `p` from convex to concave). `g` has two
/// basins: a narrow one (the true front, `g = 1`) and a broad one, far from it, whose floor `1 + L` leaves a
/// decoy front every point of which the true front dominates; a crash corner (a server that does not start)
/// away from both. Each instance places, sizes and shapes them anew, so the check that a study finds the true
/// front holds on problems the search was not built on; the instances are printed for the peers' script.
enum ParetoDecoyFamily {
    /// One drawn instance and what the bench needs to judge a study of it.
    struct Instance: Codable {
        /// The seed it was drawn from (its number in the family).
        var seed: UInt64
        /// The front's shape: `f₂ = 1 − f₁^p` on the true front.
        var shape: Double
        /// The narrow basin's centre in `(x₁, x₂)` and its width (`g − 1 = distance² / width` near it).
        var trueCentre: [Double]
        var trueWidth: Double
        /// The broad basin's centre and width.
        var decoyCentre: [Double]
        var decoyWidth: Double
        /// `L`: how far the decoy front lies outside the true one (`g = 1 + L` at its floor).
        var decoyLevel: Double
        /// The corner of `(x₁, x₂)` where the server does not start, and the square's half-width there.
        var crashCorner: [Double]
        var crashSize: Double
        /// The hypervolume's reference point, and the true and decoy fronts' hypervolumes against it.
        var reference: [Double]
        var trueHypervolume: Double
        var decoyHypervolume: Double

        /// `g`: 1 on the true front, `1 + L` on the decoy's floor, growing away from both basins.
        func depth(_ x: [Double]) -> Double {
            let t = pow(x[1] - trueCentre[0], 2) + pow(x[2] - trueCentre[1], 2)
            let d = pow(x[1] - decoyCentre[0], 2) + pow(x[2] - decoyCentre[1], 2)
            return 1 + min(t / trueWidth, decoyLevel + d / decoyWidth, 2)
        }

        /// The two losses at `x`.
        func objectives(_ x: [Double]) -> [Double] {
            let g = depth(x)
            return [g * x[0], g * (1 - pow(x[0], shape))]
        }

        /// `g` read back from a point's losses: `f₂ = g − g^(1−p) f₁^p` grows with `g` (from `max(f₁, f₂)`, where
        /// `x₀ ≤ 1`), so bisection finds it. A point is deeper than the decoy's floor exactly when the decoy
        /// front does not dominate it.
        func depth(losses f: [Double]) -> Double {
            var low = max(f[0], f[1])
            var high = 4.0
            for _ in 0..<100 {
                let g = (low + high) / 2
                if g - pow(g, 1 - shape) * pow(f[0], shape) < f[1] { low = g } else { high = g }
            }
            return (low + high) / 2
        }

        /// Whether the experiment at `x` crashes.
        func crashes(_ x: [Double]) -> Bool {
            abs(x[1] - crashCorner[0]) < crashSize && abs(x[2] - crashCorner[1]) < crashSize
        }

        /// The instance as a problem the pareto bench runs.
        var problem: ParetoProblem {
            ParetoProblem(
                name: "Pareto decoy #\(seed)", dimension: 3, bounds: Array(repeating: 0...1, count: 3),
                reference: reference, objectives: objectives, crashes: crashes,
                trueHypervolume: { trueHypervolume })
        }
    }

    /// The instance drawn from `seed`.
    static func instance(_ seed: UInt64) -> Instance {
        var generator = SeededGenerator(seed: 0xF207 &+ seed &* 7919)
        while true {
            let shape = exp(generator.uniform(log(0.5)...log(2)))
            let trueCentre = [generator.uniform(0.15...0.85), generator.uniform(0.15...0.85)]
            let trueWidth = generator.uniform(0.01...0.03)
            let decoyCentre = [generator.uniform(0.1...0.9), generator.uniform(0.1...0.9)]
            let decoyWidth = generator.uniform(0.1...0.3)
            let decoyLevel = generator.uniform(0.2...0.4)
            let crashCorner = [generator.nextUnit() < 0.5 ? 0.0 : 1.0, generator.nextUnit() < 0.5 ? 0.0 : 1.0]
            let crashSize = generator.uniform(0.1...0.2)
            var instance = Instance(
                seed: seed, shape: shape, trueCentre: trueCentre, trueWidth: trueWidth, decoyCentre: decoyCentre,
                decoyWidth: decoyWidth, decoyLevel: decoyLevel, crashCorner: crashCorner, crashSize: crashSize,
                reference: [1.6, 1.6], trueHypervolume: 0, decoyHypervolume: 0)
            // The basins far apart, and neither in the crash corner.
            guard hypot(trueCentre[0] - decoyCentre[0], trueCentre[1] - decoyCentre[1]) >= 0.45,
                !instance.crashes([0] + trueCentre), !instance.crashes([0] + decoyCentre)
            else { continue }
            // Each front sampled densely along x₀ at its basin's centre.
            let along = (0...20_000).map { Double($0) / 20_000 }
            instance.trueHypervolume = hypervolume(
                along.map { instance.objectives([$0] + trueCentre) }, reference: instance.reference)
            instance.decoyHypervolume = hypervolume(
                along.map { instance.objectives([$0] + decoyCentre) }, reference: instance.reference)
            return instance
        }
    }

    /// `pareto-decoy-family [INSTANCES] [SEEDS] [--parallel 1,4,8] [--strategies random,bayesian]
    /// [--first-instance 0] [--json]`: per strategy and parallelism, the hypervolume ratio at 50 over every
    /// instance and seed, the studies that never measured a point deeper than the decoy's floor (still on the
    /// decoy front), and the share of trials that crashed. With `--json`, prints the instances as JSON lines
    /// instead (the peers' script reads them).
    static func run(
        instances: Int, seeds: Int, parallels: [Int], strategies: [String], firstInstance: Int, print json: Bool
    ) async throws {
        let drawn = (firstInstance..<(firstInstance + instances)).map { instance(UInt64($0)) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            for instance in drawn { print(String(decoding: try encoder.encode(instance), as: UTF8.self)) }
            return
        }
        let ceiling = OptimizerBenchmark.median(drawn.map { $0.decoyHypervolume / $0.trueHypervolume })
        print("The decoy front alone: a hypervolume ratio of \(OptimizerBenchmark.format(ceiling)) (median instance).")
        print("")
        print("| strategy | parallel | studies | HV ratio @50 (median [IQR]) | on the decoy | crashed |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name in strategies {
            for parallel in name == "random" ? [1] : parallels {
                var ratios: [Double] = []
                var onDecoy = 0
                var crashed = 0
                var total = 0
                for instance in drawn {
                    let problem = instance.problem
                    for seed in 0..<seeds {
                        let (trace, _, _) = try await ParetoBenchmark.optimize(
                            problem, strategy: name, seed: UInt64(seed), evaluations: 50, parallel: parallel)
                        let measured = trace.compactMap { $0 }
                        ratios.append(hypervolume(measured, reference: instance.reference) / instance.trueHypervolume)
                        if !measured.contains(where: { instance.depth(losses: $0) < 1 + instance.decoyLevel - 1e-6 }) {
                            onDecoy += 1
                        }
                        crashed += trace.count { $0 == nil }
                        total += trace.count
                    }
                }
                print(
                    "| Autotune \(name) | \(parallel) | \(ratios.count) | \(OptimizerBenchmark.summary(ratios)) | \(onDecoy) | \(ConstrainedBenchmark.percent(crashed, total)) |"
                )
            }
        }
    }
}
