import Autotune
import Foundation

/// Problems drawn at random with the shape of the trap a serving study falls into (issue 28's hidden problem): a
/// broad hill far inside the SLO (the decoy, 60–80% of the best) and a narrow higher peak whose top breaks the
/// SLO, so the best feasible point sits on the SLO's boundary, which may be curved; a crash corner away from both.
/// Each instance places, sizes and turns them anew, so no rule can be fitted to one of them: the check that a
/// stalled study leaves a decoy holds on problems the search was not built on.
enum DecoyFamily {
    /// The instance drawn from `seed`.
    static func problem(_ seed: UInt64) -> (problem: ConstrainedProblem, decoyTop: Double) {
        var generator = SeededGenerator(seed: 0xDEC0 &+ seed &* 7919)
        while true {
            let peak = [generator.uniform(0.2...0.8), generator.uniform(0.2...0.8)]
            let peakWidth = generator.uniform(0.005...0.015)
            let decoy = [generator.uniform(0.1...0.9), generator.uniform(0.1...0.9)]
            let decoyWidth = generator.uniform(0.04...0.1)
            let decoyHeight = generator.uniform(0.6...0.8)
            let angle = generator.uniform(0...(2 * Double.pi))
            let normal = [cos(angle), sin(angle)]
            // How far inside the boundary the peak's top lies, and how much the boundary bends.
            let shift = generator.uniform(0.02...0.06)
            let bend = generator.uniform(-1.5...1.5)
            let corner = [generator.nextUnit() < 0.5 ? 0.0 : 1.0, generator.nextUnit() < 0.5 ? 0.0 : 1.0]
            let crashSize = generator.uniform(0.1...0.2)
            let constraint = { @Sendable (x: [Double]) -> Double in
                let along = (x[0] - peak[0]) * normal[0] + (x[1] - peak[1]) * normal[1]
                let across = -(x[0] - peak[0]) * normal[1] + (x[1] - peak[1]) * normal[0]
                return along + shift + bend * across * across
            }
            let crashes = { @Sendable (u: [Double]) -> Bool in
                abs(u[0] - corner[0]) < crashSize && abs(u[1] - corner[1]) < crashSize
            }
            let distance = hypot(decoy[0] - peak[0], decoy[1] - peak[1])
            // The decoy must be feasible with room to spare, far from the peak, and neither may crash.
            guard distance >= 0.45, constraint(decoy) <= -0.25, !crashes(decoy), !crashes(peak) else { continue }
            var problem = ConstrainedProblem(
                name: "Decoy #\(seed)", bounds: [0...1, 0...1],
                objective: { x in
                    let d = (x[0] - decoy[0]) * (x[0] - decoy[0]) + (x[1] - decoy[1]) * (x[1] - decoy[1])
                    let p = (x[0] - peak[0]) * (x[0] - peak[0]) + (x[1] - peak[1]) * (x[1] - peak[1])
                    return -(decoyHeight * exp(-d / decoyWidth) + exp(-p / peakWidth))
                },
                constraints: { x in [constraint(x)] }, crashes: crashes, minimum: 0)
            problem.minimum = problem.trueMinimum()
            let decoyTop = problem.objective(decoy)
            // The peak's feasible flank must beat the decoy clearly, or there is no trap to leave.
            guard problem.minimum < decoyTop - 0.05 else { continue }
            return (problem, decoyTop)
        }
    }

    /// `decoy-family [INSTANCES] [SEEDS] [--parallel 1,4] [--evaluations 50] [--first-instance 0]`: per
    /// parallelism, the median regret over every instance and seed, the studies above ten times that median (the
    /// issue's count of stuck studies), the studies still on the decoy (nothing better than its top found), and
    /// the share of wasted trials.
    static func run(instances: Int, seeds: Int, parallels: [Int], evaluations: Int, firstInstance: Int) async throws {
        print(
            "| parallel | studies | regret@\(evaluations) (median [IQR]) | above 10× the median | on the decoy | wasted |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        let drawn = (firstInstance..<(firstInstance + instances)).map { problem(UInt64($0)) }
        for parallel in parallels {
            var regrets: [Double] = []
            var onDecoy = 0
            var wasted = 0
            var total = 0
            for (problem, decoyTop) in drawn {
                for seed in 0..<seeds {
                    let (trace, _) = try await ConstrainedBenchmark.optimize(
                        problem, strategy: "bayesian", seed: UInt64(seed), evaluations: evaluations,
                        parallel: parallel)
                    let best = trace.compactMap(\.feasible).min() ?? ConstrainedBenchmark.worst(problem)
                    regrets.append(best - problem.minimum)
                    if best >= decoyTop - 1e-3 { onDecoy += 1 }
                    wasted += trace.filter { $0.feasible == nil }.count
                    total += trace.count
                }
            }
            let median = OptimizerBenchmark.median(regrets)
            print(
                "| \(parallel) | \(regrets.count) | \(OptimizerBenchmark.summary(regrets)) | \(regrets.count { $0 > 10 * median }) | \(onDecoy) | \(ConstrainedBenchmark.percent(wasted, total)) |"
            )
        }
    }
}
