import Autotune
import AutotuneTask
import Foundation
import Testing

/// Input that used to crash, hang or fail without a place: each is refused at its file:line:col, quickly and
/// with a bounded message.
@Suite struct TaskFileBoundsTests {
    private let here = URL(fileURLWithPath: "/work/here")

    private func task(_ line: String, parameters: String = "  n: {type: int, min: 1, max: 4}") -> String {
        """
        name: bounds
        parameters:
        \(parameters)
        objective: {maximize: y}
        budget: {max_trials: 3}
        experiment: {command: [true]}
        \(line)
        """
    }

    private func refusal(_ text: String, file: String = "t.yaml") -> TaskFileError? {
        do {
            _ = try TaskFile.parse(text, file: file, workingDirectory: here)
            Issue.record("parsed: \(text.prefix(200))")
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        "timeouts: {trial: 1e16}", "timeouts: {kill_grace: 1e16}", "timeouts: {trial: 200000000000d}",
        "timeouts: {trial: 9223372036854775808}", "budget2: 1",
    ])
    func durationsPastAYearAreRefusedAtTheirField(line: String) throws {
        let error = try #require(refusal(task(line)))
        #expect(error.line == 7)
        #expect(error.description.hasPrefix("t.yaml:7:"))
    }

    @Test func aServingStageTimeoutPastAYearIsRefused() throws {
        let text = """
            parameters: {n: {type: int, min: 1, max: 4}}
            objective: {maximize: y}
            budget: {max_trials: 3}
            experiment:
              kind: serving
              server: {command: [srv, --port, "{port}"]}
              benchmark: {concurrency: 2}
              timeouts: {deploy: 1e20}
            """
        let error = try #require(refusal(text))
        #expect(error.field == "experiment.timeouts.deploy")
        #expect(error.line == 8)
        #expect(error.message.contains("at most 366d"))
    }

    // Listing 2⁶⁴ points would never end: the time limit catches a grid that enumerates.
    @Test(
        .timeLimit(.minutes(1)),
        arguments: [
            "  n: {type: int, min: 1, max: 1000000000}",
            "  n: {type: int, min: -9223372036854775808, max: 9223372036854775807}",
        ])
    func aWideIntGridIsSizedNotEnumerated(parameters: String) throws {
        let text = task("strategy: grid", parameters: parameters).replacingOccurrences(
            of: "budget: {max_trials: 3}\n", with: "")
        let definition = try TaskFile.parse(text, file: "t.yaml", workingDirectory: here)
        // Building the grid refuses it at once: it counts the points, it does not list them.
        let error = #expect(throws: StrategyError.self) { _ = try GridSearch(context: definition.strategyContext) }
        #expect(error?.message.contains("points") == true, "\(String(describing: error))")
    }

    @Test func tooManyCategoricalValuesAreRefusedAtTheParameter() throws {
        let values = (0..<10_001).map(String.init).joined(separator: ", ")
        let error = try #require(refusal(task("", parameters: "  n: [\(values)]")))
        #expect(error.field == "parameters.n")
        #expect(error.message.contains("at most 10000 values"))
        #expect(error.description.count < 700)
    }

    @Test func aDuplicatedKeyIsNamedAtItsLineWithoutQuotingTheFile() throws {
        let padding = String(repeating: "# filler\n", count: 5_000)
        let error = try #require(refusal(padding + task("parallel: 2\nparallel: 3")))
        #expect(error.line != nil && error.column != nil)
        #expect(error.message.contains("'parallel'"))
        #expect(error.description.count < 700)
    }

    @Test func anUnknownTopLevelKeyIsReportedAtTheKeysLine() throws {
        let error = try #require(refusal(task("paralel:\n  2")))
        #expect(error.line == 7)
        #expect(error.message.contains("did you mean 'parallel'"))
    }

    @Test(arguments: ["\"A;touch /tmp/x;B\": v", "\"A=B\": v", "\"\": v", "\"1ABC\": v"])
    func environmentNamesMustBePOSIXNames(entry: String) throws {
        let text = task("").replacingOccurrences(
            of: "experiment: {command: [true]}", with: "experiment: {command: [true], env: {\(entry)}}")
        let error = try #require(refusal(text))
        #expect(error.field.hasPrefix("experiment.env"))
        #expect(error.message.contains("not an environment variable name"))
    }

