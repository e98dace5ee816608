import Autotune
import AutotuneTesting
import Testing

@Suite struct ConformanceTests {
    @Test(arguments: ["grid", "random", "bayesian"])
    func everyBuiltInStrategyKeepsTheContract(name: String) async {
        let options: [String: JSONValue] =
            name == "bayesian" ? ["candidates": .number(128), "initial_points": .number(4)] : [:]
        let problems = await StrategyConformance(registry: .builtIn, name: name, options: options).run()
        #expect(problems.isEmpty, "\(name): \(problems)")
    }

    /// Every way of treating running trials keeps the contract too: resumed from its checkpoint a study proposes
    /// what it would have, running trials are not proposed again, seeds differ. Thompson draws and the hedge's
    /// draws come from the checkpointed generator.
    @Test(arguments: ["liar", "fantasies", "penalize", "thompson", "hedge"])
    func everyPendingTreatmentKeepsTheContract(pending: String) async {
        let options: [String: JSONValue] = [
            "candidates": .number(128), "initial_points": .number(4), "pending": .string(pending),
        ]
        let problems = await StrategyConformance(registry: .builtIn, name: "bayesian", options: options).run()
        #expect(problems.isEmpty, "\(pending): \(problems)")
    }

    @Test func theSuiteCatchesAStrategyThatBreaksTheContract() async {
        // Proposes the same out-of-space configuration every time and forgets its state.
        struct Broken: Strategy {
            var state: Int { 0 }
            var isExhausted: Bool { false }
            mutating func ask(_ count: Int, history: StudyHistory) throws -> [Configuration] {
                Array(repeating: Configuration(["a": .int(99)]), count: count + 1)
            }
            mutating func tell(_ trial: Trial) throws {}
        }
        let problems = await StrategyConformance { _, _ in Broken() }.run()
        #expect(problems.contains { $0.contains("asked for 3, got 4") })
        #expect(problems.contains { $0.contains("is not in the space") })
        #expect(problems.contains { $0.contains("running") })
        #expect(problems.contains { $0.contains("different seeds gave the same proposals") })
    }
}
