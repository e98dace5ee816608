import Foundation
import Testing

/// Known constraints and conditional parameters through the real binary, from the task file to the command line
/// each trial ran.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ConstrainedCLITests {
    @Test(arguments: ["grid", "random", "bayesian"])
    func anInactiveParameterIsAbsentFromTheCommandLineAndNoTrialBreaksAConstraint(strategy: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-cond-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        name: cond
        parallel: 2
        parameters:
          tp: [1, 2, 4]
          pp: {type: int, min: 1, max: 4}
          speculative: {type: bool}
          tokens: {type: int, min: 1, max: 4, when: "speculative == true"}
        constraints: ["tp * pp <= 4"]
        objective: {maximize: score}
        strategy: {name: \(strategy)}
        budget: {max_trials: 16}
        experiment:
          command: [/bin/sh, -c, 'echo "$*" > {trial_dir}/args; echo "{{\\"score\\": {tp}}}"', x]
        """.write(to: directory.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "t.yaml", "--quiet"], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        let json = try await autotune(["trials", "cond", "--format", "json"], in: directory)
        let trials = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(!trials.isEmpty)
        for trial in trials {
            let configuration = try #require(trial["configuration"] as? [String: Any])
            let tp = try #require(configuration["tp"] as? Int)
            let pp = try #require(configuration["pp"] as? Int)
            #expect(tp * pp <= 4, "\(configuration)")
            let number = try #require(trial["number"] as? Int)
            let arguments = try String(
                contentsOf: directory.appendingPathComponent("autotune-trials/cond/\(number)/args"), encoding: .utf8)
            let speculative = configuration["speculative"] as? Bool == true
            #expect(arguments.contains("--tokens") == speculative, "\(configuration): \(arguments)")
            #expect((configuration["tokens"] != nil) == speculative)
        }
    }
}
