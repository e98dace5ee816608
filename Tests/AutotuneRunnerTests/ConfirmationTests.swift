import Autotune
import AutotuneRunner
import AutotuneTesting
import Foundation
import Testing

/// The confirmation phase through the real loop and a real SQLite file, against a noisy engine whose search
/// winner was lucky.
@Suite(.timeLimit(.minutes(5))) struct ConfirmationTests {
    /// Each measurement is `x` plus noise of ±0.3 that depends on the trial; the first measurement of x = 3 is
    /// a fluke of 20, so the search ranks it first.
    private static let noisy = ScriptedExperiment(delay: { _ in .milliseconds(60) }) { trial in
        let x = trial.configuration["x"]!.numericValue!
        let noise = Double((trial.number &* 2_654_435_761 &+ 17) % 600) / 1000 - 0.3
        let lucky = x == 3 && trial.confirms == nil
        return .metrics(["score": lucky ? 20 : x + noise])
    }

    private func confirming() throws -> StudyDefinition {
        var definition = definition(
            space: try SearchSpace([Parameter("x", .int(lower: 1, upper: 8))]), strategy: "grid", parallel: 4)
        definition.confirm = ConfirmationPhase(top: 3, repeats: 3)
        return definition
    }

    @Test func aLuckyWinnerIsReMeasuredInParallelAndLosesItsRank() async throws {
        let definition = try confirming()
        let (trials, best) = try await withTestStudy(definition) { study in
            #expect(try await study.run(experiment: Self.noisy).status == .completed)
            return (try await study.trials(), try await study.stored().best)
        }
        let repeats = trials.filter { $0.confirms != nil }
        let number = Self.numbers(trials)
        #expect(trials.count == 8 + 9)
        #expect(repeats.map(\.number).min() == 8, "numbered after every trial of the search")
        #expect(
            Dictionary(grouping: repeats, by: { $0.confirms! }).mapValues(\.count) == [
                number[3]!: 3, number[8]!: 3, number[7]!: 3,
            ])
        #expect(repeats.allSatisfy { $0.configuration == trials[$0.confirms!].configuration })
        // Started only once the search's last trial had finished, and several at once.
        let searchEnd = trials.filter { $0.confirms == nil }.compactMap(\.finishedAt).max()!
        #expect(repeats.allSatisfy { $0.startedAt! >= searchEnd })
        let overlapping = repeats.contains { a in
            repeats.contains { b in a.number != b.number && a.startedAt! < b.finishedAt! && b.startedAt! < a.finishedAt!
            }
        }
        #expect(overlapping, "confirmation runs use the pool like any trial")
        // The study's best stays the search's; the confirmed ranking puts x = 8 first and the fluke last.
        #expect(best?.number == number[3] && best?.score == 20)
        let ranking = definition.confirm!.ranking(of: trials, objective: definition.objective)
        #expect(ranking.map(\.trial) == [number[8]!, number[7]!, number[3]!])
        #expect(ranking.last!.searchRank == 1 && !ranking.last!.heldUp(objective: definition.objective))
        #expect(ranking.first!.heldUp(objective: definition.objective))
        #expect(abs(ranking.first!.mean! - 8) < 0.3 && ranking.first!.scores.count == 3)
    }

    @Test func aStudyStoppedDuringItsConfirmationResumesWithoutRepeatingARun() async throws {
        let trials = try await withTestStudy(try confirming()) { study in
            // Eight search trials and two repeats, then cancel: the running repeats go back to pending.
            #expect(try await study.run(stoppingAfter: 10, experiment: Self.noisy).status == .interrupted)
            #expect(try await study.trials().contains { $0.confirms != nil })
            #expect(try await study.run(experiment: Self.noisy).status == .completed)
            return try await study.trials()
        }
        let repeats = trials.filter { $0.confirms != nil }
        #expect(repeats.count == 9 && repeats.allSatisfy { $0.state == .completed })
        #expect(Set(repeats.map(\.number)).count == 9)
        let number = Self.numbers(trials)
        #expect(
            Dictionary(grouping: repeats, by: { $0.confirms! }).mapValues(\.count) == [
                number[3]!: 3, number[8]!: 3, number[7]!: 3,
            ])
    }

    /// The search trial of each value of x.
    private static func numbers(_ trials: [Trial]) -> [Int: Int] {
        Dictionary(
            trials.filter { $0.confirms == nil }.map { (Int($0.configuration["x"]!.numericValue!), $0.number) },
            uniquingKeysWith: min)
    }
}