    @Test func aNULCharacterInAValueIsRefused() throws {
        let error = try #require(refusal(task("", parameters: "  n: [\"a\\0b\", c]")))
        #expect(error.field == "parameters.n[0]")
        #expect(error.message.contains("NUL"))
    }

    @Test(arguments: [
        ("name: \(String(repeating: "x", count: 101))", "at most 100 characters"),
        ("name: ../../escape", "may only hold"),
        ("name: ..", "may only hold"),
    ])
    func studyNamesAreBounded(line: String, message: String) throws {
        let text = task("").replacingOccurrences(of: "name: bounds", with: line)
        let error = try #require(refusal(text))
        #expect(error.field == "name")
        #expect(error.message.contains(message))
    }

    @Test func constraintsAndConditionsAreReadAndTheirErrorsPlacedAtTheCharacter() throws {
        let text = """
            parameters:
              tp: [1, 2, 4]
              pp: {type: int, min: 1, max: 4}
              speculative: {type: bool}
              tokens: {type: int, min: 1, max: 8, when: "speculative == true"}
            constraints: ["tp * pp <= gpus"]
            objective: {maximize: y}
            budget: {max_trials: 3}
            experiment: {command: [true]}
            """
        let definition = try TaskFile.parse(text, file: "t.yaml", workingDirectory: here)
        #expect(definition.space.constraints.map(\.source) == ["tp * pp <= gpus"])
        #expect(definition.space["tokens"]?.condition?.source == "speculative == true")
        let broken = try #require(refusal(text.replacingOccurrences(of: "tp * pp <= gpus", with: "tp * pp <= ")))
        #expect(broken.field == "constraints[0]")
        #expect(broken.line == 6 && broken.column == 27, "\(broken)")
        let unknown = try #require(refusal(text.replacingOccurrences(of: "tp * pp <= gpus", with: "tp * p <= 4")))
        #expect(unknown.message.contains("'p' is not a parameter"))
        let later = try #require(
            refusal(text.replacingOccurrences(of: "speculative == true", with: "tokens2 == 1")))
        #expect(later.field == "parameters.tokens")
        #expect(later.message.contains("not a parameter declared before it"))
    }

    @Test func unknownStrategiesAndOptionsArePlacedByTheCheck() throws {
        let registry = StrategyRegistry.builtIn
        func check(_ line: String) -> TaskFileError? {
            do {
                _ = try TaskFile.parse(task(line), file: "t.yaml", workingDirectory: here) { spec, context in
                    try registry.check(spec.name, context: context)
                }
                return nil
            } catch {
                return error
            }
        }
        let unknown = try #require(check("strategy: bayesain"))
        #expect(unknown.line == 7 && unknown.field == "strategy")
        #expect(unknown.message.contains("unknown strategy 'bayesain'"))
        let option = try #require(check("strategy:\n  name: grid\n  ordr: declared"))
        #expect(option.line == 9)
        #expect(option.field == "strategy.ordr")
    }

    /// Files that are not text, or hold nothing, are refused at a place too.
    @Test func filesThatAreNotTaskFilesAreRefusedWithAPlace() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-bounds-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(Data, String, Int)] = [
            (Data(), "empty", 1), (Data("# only a comment\n".utf8), "empty", 1),
            (Data("name: a\nparameters: {n: [1, 2]}\n".utf8) + Data([0xFF, 0xFE]) + Data("\n".utf8), "not UTF-8", 3),
            (Data("name: a\n  x: b\u{0}c\n".utf8), "NUL", 2),
            (Data(count: TaskFile.maximumSize + 1), "at most 4 MiB", 1),
        ]
        for (index, (data, message, line)) in cases.enumerated() {
            let file = directory.appendingPathComponent("\(index).yaml")
            try data.write(to: file)
            do {
                _ = try TaskFile.load(path: file.path, workingDirectory: here)
                Issue.record("case \(index) loaded")
            } catch {
                #expect(error.message.contains(message), "case \(index): \(error)")
                #expect(error.line == line, "case \(index): \(error)")
                #expect(error.description.hasPrefix("\(file.path):\(line):"))
            }
        }
    }
}
